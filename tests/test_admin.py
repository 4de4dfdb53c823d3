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


# (method, route, JSON body or query parameters): reads are GET with query parameters, writes POST.
ADMIN_ROUTES = [("GET", "/v1/admin/twins/list", {}), ("GET", "/v1/admin/twins/list", {"cache": "true"}),
                ("POST", "/v1/admin/twins/evict", {"twin_id": "demo-ava"}),
                ("POST", "/v1/admin/twins/prefetch", {"twin_ids": ["demo-ava"]}),
                ("POST", "/v1/admin/twins", {"twin_id": "x", "adapter_key": "demo-ava.safetensors"}),
                ("POST", "/v1/admin/twins/revoke", {"twin_id": "demo-ava"}), ("GET", "/v1/admin/tenants/list", {}),
                ("GET", "/v1/admin/keys/list", {}), ("GET", "/v1/admin/keys/list", {"tenant_id": "demo"}),
                ("GET", "/v1/admin/consent/history", {"twin_id": "demo-ava"}),
                ("GET", "/v1/admin/presets/list", {"tenant_id": "demo"}),
                ("GET", "/v1/admin/webhooks/deliveries", {"tenant_id": "demo"})]


def call(client, method: str, route: str, payload: dict, headers: dict | None = None):
    if method == "GET":
        return client.get(route, params=payload, headers=headers)
    return client.post(route, json=payload, headers=headers)


@pytest.mark.parametrize("headers, code", [
    ({"Authorization": ""}, "missing_api_key"),
    ({"Authorization": "Bearer wrong"}, "invalid_api_key"),
    ({"Authorization": "Bearer atl_000000000000_guessedsecret"}, "invalid_api_key"),
])
def test_admin_routes_need_an_admin_key(admin_client, headers, code, registry):
    for method, route, payload in ADMIN_ROUTES:
        response = call(admin_client, method, route, payload, headers)
        assert response.status_code == 401, (route, response.text)
        assert response.json()["error"]["code"] == code
    assert registry.get_twin("x", include_deleted=True) is None and registry.get_twin("demo-ava").revoked_at is None


def test_a_generate_key_cannot_use_admin_routes(admin_client, demo_keys, registry):
    basic = {"Authorization": f"Basic {demo_keys['ATELIER_ADMIN_KEY']}"}  # the right key, the wrong scheme
    for method, route, payload in ADMIN_ROUTES:
        response = call(admin_client, method, route, payload)  # the client's default: the demo generate+verify key
        assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope"), route
        assert call(admin_client, method, route, payload, basic).status_code == 401
    assert registry.get_twin("x", include_deleted=True) is None and registry.get_twin("demo-ava").revoked_at is None


