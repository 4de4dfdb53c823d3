"""The HTTP API through the BentoML service's ASGI app: happy paths and every bound violated."""

import base64
import hashlib
import json

import pytest

from tests.conftest import SMALL, open_image, same_picture

GOOD = {"twin_id": "demo-ava", "prompt": "studio photo, linen summer dress", "seed": 7, **SMALL}


def test_ready_and_live(client):
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200


def test_generate_returns_json_with_base64_images(client):
    response = client.post("/v1/generate", json={**GOOD, "num_images": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["twin_id"] == "demo-ava" and body["seed"] == 7 and len(body["generation_id"]) == 32
    assert [img["index"] for img in body["images"]] == [0, 1]
    for image in body["images"]:
        data = base64.b64decode(image["data_base64"])
        assert hashlib.sha256(data).hexdigest() == image["sha256"]
        decoded = open_image(data)
        assert decoded.format == "PNG" and decoded.size == (256, 256)
    for stage in ("queue", "adapter", "encode", "denoise", "decode", "postprocess", "total"):
        assert body["timings_ms"][stage] >= 0


@pytest.mark.parametrize("fmt, content_type, pil_format", [("png", "image/png", "PNG"), ("jpeg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP")])
def test_generate_image_returns_bytes(client, fmt, content_type, pil_format):
    response = client.post("/v1/generate/image", json={**GOOD, "output_format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert len(response.headers["x-generation-id"]) == 32
    assert response.headers["x-image-sha256"] == hashlib.sha256(response.content).hexdigest()
    assert open_image(response.content).format == pil_format


def test_image_route_matches_json_route_for_same_seed(client):
    as_json = client.post("/v1/generate", json=GOOD).json()["images"][0]
    as_bytes = client.post("/v1/generate/image", json=GOOD).content
    assert same_picture(base64.b64decode(as_json["data_base64"]), as_bytes)
    other_seed = client.post("/v1/generate/image", json={**GOOD, "seed": 8}).content
    assert not same_picture(other_seed, as_bytes)


def test_unknown_twin_answers_like_a_twin_without_consent(client):
    """No id oracle: an absent twin and someone else's twin get the same 403."""
    response = client.post("/v1/generate", json={**GOOD, "twin_id": "nobody-here"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "consent_missing" and "nobody-here" not in response.text


BAD_FIELDS = [
    ("width", 56), ("width", 248), ("width", 2056), ("width", 250), ("width", "256"), ("width", 256.5), ("width", True),
    ("height", 0), ("height", 4096), ("height", 260),
    ("steps", 0), ("steps", 101), ("steps", "many"),
    ("guidance_scale", -0.5), ("guidance_scale", 30.5),
    ("num_images", 0), ("num_images", 5),
    ("prompt", ""), ("prompt", "x" * 2001), ("prompt", 12),
    ("negative_prompt", "y" * 2001),
    ("seed", -1), ("seed", 2**53), ("seed", "lucky"),
    ("output_format", "gif"),
    ("twin_id", "../../etc/passwd"), ("twin_id", "Demo-Ava"), ("twin_id", "a" * 65), ("twin_id", ""),
    ("use", "Ecommerce; DROP"),
]


@pytest.mark.parametrize("field, value", BAD_FIELDS)
@pytest.mark.parametrize("route", ["/v1/generate", "/v1/generate/image"])
def test_every_bound_gives_422_naming_the_field(client, route, field, value):
    response = client.post(route, json={**GOOD, field: value})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_field" and error["field"] == field
    assert field in error["message"]


@pytest.mark.parametrize("missing", ["twin_id", "prompt"])
def test_missing_required_field(client, missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == missing


def test_unknown_field_is_named(client):
    response = client.post("/v1/generate", json={**GOOD, "step": 3})
    assert response.status_code == 422
    assert response.json()["error"] == {"code": "invalid_field", "message": "unknown field 'step'", "field": "step"}


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"', b"", b"null"])
def test_malformed_bodies_are_400(client, raw):
    response = client.post("/v1/generate", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_request"


def test_oversized_body_is_413(client):
    response = client.post("/v1/generate", content=b"{" + b" " * 200_000 + b"}", headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("content_type, raw", [
    ("application/x-www-form-urlencoded", b"twin_id=demo-ava"),
    ("text/plain", json.dumps(GOOD).encode()),  # a JSON body under another media type is not read as JSON
])
def test_wrong_content_type_is_400(client, content_type, raw):
    response = client.post("/v1/generate", content=raw, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_request"


def test_corrupt_adapter_is_503_not_500(client, registry):
    original = registry.get_twin("demo-cleo")
    registry.put_twin("demo-cleo", display_name=original.display_name, adapter_key=original.adapter_key,
                      adapter_sha256="00" + original.adapter_sha256[2:], rank=original.rank)
    try:
        response = client.post("/v1/generate", json={**GOOD, "twin_id": "demo-cleo"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "adapter_unavailable"
        assert client.post("/v1/generate", json=GOOD).status_code == 200  # other twins keep working
    finally:
        registry.put_twin("demo-cleo", display_name=original.display_name, adapter_key=original.adapter_key,
                          adapter_sha256=original.adapter_sha256, rank=original.rank)


def test_openapi_documents_the_routes(client):
    spec = client.get("/docs.json").json()
    assert "/v1/generate" in spec["paths"] and "/v1/generate/image" in spec["paths"]
