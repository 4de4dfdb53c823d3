"""Provenance that names the licence, not the person (issue 28, item 5).

Against the session's gateway (`client`: the real edge, registry and renderer in this process):
- a brand generates under a licence the person signed: every image's C2PA manifest carries
  `com.atelier.licence` = {"basis": "signed", licence id, the hash of the accepted terms}, and
  neither the twin nor the person; `/v1/verify` and the keyless `/v1/detect` report it (detect
  nothing else new);
- the demo tenant's paper consent: the manifest names the paper record and its version, as the
  audit record does; the base model (an admin's twin_id null): no licence assertion at all;
- a tampered file, a manifest signed by someone else and malformed assertions report no licence.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import c2pa
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from starlette.testclient import TestClient

from builds.dev_ca import build_dev_ca
from service.licence_document import encode_public_key, sign
from service.provenance.c2pa import (GENERATION_ASSERTION, LICENCE_ASSERTION, SIGN_SETTINGS, C2paSigner, ManifestInfo,
                                     licence_of)
from service.provenance.verify import verify_image

TWIN, PERSON = "demo-cleo", "demo-cleo"  # one person per migrated twin, named after it
BRAND = "lprov"
SMALL = {"width": 256, "height": 256, "steps": 2}
DETECT_FIELDS = {"ai_generated", "watermark", "c2pa_manifest", "digital_source_type", "training_mining", "licence"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def stranger(client: TestClient, source: str) -> TestClient:
    """A client with no key, from `source`, on the session gateway's own event loop."""
    other = TestClient(client.app, client=(source, 40000), raise_server_exceptions=False)
    other.portal = client.portal
    return other


def png_of(response) -> bytes:
    assert response.status_code == 200, response.text
    return base64.b64decode(response.json()["images"][0]["data_base64"])


def manifest(data: bytes) -> dict:
    """The active manifest as the C2PA library reads it (any reader with c2patool sees this)."""
    with c2pa.Reader("image/png", io.BytesIO(data), None, c2pa.Context.from_dict(SIGN_SETTINGS)) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]]


def assertions(data: bytes) -> dict:
    return {a["label"]: a["data"] for a in manifest(data)["assertions"]}


