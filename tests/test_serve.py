"""End to end: a real `bentoml serve` process on a free loopback port, stopped by its PID."""

import json
import urllib.request

import pytest

from builds.serving import serve
from tests.conftest import open_image


def test_served_http_is_parsed_by_httptools_on_asyncio_loop():
    """What uvicorn picks under `bentoml serve` (its "auto" choices, which BentoML keeps):
    httptools' parser, for the gateway's and renderer's overhead, and asyncio's own selector
    loop, not uvloop: the renderer's accept gate adopts the loop's listening sockets through
    the selector (`service.renderer.accept_gate`) and would fall back to 429s under uvloop."""
    import importlib.util

    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = Config(app=lambda scope, receive, send: None, log_config=None)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    assert importlib.util.find_spec("uvloop") is None, "uvloop is installed: uvicorn would run the renderer on it"


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
