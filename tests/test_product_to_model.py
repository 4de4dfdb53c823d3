"""Product to model over the API: assets (bounds before decoding, tenant scope, SSRF guard), the
brand's garment and a pose on the twin, consent on garment categories, edits that keep what
is outside the mask and name their source in C2PA, and audit records naming every input.

The models' own behaviour (each kind changes the image, cached embeddings, no recompiles,
the pose drawing) is tested in tests/test_conditioning_*.py."""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from tests.conftest import open_image

BASE = {"twin_id": "demo-ava", "prompt": "studio photo, catalogue", "width": 256, "height": 256, "steps": 2, "seed": 21}


def png(size=(256, 256), colour=(30, 160, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def png_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (never decodable in memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def upload(client, data: bytes, kind: str = "garment", headers=None):
    return client.post("/v1/assets", files={"file": ("x.png", data, "image/png")}, data={"kind": kind}, headers=headers)


def error(response) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body.get("field")


@pytest.fixture(scope="module")
def garment(client, demo_home) -> str:
    response = upload(client, (demo_home / "demo" / "assets" / "garment-tshirt.png").read_bytes())
    assert response.status_code == 201, response.text
    return response.json()["asset_id"]


def test_an_uploaded_garment_is_stored_once_by_sha256_and_read_back(client, demo_home):
    data = (demo_home / "demo" / "assets" / "garment-skirt.png").read_bytes()
    first, again = upload(client, data), upload(client, data)
    assert first.status_code == again.status_code == 201
    info = first.json()
    import hashlib

    assert info["asset_id"] == hashlib.sha256(data).hexdigest() == again.json()["asset_id"]
    assert (info["kind"], info["format"], info["width"], info["height"]) == ("garment", "png", 256, 256)
    assert client.get(f"/v1/assets/{info['asset_id']}").json() == info


@pytest.mark.parametrize("data, status, code", [
    (png_bomb(), 413, "image_too_large"),
    (b"GIF89a" + b"\x00" * 64, 415, "unsupported_image"),
    (b"%PDF-1.7 not an image", 415, "unsupported_image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 415, "unsupported_image"),  # a PNG signature and garbage
    (png((16, 16)), 415, "unsupported_image"),  # too small to be a garment
])
def test_bad_uploads_are_refused_before_decoding(client, data, status, code):
    assert error(upload(client, data))[:2] == (status, code)


def test_uploads_need_a_key_and_name_their_fields(client):
    assert error(upload(client, png(), headers={"Authorization": "Bearer nope"}))[:2] == (401, "invalid_api_key")
    assert error(upload(client, png(), kind="hat"))[:2] == (422, "invalid_field")
    extra = client.post("/v1/assets", files={"file": ("x.png", png(), "image/png")}, data={"kind": "garment", "x": "1"})
    assert error(extra) == (422, "invalid_field", "x")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/g.png", "https://127.0.0.1/g.png", "https://169.254.169.254/latest",
                                 "https://10.0.0.7/g.png", "https://[::1]/g.png", "https://user:pw@example.com/g.png",
                                 "file:///etc/passwd", "ftp://example.com/g.png"])
def test_asset_urls_to_private_targets_are_refused(client, url):
    response = client.post("/v1/assets", json={"url": url, "kind": "garment"})
    assert error(response)[:2] == (422, "url_refused"), response.text


def test_another_tenants_asset_reads_like_a_missing_one(client, registry, garment):
    if registry.get_tenant("asset-rival") is None:
        registry.create_tenant("asset-rival", "Rival")
    _, token = registry.create_api_key("asset-rival", ["generate"])
    rival = {"Authorization": f"Bearer {token}"}
    missing = "0" * 64
    for asset in (garment, missing):
        assert error(client.get(f"/v1/assets/{asset}", headers=rival))[:2] == (404, "asset_not_found")
    body = {**BASE, "garments": [{"asset_id": garment, "category": "tops"}]}
    # the rival has no consent for the twin either: consent is checked before the asset
    assert error(client.post("/v1/generate", json=body, headers=rival))[:2] == (403, "consent_missing")
    assert error(client.post("/v1/generate", json={**body, "garments": [{"asset_id": missing, "category": "tops"}]})) == \
        (404, "asset_not_found", "garments.0.asset_id")


def test_the_renderer_applies_the_garment_and_the_pose_and_the_audit_names_them(client, garment, records):
    """That each kind changes the picture and stays deterministic is checked on unmarked
    latents in tests/test_conditioning_models.py: on the tiny demo models the change is smaller
    than the per-image watermark, so served (marked) images cannot show it."""
    response = client.post("/v1/generate", json={**BASE, "garments": [{"asset_id": garment, "category": "tops"}],
                                                 "pose": {"preset": "walking"}})
    assert response.status_code == 200, response.text
    [record] = records("generation_id", response.json()["generation_id"])
    assert record["outcome"] == "ok"
    assert record["conditioning"] == {"garments": [{"sha256": garment, "category": "tops", "strength": 0.8}],
                                      "pose": {"preset": "walking"}}
    # the renderer reports the models it used, with their fingerprints
    assert set(record["components"]) == {"ip_adapter", "image_encoder", "pose_controlnet"}
    assert all(len(v) == 64 for v in record["components"].values())
    plain = client.post("/v1/generate", json=BASE).json()
    [plain_record] = records("generation_id", plain["generation_id"])
    assert plain_record["conditioning"] is None and plain_record["components"] is None


def test_keypoints_are_checked_and_drawn(client):
    points = [[0.5, 0.1 + 0.04 * i] for i in range(18)]
    assert client.post("/v1/generate", json={**BASE, "pose": {"keypoints": points}}).status_code == 200
    bad = [[0.5, 1.5]] + points[1:]
    assert error(client.post("/v1/generate", json={**BASE, "pose": {"keypoints": bad}}))[:2] == (422, "invalid_field")
    both = {"preset": "front", "keypoints": points}
    assert error(client.post("/v1/generate", json={**BASE, "pose": both}))[:2] == (422, "invalid_field")


def test_a_garment_category_the_consent_excludes_is_refused(client, garment, records):
    for category in ("swimwear", "lingerie"):
        response = client.post("/v1/generate", json={**BASE, "garments": [{"asset_id": garment, "category": category}]})
        assert error(response) == (403, "category_not_allowed", "garments.0.category")


def test_an_edit_keeps_the_pixels_outside_the_mask_and_names_its_source(client, demo_home, garment, records):
    from service.provenance.c2pa import read_c2pa

    source = client.post("/v1/generate", json=BASE).json()
    source_png = base64.b64decode(source["images"][0]["data_base64"])
    mask_png = (demo_home / "demo" / "assets" / "mask-torso.png").read_bytes()
    mask_id = upload(client, mask_png, kind="mask").json()["asset_id"]
    body = {"twin_id": "demo-ava", "prompt": "red silk blouse", "source": {"generation_id": source["generation_id"]},
            "mask_asset_id": mask_id, "garments": [{"asset_id": garment, "category": "tops"}], "steps": 2, "seed": 4}
    response = client.post("/v1/edit", json=body)
    assert response.status_code == 200, response.text
    edited = base64.b64decode(response.json()["images"][0]["data_base64"])
    before, after = (np.asarray(open_image(x).convert("RGB"), dtype=np.float32) for x in (source_png, edited))
    mask = np.asarray(Image.open(io.BytesIO(mask_png)).convert("L"), dtype=np.float32) > 0
    outside = ~_grow(mask, 8)  # beyond the feathered edge
    kept, repainted = np.abs(before - after)[outside].mean(), np.abs(before - after)[mask].mean()
    # Outside: the source's pixels, up to the two images' independent invisible watermarks
    # (each a few levels at 37-40 dB PSNR); inside: repainted.
    outside_corr = np.corrcoef(before[outside].ravel(), after[outside].ravel())[0, 1]
    inside_corr = np.corrcoef(before[mask].ravel(), after[mask].ravel())[0, 1]
    assert kept < 8.0 and repainted > 3 * kept, (kept, repainted)
    assert outside_corr > 0.95 and inside_corr < 0.5, (outside_corr, inside_corr)
    reading = read_c2pa(edited, "image/png", (demo_home / "keys" / "root_ca.pem").read_text())
    assert reading.state == "Trusted" and reading.generation_id == response.json()["generation_id"]
    manifest = _active_manifest(edited)
    [ingredient] = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf" and source["generation_id"] in ingredient["title"]
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    assert any(a.get("digitalSourceType", "").endswith("compositeWithTrainedAlgorithmicMedia") for a in actions)
    [record] = records("generation_id", response.json()["generation_id"])
    assert record["route"] == "/v1/edit" and record["conditioning"]["edit"]["mask_sha256"] == mask_id
    assert set(record["components"]) >= {"inpaint", "ip_adapter"}


def test_an_edit_must_name_a_kept_source_and_a_matching_mask(client, demo_home):
    mask_id = upload(client, (demo_home / "demo" / "assets" / "mask-torso.png").read_bytes(), kind="mask").json()["asset_id"]
    body = {"twin_id": "demo-ava", "prompt": "x", "source": {"generation_id": "f" * 32}, "mask_asset_id": mask_id}
    assert error(client.post("/v1/edit", json=body)) == (404, "asset_not_found", "source.generation_id")
    big = upload(client, png((512, 512)), kind="source").json()["asset_id"]
    body["source"] = {"asset_id": big}
    assert error(client.post("/v1/edit", json=body)) == (422, "invalid_field", "mask_asset_id")


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    grown = mask.copy()
    for _ in range(px):
        grown[1:] |= grown[:-1].copy()
        grown[:-1] |= grown[1:].copy()
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
    return grown


def _active_manifest(data: bytes) -> dict:
    import c2pa

    with c2pa.Reader("image/png", io.BytesIO(data)) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]]


