"""Every image from the API carries both marks, and /v1/verify reads them back safely."""

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from service.provenance.c2pa import read_c2pa
from service.provenance.xmp import read_digital_source_type
from tests.conftest import SMALL, open_image

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GEN = {"twin_id": "demo-ava", "prompt": "studio photo, linen dress", "seed": 5, "width": 256, "height": 256, "steps": 2}


@pytest.fixture(scope="module")
def anchors(demo_home):
    return (demo_home / "keys" / "root_ca.pem").read_text()


@pytest.mark.parametrize("fmt, mime", [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_every_generated_image_is_watermarked_and_signed(client, anchors, fmt, mime):
    response = client.post("/v1/generate", json={**GEN, "output_format": fmt, "num_images": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timings_ms"]["mark"] > 0
    ids = set()
    for image in body["images"]:
        data = base64.b64decode(image["data_base64"])
        assert image["watermark_id"] and len(image["watermark_id"]) == 16
        ids.add(image["watermark_id"])
        c2pa = read_c2pa(data, mime, anchors)
        assert c2pa.state == "Trusted", c2pa.reasons
        assert c2pa.generation_id == body["generation_id"] and c2pa.watermark_id == image["watermark_id"]
        assert read_digital_source_type(data) == TRAINED
    assert len(ids) == 2  # one id per image


def verify_raw(client, data, content_type="image/png"):
    return client.post("/v1/verify", content=data, headers={"content-type": content_type})


def generated_png(client, **overrides):
    response = client.post("/v1/generate", json={**GEN, **overrides})
    image = response.json()["images"][0]
    return base64.b64decode(image["data_base64"]), image["watermark_id"], response.json()["generation_id"]


def test_verify_reads_back_both_marks_raw_and_multipart(client):
    data, watermark_id, generation_id = generated_png(client)
    for response in (verify_raw(client, data),
                     client.post("/v1/verify", files={"image": ("x.png", data, "image/png")})):
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["watermark"]["found"] is True and report["watermark"]["watermark_id"] == watermark_id
        assert report["c2pa"]["state"] == "Trusted"
        assert report["generation_id"] == generation_id
        assert report["digital_source_type"] == TRAINED
        assert report["training_mining"] == "notAllowed"  # the manifest's cawg.training-mining assertion
        assert report["licence"]["basis"] == "paper"  # the manifest's com.atelier.licence: the demo's paper consent
        assert (report["format"], report["width"], report["height"]) == ("png", 256, 256)
        assert report["audit"]["generation_id"] == generation_id and report["audit"]["outcome"] == "ok"


def test_watermark_survives_a_jpeg_reencode_that_strips_the_manifest(client):
    data, watermark_id, _ = generated_png(client, width=512, height=512, seed=8)
    buffer = io.BytesIO()
    open_image(data).convert("RGB").save(buffer, format="JPEG", quality=75)
    report = verify_raw(client, buffer.getvalue(), "image/jpeg").json()
    assert report["c2pa"]["state"] == "Absent" and report["training_mining"] is None  # it went with the manifest
    assert report["licence"] is None
    assert report["watermark"]["found"] is True and report["watermark"]["watermark_id"] == watermark_id


def test_a_tampered_file_reads_invalid(client):
    """A valid PNG chunk slipped in before IEND: the file still decodes, the signature breaks."""
    data, watermark_id, _ = generated_png(client, seed=9)
    payload = b"Comment\x00edited after signing"
    extra = struct.pack(">I", len(payload)) + b"tEXt" + payload + struct.pack(">I", zlib.crc32(b"tEXt" + payload))
    iend = data.rindex(b"IEND") - 4
    report = verify_raw(client, data[:iend] + extra + data[iend:]).json()
    assert report["c2pa"]["state"] == "Invalid" and report["c2pa"]["reasons"]
    assert report["licence"] is None  # an edited manifest's claims are not repeated
    assert report["watermark"]["watermark_id"] == watermark_id  # the pixels were not touched


def test_unmarked_image_is_reported_as_such(client):
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (120, 80, 200)).save(buffer, format="PNG")
    report = verify_raw(client, buffer.getvalue()).json()
    assert report["watermark"] == {"found": False, "watermark_id": None, "bit_errors_corrected": None}
    assert report["c2pa"]["state"] == "Absent" and report["generation_id"] is None


def png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, content_type, status, code", [
    (b"", "image/png", 400, "malformed_request"),
    (b"this is not an image at all", "application/octet-stream", 422, "unreadable_image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", 422, "unreadable_image"),
    (b"\xff\xd8\xff\xe0garbage-jpeg", "image/jpeg", 422, "unreadable_image"),
    (png_bomb(100_000, 100_000), "image/png", 413, "payload_too_large"),
])
def test_bad_uploads_get_a_clear_4xx(client, data, content_type, status, code):
    response = verify_raw(client, data, content_type)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_fifty_megabyte_body_is_refused_before_reading(client):
    response = verify_raw(client, b"\x89PNG" + b"\x00" * (50 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_multipart_without_the_image_field(client):
    other = client.post("/v1/verify", files={"picture": ("x.png", b"abc", "image/png")})  # a field it does not take
    assert (other.status_code, other.json()["error"]["code"], other.json()["error"]["field"]) == (422, "invalid_field", "picture")
    empty = client.post("/v1/verify", content=b"--x--\r\n", headers={"content-type": "multipart/form-data; boundary=x"})
    assert (empty.status_code, empty.json()["error"]["code"], empty.json()["error"]["field"]) == (400, "malformed_request", "image")


def test_a_marking_failure_fails_the_request_and_returns_no_image(client, monkeypatch):
    import service.provenance.marking as marking

    def broken(*args, **kwargs):
        raise RuntimeError("signing service down")

    monkeypatch.setattr(marking, "add_xmp", broken)
    for route in ("/v1/generate", "/v1/generate/image"):
        response = client.post(route, json={**GEN, **SMALL})
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "marking_failed"
        assert "data_base64" not in response.text
