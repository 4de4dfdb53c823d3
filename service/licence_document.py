"""A licence as a document: its canonical bytes, its hash, and the signatures that decide it.

Owns: the one byte form of a licence's terms (`canonical`: sorted keys, no whitespace, UTF-8),
its sha256 (the licence hash that audit records and C2PA manifests name), the message a
person, their representative or a minor's guardian signs to accept or decline it
(`signed_message`: schema, decision, role and hash, so an acceptance can never be replayed
as a decline or by another role), Ed25519 signing (for clients and tests) and checking, and
the offline check of a whole signed licence file (`verify_document`, what `atelier licence
verify FILE` runs): no database, no network.

Must never read or write storage, or accept a key that is not a raw 32-byte Ed25519 key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SCHEMA = "atelier.licence/1"
ROLES = ("person", "representative", "guardian")
DECISIONS = ("accept", "decline")


class LicenceSignatureError(ValueError):
    """A key or signature is malformed, or a signature does not verify."""


def canonical(terms: Mapping[str, Any]) -> bytes:
    return json.dumps(terms, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def licence_hash(terms: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(terms)).hexdigest()


def signed_message(decision: str, role: str, sha256: str) -> bytes:
    """What a signature covers: `atelier.licence/1|accept|person|<sha256 of the terms>`."""
    if decision not in DECISIONS or role not in ROLES:
        raise LicenceSignatureError(f"decision must be one of {DECISIONS} and role one of {ROLES}")
    return f"{SCHEMA}|{decision}|{role}|{sha256}".encode()


def public_key_of(text: str) -> Ed25519PublicKey:
    """A raw 32-byte Ed25519 public key, base64 (standard or URL-safe, padding optional)."""
    try:
        raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError, AttributeError):
        raise LicenceSignatureError("the public key is not base64") from None
    if len(raw) != 32:
        raise LicenceSignatureError("the public key must be a raw 32-byte Ed25519 key, base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def encode_public_key(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def sign(private_key: Ed25519PrivateKey, decision: str, role: str, sha256: str) -> str:
    """A base64 signature of `decision` by `role` over the licence hash (clients, tests)."""
    return base64.b64encode(private_key.sign(signed_message(decision, role, sha256))).decode()


def check_signature(public_key: str, signature: str, decision: str, role: str, sha256: str) -> None:
    """Return when `signature` is `public_key`'s over (decision, role, hash); raise otherwise."""
    key = public_key_of(public_key)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, signed_message(decision, role, sha256))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        raise LicenceSignatureError(f"the {role}'s signature does not verify over this licence") from None


@dataclass
class DocumentCheck:
    ok: bool
    sha256: str | None = None
    status: str | None = None
    problems: list[str] = field(default_factory=list)


def verify_document(document: Mapping[str, Any]) -> DocumentCheck:
    """Check a signed licence file (`GET /v1/licences/document`): its terms hash to `sha256`,
    and every signature verifies under the public key it names. `status` is `accepted` when
    the person (or their representative) accepted and, for a minor, the guardian too."""
    check = DocumentCheck(ok=False)
    terms, stated = document.get("licence"), document.get("sha256")
    if not isinstance(terms, Mapping) or terms.get("schema") != SCHEMA:
        check.problems.append(f"not an {SCHEMA} licence document")
        return check
    check.sha256 = licence_hash(terms)
    if stated != check.sha256:
        check.problems.append(f"the terms hash to {check.sha256}, not the stated {stated}")
    signatures = document.get("signatures") or []
    accepted = set()
    for entry in signatures:
        role, decision = entry.get("role"), entry.get("decision")
        try:
            check_signature(str(entry.get("public_key")), str(entry.get("signature")), decision, role, check.sha256)
        except LicenceSignatureError as exc:
            check.problems.append(str(exc))
            continue
        if decision == "accept":
            accepted.add(role)
        else:
            check.status = "declined"
    if not signatures:
        check.problems.append("no signature: the licence was not decided")
    if check.status is None:
        enough = bool(accepted & {"person", "representative"}) and (not terms.get("minor") or "guardian" in accepted)
        check.status = "accepted" if enough else "undecided"
    check.ok = not check.problems
    return check
