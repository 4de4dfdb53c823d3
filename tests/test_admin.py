"""Admin routes for twins: an admin key required, register by upload or store key, list, evict, prefetch."""

import hashlib

import pytest

from tests.test_adapter_slot import lora_file

from tests.conftest import same_picture


def b64(response) -> bytes:
    import base64

    return base64.b64decode(response.json()["images"][0]["data_base64"])

GEN = {"prompt": "studio photo", "width": 256, "height": 256, "steps": 2, "seed": 4}
AUTH: dict = {}


@pytest.fixture()
def admin_client(client, admin_headers):
    AUTH.update(admin_headers)
    return client


def consent(client, twin_id: str) -> None:
    """Let the demo tenant use a freshly registered twin (a new twin has no consent)."""
    response = client.post("/v1/admin/consent", headers=AUTH, json={
        "twin_id": twin_id, "tenants": ["demo"], "uses": ["ecommerce"], "recorded_by": "tests"})
    assert response.status_code == 201, response.text


ADMIN_ROUTES = [("/v1/admin/twins/list", {}), ("/v1/admin/twins/evict", {"twin_id": "demo-ava"}),
                ("/v1/admin/twins/prefetch", {"twin_ids": ["demo-ava"]}),
                ("/v1/admin/twins", {"twin_id": "x", "adapter_key": "demo-ava.safetensors"}),
                ("/v1/admin/twins/revoke", {"twin_id": "demo-ava"}), ("/v1/admin/tenants/list", {}),
                ("/v1/admin/keys/list", {}), ("/v1/admin/consent/history", {"twin_id": "demo-ava"})]


@pytest.mark.parametrize("headers, code", [
    ({"Authorization": ""}, "missing_api_key"),
    ({"Authorization": "Bearer wrong"}, "invalid_api_key"),
    ({"Authorization": "Bearer atl_000000000000_guessedsecret"}, "invalid_api_key"),
])
def test_admin_routes_need_an_admin_key(admin_client, headers, code):
    for route, body in ADMIN_ROUTES:
        response = admin_client.post(route, json=body, headers=headers)
        assert response.status_code == 401, (route, response.text)
        assert response.json()["error"]["code"] == code


def test_a_generate_key_cannot_use_admin_routes(admin_client, demo_keys):
    basic = {"Authorization": f"Basic {demo_keys['ATELIER_ADMIN_KEY']}"}  # the right key, the wrong scheme
    for route, body in ADMIN_ROUTES:
        response = admin_client.post(route, json=body)  # the client's default: the demo generate+verify key
        assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope"), route
        assert admin_client.post(route, json=body, headers=basic).status_code == 401


def test_register_by_upload_then_generate_list_evict(admin_client, demo_home):
    data = lora_file(demo_home / "demo" / "pipeline", 4, 4.0, seed=99)
    response = admin_client.post("/v1/admin/twins", headers=AUTH, data={"twin_id": "uploaded-dana", "display_name": "Dana"},
                                 files={"adapter": ("dana.safetensors", data, "application/octet-stream")})
    assert response.status_code == 200, response.text
    twin = response.json()["twin"]
    assert response.json()["created"] is True and twin["sha256"] == hashlib.sha256(data).hexdigest()
    assert (demo_home / "adapters" / twin["adapter_path"]).read_bytes() == data
    refused = admin_client.post("/v1/generate", json={"twin_id": "uploaded-dana", **GEN})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "consent_missing"
    consent(admin_client, "uploaded-dana")

    generated = admin_client.post("/v1/generate", json={"twin_id": "uploaded-dana", **GEN})
    assert generated.status_code == 200
    listing = admin_client.post("/v1/admin/twins/list", json={}, headers=AUTH).json()
    state = next(t for t in listing["twins"] if t["id"] == "uploaded-dana")
    assert state["tiers"] == ["device", "host", "disk"] and state["in_slot"] is True

    evicted = admin_client.post("/v1/admin/twins/evict", json={"twin_id": "uploaded-dana"}, headers=AUTH).json()
    assert evicted["evicted_from"] == ["device", "host", "disk", "slot"]
    listing = admin_client.post("/v1/admin/twins/list", json={}, headers=AUTH).json()
    state = next(t for t in listing["twins"] if t["id"] == "uploaded-dana")
    assert state["tiers"] == [] and state["in_slot"] is False
    again = admin_client.post("/v1/generate", json={"twin_id": "uploaded-dana", **GEN})
    assert same_picture(b64(again), b64(generated))


