"""`/v1/edit` cannot change who is shown: its source must be this tenant's generation of the
same, still-consented twin (found through the kept outputs and the watermark index), an
uploaded photo only where an operator allows the tenant (audited and signed as `upload`),
and the twin's consent is checked before any asset is read. Over the in-process gateway,
with the real renderer, registry, asset store, audit log and C2PA signer."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SMALL
from tests.test_adapter_slot import lora_file

GEN = {**SMALL, "prompt": "studio photo, catalogue", "seed": 11}
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


def error(response) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body.get("field")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(client, data: bytes, kind: str, headers=None) -> str:
    response = client.post("/v1/assets", files={"file": ("x.png", data, "image/png")}, data={"kind": kind}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["asset_id"]


def generate(client, twin_id: str, headers=None) -> tuple[str, bytes]:
    response = client.post("/v1/generate", json={**GEN, "twin_id": twin_id}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["generation_id"], base64.b64decode(body["images"][0]["data_base64"])


def edit(client, twin_id: str, source: dict, mask: str, headers=None, **extra):
    body = {"twin_id": twin_id, "prompt": "red silk blouse", "source": source, "mask_asset_id": mask, "steps": 2,
            "seed": 4, **extra}
    return client.post("/v1/edit", json=body, headers=headers)


def stripped(data: bytes) -> bytes:
    """The picture's pixels saved again without its metadata: new bytes, no C2PA, no XMP, the
    watermark still in the pixels. Lossless on purpose: these tests are about how an edit
    source is resolved; how the watermark survives JPEG and scaling is the watermark's own
    test (tests/test_watermark.py, bench/watermark.py), and a JPEG of a 256 px image missed
    the mark on a fresh-clone CI run (then the copy is refused as an upload, not a mismatch)."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, "PNG")
    return out.getvalue()


