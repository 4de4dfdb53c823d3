"""Build the development Ed25519 key that signs audit log checkpoints.

Owns: `$ATELIER_HOME/keys/audit_ed25519.pem` (PKCS#8, created with mode 0600) and
`audit_ed25519.pub.pem` (SubjectPublicKeyInfo, the key `atelier audit verify` trusts by default).
Idempotent: an existing pair is kept; a missing public half is re-derived from the private key.

Must never: write a key anywhere but the given directory, print or log key material, or be used
for production (a production signer lives in a KMS/HSM; only its public key is distributed).

    python builds/audit_key.py [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PRIVATE_NAME = "audit_ed25519.pem"
PUBLIC_NAME = "audit_ed25519.pub.pem"


def default_directory(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("ATELIER_HOME") or "var").expanduser().resolve() / "keys"


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the start, then move it into place atomically."""
    temp = path.with_name(path.name + ".tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def build_audit_key(directory: Path | None = None) -> tuple[Path, Path]:
    """(private, public) PEM paths under `directory` (default `$ATELIER_HOME/keys`), created if absent."""
    folder = Path(directory) if directory is not None else default_directory()
    private, public = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    folder.mkdir(parents=True, exist_ok=True)
    if private.is_file():
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{private} exists and is not an Ed25519 key; move it away first")
    else:
        key = Ed25519PrivateKey.generate()
        _write_private(
            private,
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        )
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not public.is_file() or public.read_bytes() != public_pem:
        public.write_bytes(public_pem)
    return private, public


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="key directory (default: $ATELIER_HOME/keys)")
    args = parser.parse_args(argv)
    private, public = build_audit_key(args.dir)
    raw = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    print(f"audit signing key: {private} (0600)")
    print(f"audit public key:  {public} (key_id {hashlib.sha256(raw).hexdigest()[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
