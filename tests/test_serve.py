"""End to end: a real `bentoml serve` process on a free loopback port, stopped by its PID."""

import json
import urllib.request

import pytest

from builds.serving import serve
from tests.conftest import open_image


@pytest.mark.slow
def test_bentoml_serve_generates_a_png(demo_home, demo_keys, tmp_path):
    env = {"ATELIER_CACHE_DIR": str(tmp_path / "cache"), "ATELIER_AUDIT_DIR": str(tmp_path / "audit")}
    with serve(demo_home, tmp_path, env=env) as server:
        body = json.dumps({"twin_id": "demo-ben", "prompt": "street style, denim jacket", "width": 256, "height": 256, "steps": 2, "seed": 3}).encode()
        request = urllib.request.Request(server.url + "/v1/generate/image", data=body, headers={"Content-Type": "application/json", "Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"})
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            image = open_image(response.read())
        assert image.format == "PNG" and image.size == (256, 256)
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert "bentoml_service_request_total" in metrics
        assert 'atelier_adapter_lookups_total{source="store"}' in metrics  # the twin's cold load
        assert 'atelier_adapter_load_seconds_bucket{le="30.0",source="store"}' in metrics
        pid = server.process.pid
    assert server.process.poll() is not None, f"server {pid} still running"