def photo(seed: int) -> bytes:
    """A photo Atelier never made (no watermark): smooth colour fields with some grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256] / 255.0
    base = np.stack([120 + 80 * x, 90 + 60 * y, 140 - 50 * x * y], axis=-1)
    pixels = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def new_twin(client, admin_headers, demo_home, twin_id: str, seed: int, tenants=("demo",)) -> None:
    data = lora_file(demo_home / "demo" / "pipeline", 4, 4.0, seed=seed)
    response = client.post("/v1/admin/twins", headers=admin_headers, data={"twin_id": twin_id},
                           files={"adapter": ("a.safetensors", data, "application/octet-stream")})
    assert response.status_code in (200, 201), response.text  # 201: a new twin
    body = {"twin_id": twin_id, "tenants": list(tenants), "uses": ["ecommerce"], "recorded_by": "tests"}
    response = client.post("/v1/admin/consent", headers=admin_headers, json=body)
    assert response.status_code == 201, response.text


def new_tenant(client, admin_headers, tenant_id: str) -> dict[str, str]:
    response = client.post("/v1/admin/tenants", headers=admin_headers, json={"tenant_id": tenant_id, "name": tenant_id})
    assert response.status_code == 201, response.text
    response = client.post("/v1/admin/keys", headers=admin_headers, json={"tenant_id": tenant_id, "scopes": ["generate", "verify"]})
    assert response.status_code == 201, response.text
    return bearer(response.json()["token"])


def manifest(data: bytes) -> dict:
    import c2pa

    with c2pa.Reader("image/png", io.BytesIO(data)) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]]


def edit_record(records, response) -> dict:
    [record] = records("generation_id", response.json()["generation_id"])
    assert record["route"] == "/v1/edit" and record["outcome"] == "ok"
    return record["conditioning"]["edit"]


def refusal_records(records, reason: str, twin_id: str) -> list[dict]:
    return [r for r in records("reason", reason) if r["route"] == "/v1/edit" and r["twin_id"] == twin_id]


@pytest.fixture(scope="module")
def mask(client, demo_home) -> str:
    return upload(client, (demo_home / "demo" / "assets" / "mask-torso.png").read_bytes(), "mask")


@pytest.fixture(scope="module")
def ava(client) -> tuple[str, bytes]:
    """A generation of demo-ava for the demo tenant (kept as an edit source)."""
    return generate(client, "demo-ava")


@pytest.fixture()
def uploads_allowed(monkeypatch):
    """ATELIER_EDIT_UPLOAD_TENANTS=demo on the running gateway (its setting, read once at start)."""
    from service.gateway.service import API

    monkeypatch.setattr(API.state.core.inputs.sources, "upload_tenants", frozenset({"demo"}))


# -- the same twin's own generation -------------------------------------------------------------


def test_an_edit_of_the_same_twins_own_generation_is_signed_and_audited_as_a_generation(client, ava, mask, records,
                                                                                       demo_home):
    from service.provenance.xmp import read_digital_source_type

    generation_id, _ = ava
    response = edit(client, "demo-ava", {"generation_id": generation_id}, mask)
    assert response.status_code == 200, response.text
    edited = base64.b64decode(response.json()["images"][0]["data_base64"])
    recorded = edit_record(records, response)
    assert (recorded["source"], recorded["source_generation_id"]) == ("generation", generation_id)
    [ingredient] = manifest(edited)["ingredients"]
    assert ingredient["metadata"]["com.atelier.source"] == "generation"
    assert ingredient["metadata"]["com.atelier.generation_id"] == generation_id
    # the XMP says what the C2PA actions say (issue 24: verify called an edit fully generated)
    assert read_digital_source_type(edited) == COMPOSITE
    verified = client.post("/v1/verify", files={"image": ("e.png", edited, "image/png")})
    assert verified.status_code == 200, verified.text
    assert verified.json()["digital_source_type"] == COMPOSITE
    assert verified.json()["generation_id"] == response.json()["generation_id"]


def test_a_reencoded_copy_of_the_same_twins_generation_is_found_by_its_watermark(client, ava, mask, records):
    generation_id, image = ava
    copy = upload(client, stripped(image), "source")  # new bytes: no kept record, found as /v1/verify finds it
    response = edit(client, "demo-ava", {"asset_id": copy}, mask)
    assert response.status_code == 200, response.text
    recorded = edit_record(records, response)
    assert (recorded["source"], recorded["source_generation_id"], recorded["source_sha256"]) == \
        ("generation", generation_id, copy)


# -- another twin, another tenant, a twin revoked since -------------------------------------------


def test_an_edit_of_one_twins_generation_named_as_another_twin_is_refused(client, ava, mask, records):
    generation_id, image = ava
    kept = hashlib.sha256(image).hexdigest()
    copy = upload(client, stripped(image), "source")
    for source, field in (({"generation_id": generation_id}, "source.generation_id"), ({"asset_id": kept}, "source.asset_id"),
                          ({"asset_id": copy}, "source.asset_id")):
        response = edit(client, "demo-ben", source, mask)
        assert error(response) == (403, "edit_source_mismatch", field), response.text
    refused = refusal_records(records, "edit_source_mismatch", "demo-ben")
    assert len(refused) >= 3 and all(r["event"] == "generation" and r["tenant"] == "demo" for r in refused)


def test_another_tenants_generation_is_refused_and_reveals_nothing(client, admin_headers, demo_home, mask, ava):
    rival = new_tenant(client, admin_headers, "edit-rival")
    new_twin(client, admin_headers, demo_home, "edit-eve", seed=431, tenants=("demo", "edit-rival"))
    theirs, image = generate(client, "edit-eve", headers=rival)
    # named by id: exactly like a generation that does not exist
    by_id = edit(client, "edit-eve", {"generation_id": theirs}, mask)
    missing = edit(client, "edit-eve", {"generation_id": "e" * 32}, mask)
    assert error(by_id) == error(missing) == (404, "asset_not_found", "source.generation_id")
    assert by_id.json()["error"]["message"].replace(theirs, "e" * 32) == missing.json()["error"]["message"]
    # its bytes, obtained elsewhere and uploaded: refused, naming no tenant, generation or twin of theirs
    copy = upload(client, image, "source")
    refused = edit(client, "edit-eve", {"asset_id": copy}, mask)
    assert error(refused) == (403, "edit_source_mismatch", "source.asset_id")
    text = refused.text
    assert theirs not in text and "edit-rival" not in text
    # the same answer as for this tenant's own generation of another twin
    own_other = edit(client, "edit-eve", {"asset_id": hashlib.sha256(ava[1]).hexdigest()}, mask)
    assert own_other.json() == refused.json()


def test_a_generation_of_a_twin_revoked_since_is_refused(client, admin_headers, demo_home, mask):
    new_twin(client, admin_headers, demo_home, "edit-rex", seed=432)
    generation_id, image = generate(client, "edit-rex")
    copy = upload(client, stripped(image), "source")
    response = client.post("/v1/admin/twins/revoke", headers=admin_headers, json={"twin_id": "edit-rex"})
    assert response.status_code == 200, response.text
    assert error(edit(client, "edit-rex", {"generation_id": generation_id}, mask))[:2] == (403, "revoked")
    # re-signed as another (consented) twin: the revoked person's pixels never outlive the revocation
    for source, field in (({"generation_id": generation_id}, "source.generation_id"), ({"asset_id": copy}, "source.asset_id")):
        assert error(edit(client, "demo-ava", source, mask)) == (403, "edit_source_mismatch", field)


# -- uploaded photos ------------------------------------------------------------------------------


def test_an_uploaded_photo_is_refused_by_default(client, mask, records):
    stranger = upload(client, photo(1), "source")
    response = edit(client, "demo-cleo", {"asset_id": stranger}, mask)
    assert error(response) == (403, "edit_upload_not_allowed", "source.asset_id")
    assert refusal_records(records, "edit_upload_not_allowed", "demo-cleo")


def test_an_uploaded_photo_is_accepted_for_an_allowed_tenant_and_marked_as_an_upload(client, mask, records,
                                                                                    uploads_allowed, monkeypatch):
    from service.gateway.service import API

    stranger = upload(client, photo(2), "source")
    response = edit(client, "demo-cleo", {"asset_id": stranger}, mask)
    assert response.status_code == 200, response.text
    recorded = edit_record(records, response)
    assert (recorded["source"], recorded["source_generation_id"], recorded["source_sha256"]) == ("upload", None, stranger)
    edited = base64.b64decode(response.json()["images"][0]["data_base64"])
    [ingredient] = manifest(edited)["ingredients"]
    assert ingredient["metadata"]["com.atelier.source"] == "upload"
    assert "com.atelier.generation_id" not in ingredient["metadata"]
    assert "not an Atelier generation" in ingredient["description"] and "generation" not in ingredient["title"]

    # an edit of that edit is still the uploaded photo's pixels: still an upload
    laundered = {"generation_id": response.json()["generation_id"]}
    again = edit(client, "demo-cleo", laundered, mask)
    assert again.status_code == 200, again.text
    assert edit_record(records, again)["source"] == "upload"
    [ingredient] = manifest(base64.b64decode(again.json()["images"][0]["data_base64"]))["ingredients"]
    assert ingredient["metadata"]["com.atelier.source"] == "upload"
    monkeypatch.setattr(API.state.core.inputs.sources, "upload_tenants", frozenset())
    assert error(edit(client, "demo-cleo", laundered, mask)) == (403, "edit_upload_not_allowed", "source.generation_id")


def test_the_upload_allowance_is_an_operator_setting_read_once(demo_home):
    from service.assets.edit_source import EditSources
    from service.config import Settings
    from service.gateway.core import edit_sources

    settings = Settings.from_env({"ATELIER_HOME": str(demo_home), "ATELIER_EDIT_UPLOAD_TENANTS": " acme, globex ,"})
    assert settings.edit_upload_tenants == ("acme", "globex")
    assert Settings.from_env({"ATELIER_HOME": str(demo_home)}).edit_upload_tenants == ()

    class Assets:
        store = None

    sources = edit_sources(settings, registry=None, assets=Assets())
    assert isinstance(sources, EditSources) and sources.upload_tenants == {"acme", "globex"}


# -- consent before assets ------------------------------------------------------------------------


def test_consent_is_checked_before_any_asset_is_read(client, admin_headers, ava, mask, records):
    outsider = new_tenant(client, admin_headers, "edit-outsider")
    theirs = upload(client, photo(3), "mask", headers=outsider)
    for source, mask_id in (({"asset_id": "0" * 64}, "0" * 64),           # nothing at all
                            ({"generation_id": ava[0]}, mask),             # another tenant's generation and mask
                            ({"asset_id": hashlib.sha256(ava[1]).hexdigest()}, theirs)):
        response = edit(client, "demo-ava", source, mask_id, headers=outsider)
        assert error(response)[:2] == (403, "consent_missing"), response.text
    refused = records("tenant", "edit-outsider")
    assert [r["reason"] for r in refused if r.get("route") == "/v1/edit"] == ["consent_missing"] * 3
    # the prompt policy, too, answers before an asset is looked at
    response = edit(client, "demo-ava", {"asset_id": "0" * 64}, "0" * 64, prompt="nude editorial")
    assert error(response)[:2] == (422, "prompt_policy")


def test_a_source_too_complex_to_check_is_refused_even_where_uploads_are_allowed(client, ava, mask, uploads_allowed):
    """A copy of another twin's generation padded past /v1/verify's parse bounds (9000 chunks)
    cannot pass as an unchecked upload: what cannot be read for a watermark is never guessed."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    data = ava[1]
    iend = data.rindex(b"IEND") - 4
    padded = data[:iend] + chunk(b"zzPd", b"") * 9000 + data[iend:]  # ancillary, private: decoders skip them
    copy = upload(client, padded, "source")
    assert error(edit(client, "demo-ben", {"asset_id": copy}, mask)) == (422, "edit_source_unverifiable", "source.asset_id")