def test_register_by_store_key_and_replace(admin_client):
    first = admin_client.post("/v1/admin/twins", headers=AUTH, json={"twin_id": "keyed-eli", "adapter_key": "demo-ben.safetensors"})
    assert first.status_code == 200 and first.json()["created"] is True
    second = admin_client.post("/v1/admin/twins", headers=AUTH, json={"twin_id": "keyed-eli", "adapter_key": "demo-cleo.safetensors"})
    assert second.status_code == 200 and second.json()["created"] is False
    assert second.json()["replaced_sha256"] == first.json()["twin"]["sha256"]
    consent(admin_client, "keyed-eli")
    cleo = admin_client.post("/v1/generate", json={"twin_id": "demo-cleo", **GEN})
    eli = admin_client.post("/v1/generate", json={"twin_id": "keyed-eli", **GEN})
    assert same_picture(b64(cleo), b64(eli))  # same adapter, same seed: same picture


@pytest.mark.parametrize("body, field", [
    ({"twin_id": "x1", "adapter_key": "../../etc/passwd.safetensors"}, "adapter_key"),
    ({"twin_id": "x2", "adapter_key": "demo-ava.bin"}, "adapter_key"),
    ({"twin_id": "x3", "adapter_key": "no-such.safetensors"}, "adapter_key"),
    ({"twin_id": "../x", "adapter_key": "demo-ava.safetensors"}, "twin_id"),
    ({"twin_id": "x4"}, "adapter"),
])
def test_bad_registrations_are_4xx_naming_the_field(admin_client, body, field, registry):
    response = admin_client.post("/v1/admin/twins", headers=AUTH, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["field"] == field
    assert all(t.id != body["twin_id"] for t in registry.list_twins(include_revoked=True))


def test_incompatible_or_garbage_uploads_are_refused_and_leave_nothing(admin_client, demo_home, registry):
    pipeline = demo_home / "demo" / "pipeline"
    for twin_id, payload, expected in [
        ("too-wide", lora_file(pipeline, 64, 64.0, targets=("to_q",)), "slot holds rank"),
        ("wrong-layers", lora_file(pipeline, 4, 4.0, targets=("proj_in",)), "outside the slot"),
        ("garbage", b"\x80\x04\x95pickle!", "not a valid safetensors"),
    ]:
        response = admin_client.post("/v1/admin/twins", headers=AUTH, data={"twin_id": twin_id},
                                     files={"adapter": ("a.safetensors", payload, "application/octet-stream")})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "adapter_incompatible" and expected in response.json()["error"]["message"]
        assert registry.get_twin(twin_id, include_deleted=True) is None
        assert not (demo_home / "adapters" / twin_id).exists()


def test_prefetch_reports_each_twin(admin_client):
    response = admin_client.post("/v1/admin/twins/prefetch", json={"twin_ids": ["demo-ava", "ghost"]}, headers=AUTH)
    assert response.status_code == 200
    results = response.json()["results"]
    assert results["ghost"] == "error:twin_not_found" and results["demo-ava"] in ("device", "host", "disk", "store")


def test_upload_without_length_or_too_large(admin_client):
    response = admin_client.post("/v1/admin/twins", headers={**AUTH, "content-length": str(2 * 1024**3), "content-type": "multipart/form-data; boundary=x"}, content=b"")
    assert response.status_code == 413


def test_uploads_are_authenticated_before_their_body_is_read(admin_client, records):
    """The edge refuses an unauthenticated or under-scoped upload from its headers alone."""
    payload = b"x" * 4096
    for headers, expected in [({"Authorization": ""}, (401, "missing_api_key")), ({}, (403, "insufficient_scope"))]:
        response = admin_client.post("/v1/admin/twins", headers=headers, data={"twin_id": "edge-check"},
                                     files={"adapter": ("a.safetensors", payload, "application/octet-stream")})
        assert (response.status_code, response.json()["error"]["code"]) == expected
        last = records("event", "refused_at_edge")[-1]
        assert last["route"] == "/v1/admin/twins" and last["reason"] == expected[1]
    verify = admin_client.post("/v1/verify", content=payload, headers={"Authorization": "Bearer nope", "content-type": "image/png"})
    assert (verify.status_code, verify.json()["error"]["code"]) == (401, "invalid_api_key")
