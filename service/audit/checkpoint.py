"""Signed checkpoints (tree heads) of the audit log: Ed25519 over canonical JSON.

Owns: the checkpoint document `{"tree_size", "root_hash", "last_hash", "ts", "key_id",
"signature"}` where `signature` is base64 Ed25519 over the canonical JSON of the other five
fields, `key_id` = first 16 hex of sha256 of the raw 32-byte public key, the signer (a private
key read from a PEM file) and signature checking against a set of trusted public keys. Must never
write files, print or log key material, or accept a checkpoint whose key is not in the trusted set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from service.audit.record import canonical_json, utc_timestamp

CHECKPOINT_FIELDS = ("tree_size", "root_hash", "last_hash", "ts", "key_id", "signature")


class CheckpointError(ValueError):
    """A checkpoint is malformed, signed by an unknown key, or its signature does not verify.

    `kind` is one of `checkpoint_malformed`, `checkpoint_unknown_key`, `checkpoint_signature`.
    """

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class KeyFileError(ValueError):
    """A key file is missing, unreadable, or not an Ed25519 key."""


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class CheckpointSigner:
    """Signs checkpoints with one Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey):
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyFileError("the audit checkpoint key must be Ed25519")
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_pem(cls, path: Path) -> "CheckpointSigner":
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyFileError(f"cannot load the audit signing key {path}: {type(exc).__name__}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(self, tree_size: int, root_hash: str, last_hash: str, ts: str | None = None) -> dict[str, Any]:
        body = {
            "tree_size": tree_size,
            "root_hash": root_hash,
            "last_hash": last_hash,
            "ts": ts or utc_timestamp(),
            "key_id": self.key_id,
        }
        signature = self._key.sign(canonical_json(body))
        return {**body, "signature": base64.b64encode(signature).decode("ascii")}


def load_public_key(source: Ed25519PublicKey | Path | str | bytes) -> Ed25519PublicKey:
    """A public key from a key object, PEM bytes, or the path of a PEM file."""
    if isinstance(source, Ed25519PublicKey):
        return source
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        key = serialization.load_pem_public_key(data)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"cannot load the audit public key {source!r}: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{source!r} is not an Ed25519 public key")
    return key


def verify_checkpoint(cp: Mapping[str, Any], public_keys: Iterable[Ed25519PublicKey | Path | str | bytes]) -> None:
    """Return if `cp` is well-formed and signed by one of `public_keys`; raise CheckpointError otherwise.

    Only the signature and shape are checked here; whether the root matches the records is
    `verify.py`'s job.
    """
    if not isinstance(cp, Mapping) or set(cp) != set(CHECKPOINT_FIELDS):
        found = sorted(cp) if isinstance(cp, Mapping) else type(cp).__name__
        raise CheckpointError("checkpoint_malformed", f"expected fields {list(CHECKPOINT_FIELDS)}, got {found}")
    size = cp["tree_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise CheckpointError("checkpoint_malformed", f"tree_size must be a positive integer, got {size!r}")
    for name in ("root_hash", "last_hash"):
        value = cp[name]
        if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
            raise CheckpointError("checkpoint_malformed", f"{name} must be 64 lowercase hex digits")
    keys = {key_id(key): key for key in map(load_public_key, public_keys)}
    key = keys.get(cp["key_id"])
    if key is None:
        raise CheckpointError(
            "checkpoint_unknown_key", f"signed by key {cp['key_id']!r}, not one of the trusted keys {sorted(keys)}"
        )
    try:
        signature = base64.b64decode(cp["signature"], validate=True)
        key.verify(signature, canonical_json({k: v for k, v in cp.items() if k != "signature"}))
    except (InvalidSignature, binascii.Error, TypeError, ValueError):
        raise CheckpointError("checkpoint_signature", f"the signature does not verify with key {cp['key_id']}") from None