# -- URLs of a platform's feed ---------------------------------------------------------------


class Feed(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        body = png(colour=(200, 40, 40))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_feed_url_is_fetched_once_and_cached_by_sha256(tmp_path):
    from service.assets import AssetService
    from service.assets.store import AssetStore, LocalBlobs

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/sku/RC-1.png"
        strict = AssetService(AssetStore(LocalBlobs(tmp_path)), max_bytes=1 << 20, max_pixels=1 << 22)
        with pytest.raises(Exception) as refused:
            strict.add_url("acme", "garment", url)
        assert getattr(refused.value, "code", None) == "url_refused" and Feed.hits == 0
        dev = AssetService(AssetStore(LocalBlobs(tmp_path)), max_bytes=1 << 20, max_pixels=1 << 22, allow_private_urls=True)
        first, second = dev.add_url("acme", "garment", url), dev.add_url("acme", "garment", url)
        assert first.asset_id == second.asset_id and first.source_url == url and Feed.hits == 1
        small = AssetService(AssetStore(LocalBlobs(tmp_path)), max_bytes=100, max_pixels=1 << 22, allow_private_urls=True)
        with pytest.raises(Exception) as big:
            small.add_url("acme", "garment", url + "?v=2")
        assert getattr(big.value, "code", None) == "payload_too_large"
    finally:
        server.shutdown()
        server.server_close()
