"""Build a development certificate authority and a C2PA signing certificate.

Owns: `$ATELIER_HOME/keys/` (default `./var/keys`, git-ignored):
- `root_ca.pem`: a self-signed P-256 root, CA:true, keyCertSign/cRLSign, ~10 years. Its key is
  discarded once the signer is issued, so `--force` makes a new root and signer together.
- `signer_chain.pem`: the ES256 signing certificate (CA:false, keyUsage digitalSignature,
  extendedKeyUsage emailProtection, which c2pa's default EKU list accepts, ~1 year). Leaf first,
  as c2pa wants, then intermediates: here there are none. The root is left out: a trust anchor is
  an input of validation, not part of the presented chain (c2pa reads leaf-only and leaf+root
  alike; the root would only add ~460 bytes to every manifest and confers no trust).
- `signer_key.pem`: the signer's PKCS#8 key, created with mode 0600.
Idempotent: existing files are kept unless `force`.

Must never: write a key anywhere but the given directory, print or log key material, or be used
for production signing (a production chain comes from a real CA and a KMS/HSM key).

    python builds/dev_ca.py [--dir DIR] [--force]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "Atelier Dev"
ROOT_COMMON_NAME = "Atelier dev root CA"
SIGNER_COMMON_NAME = "Atelier dev signer"
ROOT_VALIDITY = dt.timedelta(days=3650)
SIGNER_VALIDITY = dt.timedelta(days=365)
# A little slack so a clock slightly behind the builder's still accepts the certificates.
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class DevCA:
    directory: Path
    root_cert: Path  # root_ca.pem: the trust anchor to hand to readers
    signer_chain: Path  # signer_chain.pem: the signer certificate (no intermediates, no root)
    signer_key: Path  # signer_key.pem (0600)

    @classmethod
    def at(cls, directory: Path) -> "DevCA":
        return cls(
            directory,
            directory / "root_ca.pem",
            directory / "signer_chain.pem",
            directory / "signer_key.pem",
        )

    def files(self) -> tuple[Path, ...]:
        return (self.root_cert, self.signer_chain, self.signer_key)


def default_directory(environ: Mapping[str, str] | None = None) -> Path:
    """`$ATELIER_HOME/keys`, with ATELIER_HOME defaulting to `./var` as everywhere else."""
    env = os.environ if environ is None else environ
    return Path(env.get("ATELIER_HOME") or "var").expanduser().resolve() / "keys"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the start (never world-readable, not even briefly)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # in case a umask or filesystem widened it


def _issue_root(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(ROOT_COMMON_NAME)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue_signer(
    now: dt.datetime, root_key: ec.EllipticCurvePrivateKey, root: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(SIGNER_COMMON_NAME))
        .issuer_name(root.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + SIGNER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    return key, cert


def build_dev_ca(directory: Path | None = None, force: bool = False) -> DevCA:
    """Create the dev root CA and ES256 signer under `directory` (kept when present, unless `force`)."""
    ca = DevCA.at(Path(directory) if directory is not None else default_directory())
    if not force and all(path.is_file() for path in ca.files()):
        return ca
    ca.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(ca.directory, 0o700)
    now = dt.datetime.now(dt.timezone.utc)
    root_key, root = _issue_root(now)
    signer_key, signer = _issue_signer(now, root_key, root)
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    _write_private(ca.signer_key, _key_pem(signer_key))
    ca.root_cert.write_bytes(root_pem)
    ca.signer_chain.write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    return ca


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="key directory (default: $ATELIER_HOME/keys)")
    parser.add_argument("--force", action="store_true", help="replace an existing CA and signer")
    args = parser.parse_args(argv)
    ca = build_dev_ca(args.dir, force=args.force)
    print(f"trust anchor:  {ca.root_cert}")
    print(f"signer chain:  {ca.signer_chain}")
    print(f"signer key:    {ca.signer_key} (0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
