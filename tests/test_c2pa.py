"""C2PA signing and reading, XMP digital source type, and the development CA (all offline, fast)."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import stat
import struct
import threading

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from builds.dev_ca import build_dev_ca
from service.errors import ModelLoadError
from service.provenance.c2pa import (
    GENERATION_ASSERTION,
    LICENCE_ASSERTION,
    SIGN_SETTINGS,
    SOFT_BINDING_ASSERTION,
    WATERMARK_ALG,
    C2paSigner,
    ManifestInfo,
    manifest_definition,
    read_c2pa,
)
from service.provenance.xmp import (
    TRAINED_ALGORITHMIC_MEDIA,
    add_xmp,
    read_digital_source_type,
    read_generation_id,
)

FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
INFO = ManifestInfo(
    generation_id="gen-0123", watermark_id="9f86d081884c7d65", generator_name="Atelier",
    generator_version="0.1.0", licence={"basis": "signed", "licence_id": "lic_0123", "licence_sha256": "ab" * 32},
)
UNTRUSTED = "signingCredential.untrusted"


@pytest.fixture(scope="module")
def dev_ca(tmp_path_factory):
    return build_dev_ca(tmp_path_factory.mktemp("home") / "keys")


@pytest.fixture(scope="module")
def signer(dev_ca) -> C2paSigner:
    return C2paSigner.from_pem_files(dev_ca.signer_chain, dev_ca.signer_key)


@pytest.fixture(scope="module")
def root_pem(dev_ca) -> str:
    return dev_ca.root_cert.read_text()


def noise_image(fmt: str, size: int = 256, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt.upper())
    return buffer.getvalue()


def marked(signer: C2paSigner, fmt: str, info: ManifestInfo = INFO, seed: int = 0) -> tuple[bytes, bytes, str]:
    """(the plain encoded image, the XMP+C2PA image, the manifest hash)."""
    plain = noise_image(fmt, seed=seed)
    with_xmp = add_xmp(plain, fmt, generation_id=info.generation_id, generator="Atelier 0.1.0")
    signed, manifest_hash = signer.sign(with_xmp, FORMATS[fmt], info)
    return plain, signed, manifest_hash


def jpeg_scan_start(data: bytes) -> int:
    """Where a JPEG's entropy-coded data begins, found by walking its segments from SOI. (A
    search for the first 0xFFDA byte pair could land inside the C2PA manifest's APP11 segments,
    whose signature bytes differ on every signing: the test failed now and then that way.)"""
    pos = 2  # after SOI
    while True:
        assert data[pos] == 0xFF, f"no JPEG marker at {pos}"
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if data[pos + 1] == 0xDA:  # start of scan: its header, then the image data
            return pos + 2 + length
        pos += 2 + length


def payload_offset(data: bytes, fmt: str) -> int:
    """An offset inside the compressed image data (not in any metadata), whose byte can be
    changed by one bit without producing a JPEG marker byte."""
    if fmt == "png":
        start = data.index(b"IDAT") + 4
        (length,) = struct.unpack(">I", data[start - 8 : start - 4])
        offset = start + length // 2
    elif fmt == "jpeg":
        offset = jpeg_scan_start(data) + 200
    else:
        start = data.index(b"VP8 ") + 8
        (length,) = struct.unpack("<I", data[start - 4 : start])
        offset = start + length // 2
    while data[offset] >= 0xFE:  # keep JPEG entropy data free of new 0xFF marker prefixes
        offset += 1
    return offset


def active_manifest(data: bytes, mime_type: str) -> dict:
    with c2pa.Reader(mime_type, io.BytesIO(data), None, c2pa.Context.from_dict(SIGN_SETTINGS)) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]]


# --- development CA ------------------------------------------------------------------------


def test_dev_ca_signer_certificate_is_a_c2pa_leaf(dev_ca):
    certs = x509.load_pem_x509_certificates(dev_ca.signer_chain.read_bytes())
    assert len(certs) == 1  # leaf only: the root is a trust anchor, not part of the chain
    leaf = certs[0]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Atelier Dev"
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Atelier dev signer"
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 360 <= lifetime.days <= 370
    root = x509.load_pem_x509_certificate(dev_ca.root_cert.read_bytes())
    assert leaf.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    leaf.verify_directly_issued_by(root)  # raises if the root did not sign the leaf


def test_dev_ca_key_is_private_and_build_is_idempotent(tmp_path):
    ca = build_dev_ca(tmp_path / "keys")
    assert stat.S_IMODE(ca.signer_key.stat().st_mode) == 0o600
    before = {path: path.read_bytes() for path in ca.files()}
    assert build_dev_ca(tmp_path / "keys").files() == ca.files()
    assert {path: path.read_bytes() for path in ca.files()} == before
    build_dev_ca(tmp_path / "keys", force=True)
    assert ca.signer_key.read_bytes() != before[ca.signer_key]
    assert stat.S_IMODE(ca.signer_key.stat().st_mode) == 0o600


def test_dev_ca_default_directory_is_under_atelier_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    ca = build_dev_ca()
    assert ca.directory == (tmp_path / "home" / "keys").resolve()
    assert ca.signer_key.is_file()


# --- signing and reading -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_signed_image_reads_valid_without_anchors_and_trusted_with_them(signer, root_pem, fmt):
    plain, signed, manifest_hash = marked(signer, fmt)
    mime_type = FORMATS[fmt]

    untrusted = read_c2pa(signed, mime_type)
    assert untrusted.state == "Valid"
    assert [reason.split(":")[0] for reason in untrusted.reasons] == [UNTRUSTED]

    trusted = read_c2pa(signed, mime_type, root_pem)
    assert trusted.state == "Trusted"
    assert trusted.reasons == []
    assert trusted.generation_id == INFO.generation_id
    assert trusted.watermark_id == INFO.watermark_id
    assert trusted.claim_generator == "Atelier/0.1.0"
    assert len(manifest_hash) == 64 and int(manifest_hash, 16) >= 0

    # XMP went in before signing, so it is part of the signed asset and still readable.
    assert read_digital_source_type(signed) == TRAINED_ALGORITHMIC_MEDIA
    assert read_generation_id(signed) == INFO.generation_id
    # The container was edited, the pixels were not re-encoded.
    decoded = np.asarray(Image.open(io.BytesIO(signed)).convert("RGB"))
    assert np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(plain)).convert("RGB")))


def test_manifest_declares_ai_creation_watermark_and_no_thumbnail(signer):
    _, signed, _ = marked(signer, "png")
    manifest = active_manifest(signed, "image/png")
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    actions = assertions["c2pa.actions.v2"]["actions"]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert "c2pa.watermarked" in [action["action"] for action in actions]
    assert assertions[GENERATION_ASSERTION] == {"generation_id": "gen-0123"}  # no twin id: it names the person
    assert assertions[LICENCE_ASSERTION] == INFO.licence
    assert assertions[SOFT_BINDING_ASSERTION]["alg"] == WATERMARK_ALG
    assert assertions[SOFT_BINDING_ASSERTION]["blocks"][0]["value"] == INFO.watermark_id
    assert manifest["claim_generator_info"][0]["name"] == "Atelier"
    assert "thumbnail" not in manifest
    assert not [label for label in assertions if "thumbnail" in label]
    assert manifest["signature_info"]["alg"].lower() == "es256"


def test_without_a_watermark_there_is_no_soft_binding(signer):
    info = ManifestInfo("gen-nowm", None, "Atelier", "0.1.0")
    labels = [a["label"] for a in manifest_definition(info)["assertions"]]
    assert SOFT_BINDING_ASSERTION not in labels
    _, signed, _ = marked(signer, "png", info)
    reading = read_c2pa(signed, "image/png")
    assert (reading.state, reading.generation_id, reading.watermark_id) == ("Valid", "gen-nowm", None)


def test_manifest_hash_is_the_sha256_of_the_embedded_manifest_store(signer):
    _, signed, manifest_hash = marked(signer, "png")
    pos, stores = 8, []
    while pos < len(signed):
        (length,) = struct.unpack(">I", signed[pos : pos + 4])
        if signed[pos + 4 : pos + 8] == b"caBX":
            stores.append(signed[pos + 8 : pos + 8 + length])
        pos += 12 + length
    assert len(stores) == 1
    assert hashlib.sha256(stores[0]).hexdigest() == manifest_hash
    _, other, other_hash = marked(signer, "png", seed=1)
    assert other_hash != manifest_hash


@pytest.mark.parametrize("fmt", FORMATS)
def test_tampered_image_reads_invalid_with_a_reason(signer, root_pem, fmt):
    _, signed, _ = marked(signer, fmt)
    tampered = bytearray(signed)
    tampered[payload_offset(signed, fmt)] ^= 0x01
    reading = read_c2pa(bytes(tampered), FORMATS[fmt], root_pem)
    assert reading.state == "Invalid"
    assert any(reason.startswith("assertion.dataHash.mismatch") for reason in reading.reasons), reading.reasons


def test_another_cas_root_does_not_make_the_signature_trusted(signer, tmp_path):
    other_root = build_dev_ca(tmp_path / "other").root_cert.read_text()
    _, signed, _ = marked(signer, "jpeg")
    reading = read_c2pa(signed, "image/jpeg", other_root)
    assert reading.state == "Valid"
    assert [reason.split(":")[0] for reason in reading.reasons] == [UNTRUSTED]


@pytest.mark.parametrize(
    "data, mime_type",
    [
        (b"", "image/png"),
        (b"\x00" * 64, "image/png"),
        (bytes(range(256)) * 8, "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x89PNG\r\n\x1a\n" + b"\xff" * 40, "image/png"),
        (b"GIF89a" + b"\x00" * 20, "image/gif"),
        (b"not an image", "application/octet-stream"),
    ],
)
def test_garbage_reads_absent_or_invalid_without_raising(data, mime_type):
    reading = read_c2pa(data, mime_type)
    assert reading.state in ("Absent", "Invalid")
    assert reading.generation_id is None and reading.watermark_id is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_unsigned_image_reads_absent(fmt):
    reading = read_c2pa(noise_image(fmt, size=64), FORMATS[fmt])
    assert reading.state == "Absent"
    assert read_digital_source_type(noise_image(fmt, size=64)) is None


def test_truncated_signed_image_does_not_raise(signer):
    _, signed, _ = marked(signer, "png")
    for cut in (16, len(signed) // 2, len(signed) - 8):
        assert read_c2pa(signed[:cut], "image/png").state in ("Absent", "Invalid")


def test_a_remote_manifest_reference_is_never_fetched(dev_ca):
    """An uploaded file may point at any URL; the verifier must not connect to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    connections: list[int] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            connections.append(1)
            conn.close()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        native = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, dev_ca.signer_chain.read_bytes(), dev_ca.signer_key.read_bytes(), None)
        )
        builder = c2pa.Builder(manifest_definition(INFO), context=c2pa.Context.from_dict(SIGN_SETTINGS))
        builder.set_no_embed()
        builder.set_remote_url(f"http://127.0.0.1:{port}/manifest.c2pa")
        output = io.BytesIO()
        builder.sign(native, "image/png", io.BytesIO(noise_image("png", size=32)), output)
        reading = read_c2pa(output.getvalue(), "image/png")
    finally:
        stop.set()
        acceptor.join(timeout=2)
        server.close()
    assert reading.state in ("Absent", "Invalid")
    assert reading.reasons and "remote" in reading.reasons[0].lower()
    assert connections == []


