"""`atelier licence verify FILE` and `atelier licence sign`: a signed licence, checked offline.

Owns: reading a licence document (what `GET /v1/licences/document` answers, saved as JSON),
printing what `service.licence_document.verify_document` found, and signing a decision with a
person's private key (PEM) for clients without their own tooling. Must never read the
registry or the network: anyone holding the file checks it alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from service.commands.common import UsageError


def _read(path: Path) -> dict:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the licence document {str(path)!r}: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{str(path)!r} is not a licence document (a JSON object)")
    return document


def cmd_licence_verify(args: argparse.Namespace) -> int:
    from service.licence_document import verify_document

    check = verify_document(_read(args.file))
    if check.ok:
        print(f"OK: licence {check.sha256} is {check.status}; every signature verifies")
        return 0
    print(f"FAIL: {check.problems[0]}")
    for problem in check.problems[1:]:
        print(f"  {problem}")
    return 1


def cmd_licence_sign(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.licence_document import licence_hash, sign

    try:
        key = serialization.load_pem_private_key(Path(args.key).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"cannot load the signing key {str(args.key)!r}: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{str(args.key)!r} is not an Ed25519 private key")
    document = _read(args.file)
    terms = document.get("licence") or document.get("terms")
    if not isinstance(terms, dict):
        raise UsageError("the file holds no licence terms")
    print(json.dumps({"licence_id": terms.get("licence_id"), "decision": args.decision,
                      "signature": sign(key, args.decision, args.role, licence_hash(terms))}))
    return 0


def add_parsers(commands) -> None:
    licence = commands.add_parser("licence", help="check or sign a licence document (offline)")
    licence_commands = licence.add_subparsers(dest="licence_command", required=True, metavar="SUBCOMMAND")
    verify = licence_commands.add_parser("verify", help="check a signed licence: its hash and every signature")
    verify.add_argument("file", metavar="FILE", type=Path, help="a licence document (JSON)")
    verify.set_defaults(handler=cmd_licence_verify)
    sign = licence_commands.add_parser("sign", help="sign a decision over a licence with a private key (PEM)")
    sign.add_argument("file", metavar="FILE", type=Path, help="a licence document or licence (JSON)")
    sign.add_argument("--key", required=True, type=Path, help="the Ed25519 private key (PEM)")
    sign.add_argument("--decision", choices=("accept", "decline"), default="accept")
    sign.add_argument("--role", choices=("person", "representative", "guardian"), default="person")
    sign.set_defaults(handler=cmd_licence_sign)
