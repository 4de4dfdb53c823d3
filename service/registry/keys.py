"""API-key tokens: their format, generation and salted hashing.

Owns: the token format `atl_<key_id>_<secret>`, minting a key id and secret, hashing a
secret for storage and checking a presented secret in constant time. Must never store,
log or return a plaintext secret except the one `mint()` hands back for showing once.

Why salted HMAC-SHA256 and not scrypt/argon2: the secret is 32 random bytes (256 bits) from
`secrets`, not a human password, so there is nothing for a slow KDF to protect against (no
dictionary, and 2**256 guesses are out of reach at any hash speed); a slow KDF on the
per-request authentication path would only add latency and hand attackers a cheap CPU
denial of service. This is the scheme GitHub and Stripe tokens use. The per-key random salt
(16 bytes, the HMAC key) makes every stored hash unique, so a leaked table cannot be
matched against precomputed tables or across keys. The public key id selects the row; the
secret never leaves this module in any form but its HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "atl_"
KEY_ID_BYTES = 6  # 12 hex characters: public, only has to be unique
SECRET_BYTES = 32
SALT_BYTES = 16


@dataclass(frozen=True)
class MintedKey:
    key_id: str
    token: str  # shown once to the caller, never stored
    salt: bytes
    secret_hash: bytes


def hash_secret(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest()


def mint() -> MintedKey:
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    salt = secrets.token_bytes(SALT_BYTES)
    return MintedKey(key_id, f"{PREFIX}{key_id}_{secret}", salt, hash_secret(salt, secret))


def parse(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed token, else None. The key id is hex, so the first '_'
    after the prefix ends it; the secret (urlsafe base64) may itself contain '_'."""
    if not isinstance(token, str) or not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not secret or len(key_id) != 2 * KEY_ID_BYTES or len(secret) > 256:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def verify(salt: bytes, stored_hash: bytes, secret: str) -> bool:
    return hmac.compare_digest(hash_secret(salt, secret), stored_hash)