def test_signing_from_several_threads(signer, root_pem):
    results: list[tuple[str, str | None]] = []
    errors: list[BaseException] = []

    def work(worker: int):
        try:
            for n in range(3):
                info = ManifestInfo(f"gen-{worker}-{n}", f"{worker:08x}{n:08x}", "Atelier", "0.1.0")
                data = add_xmp(noise_image("png", size=64, seed=worker), "png", generation_id=info.generation_id, generator="Atelier")
                signed, _ = signer.sign(data, "image/png", info)
                reading = read_c2pa(signed, "image/png", root_pem)
                results.append((reading.state, reading.generation_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == sorted(("Trusted", f"gen-{w}-{n}") for w in range(4) for n in range(3))


def test_signer_refuses_a_key_that_does_not_match_the_chain(dev_ca, tmp_path):
    other = build_dev_ca(tmp_path / "other")
    with pytest.raises(ModelLoadError) as caught:
        C2paSigner.from_pem_files(dev_ca.signer_chain, other.signer_key)
    assert "PRIVATE KEY" not in str(caught.value)
    with pytest.raises(ModelLoadError):
        C2paSigner.from_pem_files(tmp_path / "missing.pem", dev_ca.signer_key)


# --- XMP -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_xmp_is_deterministic_and_replaced_not_duplicated(fmt):
    plain = noise_image(fmt, size=64)
    once = add_xmp(plain, fmt, generation_id="gen-a", generator="Atelier 0.1.0")
    assert add_xmp(plain, fmt, generation_id="gen-a", generator="Atelier 0.1.0") == once
    twice = add_xmp(once, fmt, generation_id="gen-b", generator="Atelier 0.1.0")
    assert len(twice) == len(once)  # same-length id: the old packet was replaced, not kept
    assert read_generation_id(twice) == "gen-b"
    assert twice.count(b"Iptc4xmpExt:DigitalSourceType=") == 1
    xmp = Image.open(io.BytesIO(twice)).info.get("xmp")  # Pillow finds the packet where it expects it
    assert xmp is not None and b"gen-b" in (xmp if isinstance(xmp, bytes) else xmp.encode())
