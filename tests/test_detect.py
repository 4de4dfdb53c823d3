"""The free public check (POST /v1/detect, Studio's Detect page) and the training-mining assertion.

Against the gateway app (the session's `client`: the real edge, router, Studio, registry and
renderer in this process), called by strangers without a key from addresses of their own:
- a real generation (PNG), the same picture re-encoded as a JPEG that lost every byte of
  metadata (the watermark alone), a manifest signed by another certificate, a tampered file
  and a manifest copied onto other pixels each get exactly the six fields of the answer, and
  never a tenant, twin, generation id, watermark id or prompt;
- a keyless flood from one address: the source's budget refuses all but the budget before any
  decode, a key buys nothing, and the audit log grows by a few compact records, not one per
  request; a successful check writes no record at all;
- decoding bounds are verify's, refusals are filed compactly under the route.
Without a gateway: every manifest carries `cawg.training-mining` = notAllowed, read back by
verify and detect; another holder of a certificate under a trusted root is not Atelier.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import struct
import zlib

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image
from starlette.testclient import TestClient

from builds.dev_ca import build_dev_ca
from service.provenance.c2pa import (SIGN_SETTINGS, TRAINING_MINING_ASSERTION, C2paSigner, ManifestInfo,
                                     read_c2pa, training_mining_of)
from service.provenance.detect import AtelierSigner, detection
from service.provenance.verify import verify_image
from service.provenance.xmp import TRAINED_ALGORITHMIC_MEDIA, read_digital_source_type
from tests.png_support import chunk, png_chunks
from tests.audit_reading import audit_store, every_record

PROMPT = "studio photo, detect me, linen dress"
GEN = {"twin_id": "demo-ava", "prompt": PROMPT, "steps": 2}
FIELDS = {"ai_generated", "watermark", "c2pa_manifest", "digital_source_type", "training_mining", "licence"}
CAWG_USES = ("cawg.ai_generative_training", "cawg.ai_inference", "cawg.ai_training", "cawg.data_mining")


# -- helpers ------------------------------------------------------------------------------------


def stranger(client: TestClient, source: str) -> TestClient:
    """A client with no key, from `source`, on the session gateway's own event loop."""
    other = TestClient(client.app, client=(source, 40000), raise_server_exceptions=False)
    other.portal = client.portal
    return other