def noise_png(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def with_text_chunk(data: bytes) -> bytes:
    """The PNG with a text chunk slipped in after signing: the manifest's hash breaks."""
    payload = b"Comment\x00edited"
    raw = struct.pack(">I", len(payload)) + b"tEXt" + payload + struct.pack(">I", zlib.crc32(b"tEXt" + payload))
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + raw + data[iend:]


@pytest.fixture(scope="module")
def licensed(client, admin_headers):
    """A brand of this module's own generates under a licence the person signed: (png, licence,
    generation id, the brand's headers)."""
    assert client.post("/v1/admin/tenants", headers=admin_headers,
                       json={"tenant_id": BRAND, "name": "Licence Provenance"}).status_code in (201, 409)
    brand = bearer(client.post("/v1/admin/keys", headers=admin_headers, json={
        "tenant_id": BRAND, "scopes": ["generate", "verify", "licensing"], "requests_per_minute": 6000}).json()["token"])
    talent = bearer(client.post("/v1/admin/keys", headers=admin_headers, json={
        "tenant_id": "demo", "scopes": ["talent"], "person_id": PERSON, "requests_per_minute": 6000}).json()["token"])
    key = Ed25519PrivateKey.generate()
    registered = client.post("/v1/talent/signing-key", headers=talent,
                             json={"public_key": encode_public_key(key.public_key())})
    assert registered.status_code == 200, registered.text
    requested = client.post("/v1/licences", headers=brand, json={
        "twin_id": TWIN, "purpose": "Provenance test: product pages of the spring line", "uses": ["ecommerce"],
        "rate_per_image": "0.75", "currency": "EUR"})
    assert requested.status_code == 201, requested.text
    licence = requested.json()
    accepted = client.post("/v1/talent/licences/decide", headers=talent, json={
        "licence_id": licence["licence_id"], "decision": "accept",
        "signature": sign(key, "accept", "person", licence["sha256"])})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    made = client.post("/v1/generate", headers=brand, json={
        "twin_id": TWIN, "prompt": "knit jumper, provenance", "use": "ecommerce", "seed": 3, **SMALL})
    return png_of(made), licence, made.json()["generation_id"], brand


def test_a_signed_licence_is_named_in_the_manifest_and_reported_by_verify_and_detect(client, licensed, records):
    data, licence, generation_id, brand = licensed
    named = {"basis": "signed", "licence_id": licence["licence_id"], "licence_sha256": licence["sha256"]}
    [record] = records("generation_id", generation_id)
    assert record["consent"] == named  # the manifest names what the audit record names

    found = assertions(data)
    assert found[LICENCE_ASSERTION] == named
    assert found[GENERATION_ASSERTION] == {"generation_id": generation_id}  # no twin id
    text = json.dumps(manifest(data))
    for personal in (TWIN, PERSON, "Cleo", BRAND):
        assert personal not in text, personal

    # verify: the brand (its own generation) still learns the twin from the index; any key sees the licence
    own = client.post("/v1/verify", headers={**brand, "content-type": "image/png"}, content=data).json()
    assert own["licence"] == named and own["audit"]["twin_id"] == TWIN and own["generation_id"] == generation_id
    other = client.post("/v1/verify", content=data, headers={"content-type": "image/png"}).json()  # the demo tenant
    assert other["licence"] == named and other["audit"] is None

    # detect: the licence and the fields it always had, nothing about whose image it is
    answer = stranger(client, "198.51.100.61").post("/v1/detect", content=data, headers={"content-type": "image/png"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == DETECT_FIELDS and body["licence"] == named
    assert body["c2pa_manifest"] is True and body["training_mining"] == "notAllowed"
    for secret in (TWIN, BRAND, generation_id, "Cleo", "knit", "tenant", "twin"):
        assert secret not in answer.text, secret


def test_paper_consent_and_the_base_model(client, admin_headers, records):
    made = client.post("/v1/generate", json={"twin_id": "demo-ava", "prompt": "linen dress, paper", "seed": 4, **SMALL})
    data = png_of(made)
    [record] = records("generation_id", made.json()["generation_id"])
    assert record["consent"]["basis"] == "paper"
    paper = {"basis": "paper", "consent_id": record["consent"]["consent_id"],
             "consent_version": record["consent"]["version"]}
    assert assertions(data)[LICENCE_ASSERTION] == paper
    assert client.post("/v1/verify", content=data, headers={"content-type": "image/png"}).json()["licence"] == paper

    base = png_of(client.post("/v1/generate", headers=admin_headers,
                              json={"twin_id": None, "prompt": "linen dress, base model", "seed": 5, **SMALL}))
    assert LICENCE_ASSERTION not in assertions(base)
    assert client.post("/v1/verify", content=base, headers={"content-type": "image/png"}).json()["licence"] is None


def test_a_tampered_or_foreign_manifest_reports_no_licence(client, licensed, tmp_path):
    data, licence, generation_id, _ = licensed
    tampered = with_text_chunk(data)
    report = client.post("/v1/verify", content=tampered, headers={"content-type": "image/png"}).json()
    assert report["c2pa"]["state"] == "Invalid" and report["licence"] is None
    answer = stranger(client, "198.51.100.62").post("/v1/detect", content=tampered,
                                                     headers={"content-type": "image/png"}).json()
    assert answer["c2pa_manifest"] is False and answer["licence"] is None

    # Someone else's certificate, naming the same licence: verify (intact and signed, but Valid,
    # not Trusted) repeats what it says, as it does the training-mining assertion, and its state
    # says who vouches for it; detect (not Atelier's manifest) says nothing of it.
    other = build_dev_ca(tmp_path / "other-keys")
    signer = C2paSigner.from_pem_files(other.signer_chain, other.signer_key)
    named = {"basis": "signed", "licence_id": licence["licence_id"], "licence_sha256": licence["sha256"]}
    forged, _ = signer.sign(noise_png(), "image/png", ManifestInfo(generation_id, None, "Atelier", "0.1.0",
                                                                   licence=named))
    report = client.post("/v1/verify", content=forged, headers={"content-type": "image/png"}).json()
    assert report["c2pa"]["state"] == "Valid" and report["licence"] == named
    assert report["made_by_this_service"] is False
    answer = stranger(client, "198.51.100.63").post("/v1/detect", content=forged,
                                                     headers={"content-type": "image/png"}).json()
    assert answer["c2pa_manifest"] is False and answer["licence"] is None
    # An intact manifest with a malformed licence assertion reports none, even Trusted.
    odd, _ = signer.sign(noise_png(), "image/png", ManifestInfo(generation_id, None, "Atelier", "0.1.0",
                                                                licence={**named, "person": "Cleo"}))
    reading = verify_image(odd, 1 << 22, other.root_cert)
    assert reading.c2pa_state == "Trusted" and reading.licence is None


@pytest.mark.parametrize("data, read", [
    ({"basis": "signed", "licence_id": "lic_0a", "licence_sha256": "ab" * 32}, True),
    ({"basis": "paper", "consent_id": 7, "consent_version": 2}, True),
    ({"basis": "signed", "licence_id": "lic_0a", "licence_sha256": "AB" * 32}, False),
    ({"basis": "signed", "licence_id": "<script>", "licence_sha256": "ab" * 32}, False),
    ({"basis": "signed", "licence_id": "lic_0a"}, False),
    ({"basis": "paper", "consent_id": "7", "consent_version": 2}, False),
    ({"basis": "paper", "consent_id": True, "consent_version": 2}, False),
    ({"basis": "paper", "consent_id": 7, "consent_version": 2, "twin_id": "demo-ava"}, False),
    ({"basis": "other", "licence_id": "lic_0a", "licence_sha256": "ab" * 32}, False),
])
def test_only_a_well_formed_licence_assertion_is_read(data, read):
    assert licence_of({"assertions": [{"label": LICENCE_ASSERTION, "data": data}]}) == (data if read else None)