def test_reads_are_get_and_writes_are_post(admin_client):
    """An admin read answers GET with query parameters; the old POST form is 405, in our error shape."""
    listing = admin_client.get("/v1/admin/tenants/list", headers=AUTH)
    assert listing.status_code == 200 and "demo" in [t["id"] for t in listing.json()["tenants"]]
    keys = admin_client.get("/v1/admin/keys/list", params={"tenant_id": "demo"}, headers=AUTH).json()["keys"]
    assert keys and all(k["tenant_id"] == "demo" for k in keys)
    history = admin_client.get("/v1/admin/consent/history", params={"twin_id": "demo-ava"}, headers=AUTH).json()
    assert history["twin_id"] == "demo-ava" and history["versions"]
    for route, body in [("/v1/admin/tenants/list", {}), ("/v1/admin/twins/list", {}),
                        ("/v1/admin/consent/history", {"twin_id": "demo-ava"})]:
        response = admin_client.post(route, json=body, headers=AUTH)
        assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed"), route
    response = admin_client.get("/v1/admin/twins/revoke", params={"twin_id": "demo-ava"}, headers=AUTH)
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize("route, params, field", [
    ("/v1/admin/keys/list", {"tenant_id": "Not A Tenant!"}, "tenant_id"),
    ("/v1/admin/consent/history", {}, "twin_id"),
    ("/v1/admin/consent/history", {"twin_id": "../x"}, "twin_id"),
    ("/v1/admin/presets/list", {}, "tenant_id"),
    ("/v1/admin/webhooks/deliveries", {"job_id": "not-hex"}, "job_id"),
    ("/v1/admin/twins/list", {"cache": "maybe"}, "cache"),
])
def test_bad_query_parameters_are_422_naming_them(admin_client, route, params, field):
    response = admin_client.get(route, params=params, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_field" and response.json()["error"]["field"] == field


def test_reads_name_unknown_tenants_and_twins(admin_client):
    for route, params, code in [("/v1/admin/keys/list", {"tenant_id": "nobody"}, "tenant_not_found"),
                                ("/v1/admin/presets/list", {"tenant_id": "nobody"}, "tenant_not_found"),
                                ("/v1/admin/consent/history", {"twin_id": "nobody"}, "twin_not_found")]:
        response = admin_client.get(route, params=params, headers=AUTH)
        assert (response.status_code, response.json()["error"]["code"]) == (404, code), route


def test_register_by_upload_then_generate_list_evict(admin_client, demo_home):
    data = lora_file(demo_home / "demo" / "pipeline", 4, 4.0, seed=99)
    response = admin_client.post("/v1/admin/twins", headers=AUTH, data={"twin_id": "uploaded-dana", "display_name": "Dana"},
                                 files={"adapter": ("dana.safetensors", data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    twin = response.json()["twin"]
    assert response.json()["created"] is True and twin["adapter_sha256"] == hashlib.sha256(data).hexdigest()
    assert (demo_home / "adapters" / twin["adapter_key"]).read_bytes() == data
    refused = admin_client.post("/v1/generate", json={"twin_id": "uploaded-dana", **GEN})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "consent_missing"
    consent(admin_client, "uploaded-dana")

    generated = admin_client.post("/v1/generate", json={"twin_id": "uploaded-dana", **GEN})
    assert generated.status_code == 200
    plain = admin_client.get("/v1/admin/twins/list", headers=AUTH).json()  # the gateway's catalogue alone
    state = next(t for t in plain["twins"] if t["id"] == "uploaded-dana")
    assert state["adapter_sha256"] == twin["adapter_sha256"] and state["tiers"] is None and state["in_slot"] is None
    listing = admin_client.get("/v1/admin/twins/list", params={"cache": "true"}, headers=AUTH).json()
    state = next(t for t in listing["twins"] if t["id"] == "uploaded-dana")
    assert state["tiers"] == ["device", "host", "disk"] and state["in_slot"] is True
    assert listing["cache"]["device"]["entries"] >= 1

    evicted = admin_client.post("/v1/admin/twins/evict", json={"twin_id": "uploaded-dana"}, headers=AUTH).json()
    assert evicted["evicted_from"] == ["device", "host", "disk", "slot"]
    listing = admin_client.get("/v1/admin/twins/list", params={"cache": "true"}, headers=AUTH).json()
    state = next(t for t in listing["twins"] if t["id"] == "uploaded-dana")
    assert state["tiers"] == [] and state["in_slot"] is False
    again = admin_client.post("/v1/generate", json={"twin_id": "uploaded-dana", **GEN})
    assert same_picture(b64(again), b64(generated))


def test_register_by_store_key_and_replace(admin_client, demo_home):
    """By store key as JSON (as docs/API.md shows) or as a form: both register the same way, and
    a replaced adapter is what the renderer serves from then on."""
    for name, seed in (("v1", 601), ("v2", 602)):
        path = demo_home / "adapters" / "keyed-eli" / f"{name}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lora_file(demo_home / "demo" / "pipeline", 4, 4.0, seed=seed))
    first = admin_client.post("/v1/admin/twins", headers=AUTH, json={"twin_id": "keyed-eli", "adapter_key": "keyed-eli/v1.safetensors"})
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True and first.json()["twin"]["adapter_key"] == "keyed-eli/v1.safetensors"
    consent(admin_client, "keyed-eli")
    before = admin_client.post("/v1/generate", json={"twin_id": "keyed-eli", **GEN})
    assert before.status_code == 200, before.text

    second = admin_client.post("/v1/admin/twins", headers=AUTH, data={"twin_id": "keyed-eli", "adapter_key": "keyed-eli/v2.safetensors"})
    assert second.status_code == 201, second.text
    assert second.json()["created"] is False
    assert second.json()["replaced_sha256"] == first.json()["twin"]["adapter_sha256"] != second.json()["twin"]["adapter_sha256"]
    after = admin_client.post("/v1/generate", json={"twin_id": "keyed-eli", **GEN})
    assert after.status_code == 200 and not same_picture(b64(before), b64(after))  # same seed, the new adapter
    again = admin_client.post("/v1/generate", json={"twin_id": "keyed-eli", **GEN})
    assert same_picture(b64(after), b64(again))


def test_an_adapter_that_does_not_fit_the_base_model_is_refused_at_its_first_render(admin_client, demo_home, records):
    """The gateway checks the file's header alone (no torch); matrices of another base model's
    layer sizes pass it, and the renderer refuses them when it first loads them: 422, naming the twin."""
    import io

    from safetensors.torch import load, save

    tensors = load(lora_file(demo_home / "demo" / "pipeline", 4, 4.0, targets=("to_q",), seed=5))
    a_key = next(k for k in sorted(tensors) if k.endswith("lora_A.weight"))
    a = tensors[a_key]
    tensors[a_key] = a.new_zeros((a.shape[0], a.shape[1] * 2))  # rank 4 still, but twice the base layer's width
    misfit = save(tensors)
    response = admin_client.post("/v1/admin/twins", headers=AUTH, data={"twin_id": "misfit-fay"},
                                 files={"adapter": ("fay.safetensors", io.BytesIO(misfit), "application/octet-stream")})
    assert response.status_code == 201, response.text
    consent(admin_client, "misfit-fay")
    refused = admin_client.post("/v1/generate", json={"twin_id": "misfit-fay", **GEN})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "adapter_incompatible" and error["field"] == "twin_id"
    assert "misfit-fay" in error["message"] and "do not fit the base model" in error["message"]
    [record] = [r for r in records("twin_id", "misfit-fay") if r.get("event") == "generation"]
    assert (record["outcome"], record["reason"], record["status"]) == ("refused", "adapter_incompatible", 422)
    assert admin_client.post("/v1/generate", json={"twin_id": "demo-ava", **GEN}).status_code == 200  # the slot is unharmed


@pytest.mark.parametrize("body, field", [
    ({"twin_id": "x1", "adapter_key": "../../etc/passwd.safetensors"}, "adapter_key"),
    ({"twin_id": "x2", "adapter_key": "demo-ava.bin"}, "adapter_key"),
    ({"twin_id": "x3", "adapter_key": "no-such.safetensors"}, "adapter_key"),
    ({"twin_id": "../x", "adapter_key": "demo-ava.safetensors"}, "twin_id"),
    ({"twin_id": "x4"}, "adapter"),
    ({"twin_id": 5, "adapter_key": "demo-ava.safetensors"}, "twin_id"),  # JSON types are checked
    ({"twin_id": "x6", "adapter_key": "demo-ava.safetensors", "colour": "red"}, "colour"),
])
def test_bad_registrations_are_4xx_naming_the_field(admin_client, body, field, registry):
    response = admin_client.post("/v1/admin/twins", headers=AUTH, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["field"] == field
    assert all(t.id != str(body["twin_id"]) for t in registry.list_twins(include_revoked=True))


def text_encoder_lora(pipeline) -> bytes:
    """A LoRA whose weights sit partly in the text encoder (checked from the header alone)."""
    from safetensors.torch import load, save

    tensors = load(lora_file(pipeline, 4, 4.0, targets=("to_q",)))
    key = next(k for k in sorted(tensors) if k.endswith("lora_A.weight"))
    tensors["text_encoder." + key.removeprefix("unet.")] = tensors.pop(key)
    return save(tensors)


def test_incompatible_or_garbage_uploads_are_refused_and_leave_nothing(admin_client, demo_home, registry):
    pipeline = demo_home / "demo" / "pipeline"
    for twin_id, payload, expected in [
        ("too-wide", lora_file(pipeline, 64, 64.0, targets=("to_q",)), "slot holds rank"),
        ("wrong-layers", lora_file(pipeline, 4, 4.0, targets=("proj_in",)), "outside the slot"),
        ("garbage", b"\x80\x04\x95pickle!", "not a safetensors file"),
        ("text-encoder", text_encoder_lora(pipeline), "outside the UNet"),
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


def test_uploads_are_authenticated_before_their_body_is_read(admin_client, records, registry):
    """The edge refuses an unauthenticated or under-scoped upload from its headers alone, and
    audits the refusal compactly (repeats from one source within a minute are only counted)."""
    payload = b"x" * 4096
    for headers, expected in [({"Authorization": ""}, (401, "missing_api_key")), ({}, (403, "insufficient_scope"))]:
        response = admin_client.post("/v1/admin/twins", headers=headers, data={"twin_id": "edge-check"},
                                     files={"adapter": ("a.safetensors", payload, "application/octet-stream")})
        assert (response.status_code, response.json()["error"]["code"]) == expected
        refused = [r for r in records("event", "refused_at_edge")
                   if r["route"] == "/v1/admin/twins" and r["reason"] == expected[1]]
        assert refused and refused[-1]["status"] == expected[0] and "edge-check" not in str(refused[-1])
    assert registry.get_twin("edge-check", include_deleted=True) is None
    verify = admin_client.post("/v1/verify", content=payload, headers={"Authorization": "Bearer nope", "content-type": "image/png"})
    assert (verify.status_code, verify.json()["error"]["code"]) == (401, "invalid_api_key")