def png(size: int = 64, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def as_jpeg(data: bytes) -> bytes:
    """The same picture, re-encoded: no XMP, no C2PA, no metadata at all."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def detect(client: TestClient, data: bytes, content_type: str = "image/png"):
    return client.post("/v1/detect", content=data, headers={"content-type": content_type})


def assert_reveals_nothing(response, *secrets: str) -> None:
    body = response.json()
    assert set(body) == FIELDS, body
    text = response.text.lower()
    for secret in secrets:
        assert secret.lower() not in text, secret
    for name in ("demo", "ava", "tenant", "twin", "generation", "watermark_id", "prompt", "linen"):
        assert name not in text, name
    assert not re.search(r"[0-9a-f]{16}", text)  # no watermark id, generation id or hash of any kind


def records_about(demo_home, needle: str) -> list[dict]:
    return [r for r in every_record(demo_home) if needle in json.dumps(r)]


@pytest.fixture(scope="module")
def generation(client):
    """A real generation: its PNG, watermark id and generation id (512 px: the mark survives JPEG)."""
    response = client.post("/v1/generate", json={**GEN, "seed": 21, "width": 512, "height": 512})
    assert response.status_code == 200, response.text
    body = response.json()
    image = body["images"][0]
    return base64.b64decode(image["data_base64"]), image["watermark_id"], body["generation_id"]


def freeze_minute(core, monkeypatch) -> None:
    """One minute for the source budgets and the refusal ledger, whatever the wall clock does."""
    import time

    core.trust.refusals.flush(everything=True)
    now, wall = time.monotonic(), time.time()
    for guard in (core.trust.sources, core.trust.detects):
        monkeypatch.setattr(guard, "_clock", lambda: now - now % 60 + 30)
    monkeypatch.setattr(core.trust.refusals, "_clock", lambda: wall - wall % 60 + 30)


@pytest.fixture()
def core(client):
    from service.gateway.service import API

    return API.state.core


# -- the manifest's training-mining assertion (no gateway) -----------------------------------------


@pytest.fixture(scope="module")
def dev_ca(tmp_path_factory):
    return build_dev_ca(tmp_path_factory.mktemp("detect-ca") / "keys")


def test_every_manifest_says_no_training_no_mining_and_verify_reads_it(dev_ca):
    signer = C2paSigner.from_pem_files(dev_ca.signer_chain, dev_ca.signer_key)
    signed, _ = signer.sign(png(), "image/png", ManifestInfo("gen-tm", "0011223344556677", "Atelier", "0.1.0"))
    with c2pa.Reader("image/png", io.BytesIO(signed), None, c2pa.Context.from_dict(SIGN_SETTINGS)) as reader:
        store = json.loads(reader.json())
    assertions = {a["label"]: a["data"] for a in store["manifests"][store["active_manifest"]]["assertions"]}
    assert assertions[TRAINING_MINING_ASSERTION] == {"entries": {use: {"use": "notAllowed"} for use in CAWG_USES}}
    reading = read_c2pa(signed, "image/png", dev_ca.root_cert.read_text())
    assert reading.state == "Trusted" and reading.training_mining == "notAllowed"
    assert reading.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert reading.signer == ("Atelier Dev", "Atelier dev signer") == AtelierSigner.from_chain(dev_ca.signer_chain).subject
    report = verify_image(signed, 1 << 20, dev_ca.root_cert)
    assert report.as_dict()["training_mining"] == "notAllowed"
    # An edited manifest says nothing verify repeats: a byte of metadata added after signing.
    iend = signed.rindex(b"IEND") - 4
    tampered = verify_image(signed[:iend] + chunk(b"tEXt", b"k\x00v") + signed[iend:], 1 << 20, dev_ca.root_cert)
    assert tampered.c2pa_state == "Invalid" and tampered.as_dict()["training_mining"] is None


@pytest.mark.parametrize("assertion, summary", [
    ({"label": "c2pa.training-mining", "data": {"entries": {"c2pa.ai_training": {"use": "notAllowed"}}}}, "notAllowed"),
    ({"label": "cawg.training-mining", "data": {"entries": {"cawg.ai_training": {"use": "allowed"},
                                                             "cawg.data_mining": {"use": "notAllowed"}}}}, "mixed"),
    ({"label": "cawg.training-mining", "data": {"entries": {}}}, None),
    ({"label": "c2pa.actions.v2", "data": {"actions": []}}, None),
])
def test_the_training_mining_summary(assertion, summary):
    assert training_mining_of({"assertions": [assertion]}) == summary


def make_ca(tmp_path, organization: str, common_name: str):
    """A root (written as a trust anchor file) and a C2PA signer under it with this subject."""
    now = dt.datetime.now(dt.timezone.utc)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shared public CA"),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shared CA")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))

    def leaf(subject_org: str, subject_cn: str) -> C2paSigner:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject_org)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(root_name).public_key(leaf_key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
                .sign(root_key, hashes.SHA256()))
        key = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        return C2paSigner(cert.public_bytes(serialization.Encoding.PEM).decode(), key.decode())

    anchors = tmp_path / f"root-{organization}.pem"
    anchors.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return anchors, leaf(organization, common_name)


def test_another_holder_of_a_certificate_under_a_trusted_root_is_not_atelier(tmp_path):
    atelier = AtelierSigner("Atelier Dev", "Atelier dev signer")
    for organization, common_name, expected in (("Rival Org", "Rival signer", False),
                                                ("Atelier Dev", "Atelier dev signer", True)):
        anchors, signer = make_ca(tmp_path, organization, common_name)
        signed, _ = signer.sign(png(seed=3), "image/png", ManifestInfo("gen-x", None, "Atelier", "0.1.0"))
        report = verify_image(signed, 1 << 20, anchors)
        assert report.c2pa_state == "Trusted"  # the shared root vouches for both
        answer = detection(report, lambda watermark_id: None, atelier)
        assert answer["c2pa_manifest"] is expected and answer["ai_generated"] is expected
        assert answer["training_mining"] == ("notAllowed" if expected else None)
        assert set(answer) == FIELDS


# -- the public check against the gateway ---------------------------------------------------------


def test_a_real_generation_png_and_its_stripped_jpeg(client, generation, demo_home, records):
    data, watermark_id, generation_id = generation
    public = stranger(client, "198.51.100.21")
    answer = detect(public, data)
    assert answer.status_code == 200, answer.text
    [record] = records("generation_id", generation_id)  # the demo tenant's paper consent admitted it
    paper = {"basis": "paper", "consent_id": record["consent"]["consent_id"],
             "consent_version": record["consent"]["version"]}
    assert answer.json() == {"ai_generated": True, "watermark": True, "c2pa_manifest": True,
                             "digital_source_type": TRAINED_ALGORITHMIC_MEDIA, "training_mining": "notAllowed",
                             "licence": paper}
    assert_reveals_nothing(answer, watermark_id, generation_id, PROMPT)
    multipart = public.post("/v1/detect", files={"image": ("x.png", data, "image/png")})
    assert multipart.json() == answer.json()

    stripped = as_jpeg(data)
    assert read_c2pa(stripped, "image/jpeg").state == "Absent" and read_digital_source_type(stripped) is None
    alone = detect(public, stripped, "image/jpeg")
    assert alone.status_code == 200, alone.text
    assert alone.json() == {"ai_generated": True, "watermark": True, "c2pa_manifest": False,
                            "digital_source_type": None, "training_mining": None, "licence": None}
    assert_reveals_nothing(alone, watermark_id, generation_id, PROMPT)
    # A successful check is not audited: nothing was recorded about this address.
    assert records_about(demo_home, "198.51.100.21") == []
    # Verify (with a key) reports the training-mining assertion too.
    report = client.post("/v1/verify", content=data, headers={"content-type": "image/png"}).json()
    assert report["training_mining"] == "notAllowed" and report["generation_id"] == generation_id
    assert report["licence"] == paper


def test_forged_and_tampered_manifests_are_not_atelier(client, generation, tmp_path):
    data, watermark_id, generation_id = generation
    public = stranger(client, "198.51.100.22")
    # 1. The same picture signed again by another certificate (another dev CA, the same names).
    other = build_dev_ca(tmp_path / "other-keys")
    forged, _ = C2paSigner.from_pem_files(other.signer_chain, other.signer_key).sign(
        png(256, seed=4), "image/png", ManifestInfo(generation_id, watermark_id, "Atelier", "0.1.0"))
    answer = detect(public, forged)
    assert answer.status_code == 200 and answer.json()["c2pa_manifest"] is False
    assert answer.json()["ai_generated"] is False and answer.json()["training_mining"] is None
    assert answer.json()["licence"] is None
    assert_reveals_nothing(answer, watermark_id, generation_id)
    # 2. Atelier's own manifest, with a chunk slipped in after signing: the signature breaks,
    #    the pixels (and so the watermark) are untouched.
    iend = data.rindex(b"IEND") - 4
    tampered = detect(public, data[:iend] + chunk(b"tEXt", b"Comment\x00edited") + data[iend:])
    assert tampered.json() == {"ai_generated": True, "watermark": True, "c2pa_manifest": False,
                               "digital_source_type": None, "training_mining": None, "licence": None}
    # 3. Atelier's manifest chunks copied onto other pixels: nothing of Atelier's is left.
    copied = b"".join(raw for kind, raw in png_chunks(data) if kind not in (b"IHDR", b"IDAT", b"IEND"))
    noise = png(256, seed=5)
    moved = detect(public, noise[:33] + copied + noise[33:])
    assert moved.json() == {"ai_generated": False, "watermark": False, "c2pa_manifest": False,
                            "digital_source_type": None, "training_mining": None, "licence": None}
    for response in (tampered, moved):
        assert_reveals_nothing(response, watermark_id, generation_id, PROMPT)


def test_a_watermark_this_service_did_not_make_does_not_count(client):
    from service.provenance import watermark

    base = Image.fromarray(np.random.default_rng(6).integers(60, 200, (256, 256, 3), dtype=np.uint8))
    marked = io.BytesIO()
    watermark.embed(base, 0x0123456789ABCDEF, psnr_db=34.0).save(marked, "PNG")
    assert watermark.detect(Image.open(io.BytesIO(marked.getvalue())).convert("RGB")).found  # the public scheme decodes
    answer = detect(stranger(client, "198.51.100.23"), marked.getvalue())
    assert answer.json()["watermark"] is False and answer.json()["ai_generated"] is False


def test_a_keyless_flood_is_refused_before_any_decode_and_costs_a_few_records(client, core, demo_home, demo_keys,
                                                                                 monkeypatch):
    import service.provenance.detect as detect_module

    freeze_minute(core, monkeypatch)
    decodes = []
    real = detect_module.verify_image
    monkeypatch.setattr(detect_module, "verify_image", lambda *args: decodes.append(1) or real(*args))
    attacker = "203.0.113.66"
    flood = stranger(client, attacker)
    image = png()
    store = audit_store(demo_home)
    before = store.total_bytes()
    statuses: dict[int, int] = {}
    sent = 300
    for _ in range(sent):
        status = detect(flood, image).status_code
        statuses[status] = statuses.get(status, 0) + 1
    budget = core.settings.detect_requests_per_minute
    assert statuses == {200: budget, 429: sent - budget}
    assert len(decodes) == budget  # every refused request stopped before its image was decoded
    keyed = flood.post("/v1/detect", content=image, headers={"content-type": "image/png",
                                                              "Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"})
    assert (keyed.status_code, keyed.json()["error"]["code"]) == (429, "source_rate_limited")  # a key buys nothing
    assert int(keyed.headers["Retry-After"]) >= 1 and len(decodes) == budget
    core.trust.refusals.flush(everything=True)
    grown = store.total_bytes() - before
    assert grown < 2048, grown  # one record of the first refusal, one summary of the minute
    about = records_about(demo_home, attacker)
    assert [r["event"] for r in about] == ["refused_at_edge", "refused_unauthenticated"], about
    assert about[1]["total"] == sent - budget + 1 and about[1]["counts"] == {
        "429 source_rate_limited /v1/detect": sent - budget + 1}
    assert all(r.get("route") in (None, "/v1/detect") for r in about)
    # Another address is not held back, nor is verify with a key from this one.
    assert detect(stranger(client, "203.0.113.67"), image).status_code == 200
    verify = flood.post("/v1/verify", content=image, headers={"content-type": "image/png",
                                                               "Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"})
    assert verify.status_code == 200, verify.text


def png_bomb(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def test_verify_bounds_slots_and_compact_refusals(client, core, demo_home, monkeypatch):
    freeze_minute(core, monkeypatch)
    small = png()
    text_bomb = small[:33] + chunk(b"tEXt", b"k\x00v") * 50_000 + small[33:]
    cases = [(b"", 400, "malformed_request"), (b"not an image", 422, "unreadable_image"),
             (png_bomb(100_000, 100_000), 413, "payload_too_large"), (text_bomb, 422, "image_too_complex")]
    for number, (data, status, code) in enumerate(cases):
        source = f"203.0.113.{80 + number}"
        response = detect(stranger(client, source), data)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
        [record] = records_about(demo_home, source)  # compact: route, code, address; never the body
        assert (record["event"], record["route"], record["reason"]) == ("refused_at_edge", "/v1/detect", code)
        assert "upload_sha256" not in record and record.get("unauthenticated") is True
    too_big = detect(stranger(client, "203.0.113.90"), b"\x89PNG" + b"\x00" * (core.settings.max_verify_bytes + 70_000))
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "payload_too_large")
    # One check at a time per address, a few in all; never a verify slot.
    slots = core.trust.detect_slots
    with slots.hold("203.0.113.91"):
        busy = detect(stranger(client, "203.0.113.91"), small)
        assert (busy.status_code, busy.json()["error"]["code"]) == (429, "too_many_concurrent")
        assert detect(stranger(client, "203.0.113.92"), small).status_code == 200
    held = [slots.hold(f"198.18.0.{n}") for n in range(slots.total)]
    for slot in held:
        slot.__enter__()
    try:
        full = detect(stranger(client, "203.0.113.93"), small)
        assert (full.status_code, full.json()["error"]["code"]) == (503, "detect_busy") and full.headers["Retry-After"]
        verified = client.post("/v1/verify", content=small, headers={"content-type": "image/png"})
        assert verified.status_code == 200  # the verify slots are others
    finally:
        for slot in held:
            slot.__exit__(None, None, None)


def test_the_studio_page_is_public_and_answers_the_same(client, generation, demo_home):
    data, watermark_id, generation_id = generation
    visitor = stranger(client, "198.51.100.30")
    page = visitor.get("/studio/detect")
    assert page.status_code == 200 and "Sign in" in page.text and "Sign out" not in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answered = visitor.post("/studio/detect", data={"csrf_token": token}, files={"image": ("x.png", data, "image/png")},
                            headers={"HX-Request": "true"})
    assert answered.status_code == 200, answered.text
    facts = dict(re.findall(r'data-field="([a-z0-9_]+)">([^<]*)<', answered.text))
    assert facts["ai_generated"].startswith("yes") and "present" in facts["watermark"]
    assert facts["c2pa_manifest"].startswith("valid") and facts["training_mining"].startswith("not allowed")
    assert facts["licence"].startswith("an operator's paper consent record")  # the demo's: opaque ids only
    assert facts["digital_source_type"] == "trainedAlgorithmicMedia"
    for secret in (watermark_id, generation_id, "demo-ava", PROMPT):
        assert secret not in answered.text
    plain = visitor.post("/studio/detect", data={"csrf_token": token}, files={"image": ("x.png", data, "image/png")})
    assert plain.status_code == 200 and "<h1>" in plain.text  # without JavaScript: the whole page, answered
    assert 'data-field="training_mining">not allowed <' in plain.text and generation_id not in plain.text
    forged = visitor.post("/studio/detect", data={"csrf_token": "made-up"}, files={"image": ("x.png", data, "image/png")})
    assert forged.status_code == 403 and "csrf_failed" in forged.text
    [record] = records_about(demo_home, "198.51.100.30")
    assert (record["route"], record["reason"]) == ("/studio/detect", "csrf_failed")
