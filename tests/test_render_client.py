"""The gateway's render client opens one connection per call, over TCP and over a unix socket
(as `bentoml serve` connects the gateway to its renderer), so that a renderer's workers take
calls as they free up instead of one worker holding every kept-alive connection."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from service.admission_seal import InternalCredential
from service.errors import AtelierError
from service.gateway.render_client import HttpRenderClient
from service.rendering import CacheState, Evicted, Prefetched


class Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive is allowed: only the client decides to close
    connections = 0

    def setup(self):
        super().setup()
        type(self).connections += 1

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps({"twins": [], "cache": {}, "worker": "w-1"}).encode()  # a renderer's cache state
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("uds", 0)  # BaseHTTPRequestHandler wants a (host, port) address


class TCPHTTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


@pytest.fixture(params=["tcp", "unix"])
def renderer_url(request, tmp_path):
    Counting.connections = 0
    if request.param == "unix":
        path = str(tmp_path / "renderer.sock")
        server, url = UnixHTTPServer(path, Counting), f"file://{path}"
    else:
        server = TCPHTTPServer(("127.0.0.1", 0), Counting)
        url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield url
    server.shutdown()
    server.server_close()


def test_each_call_opens_its_own_connection(renderer_url):
    client = HttpRenderClient(renderer_url)
    try:
        for _ in range(3):
            assert client.cache_state(wait_s=10) == CacheState(twins=[], cache={}, worker="w-1")
    finally:
        client.close()
    assert Counting.connections == 3


# -- the cache calls: typed answers, and nothing of another shape passed on --------------------

CACHE_STATE = {  # as the served Renderer answers /internal/cache (service.renderer.runtime.cache_state)
    "twins": [{"id": "demo-ava", "display_name": "Ava", "adapter_path": "ava.safetensors", "sha256": "ab" * 32,
               "rank": 4, "tiers": ["device", "host"], "in_slot": True},
              {"id": "demo-ben", "display_name": "Ben", "adapter_path": "ben.safetensors", "sha256": "cd" * 32,
               "rank": 4, "tiers": [], "in_slot": False}],
    "cache": {"device": {"entries": 1, "bytes": 4096, "budget": 65536}, "loads": {"store": 1, "device": 3}},
    "worker": "host-7",
}


class CacheRoutes(BaseHTTPRequestHandler):
    """The renderer's cache routes: each path answers `answers[path]` (raw bytes, or JSON) and
    records what it was sent."""

    answers: dict = {}
    seen: list = []

    def do_POST(self):
        sent = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append((self.path, sent, self.headers.get("authorization")))
        answer = type(self).answers[self.path]
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def cache_routes():
    CacheRoutes.seen = []
    server = TCPHTTPServer(("127.0.0.1", 0), CacheRoutes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_cache_calls_send_their_arguments_and_answer_typed_models(cache_routes):
    CacheRoutes.answers = {"/internal/cache": CACHE_STATE, "/internal/evict": ["device", "host", "slot"],
                           "/internal/prefetch": {"demo-ava": "device", "ghost": "error:twin_not_found"}}
    credential = InternalCredential("t" * 43)
    client = HttpRenderClient(cache_routes, credential=credential)
    try:
        state = client.cache_state(wait_s=10)
        evicted = client.evict("demo-ava", wait_s=10)
        prefetched = client.prefetch(["demo-ava", "ghost"], wait_s=10)
    finally:
        client.close()
    assert isinstance(state, CacheState) and state.worker == "host-7"
    assert [(t.id, t.tiers, t.in_slot) for t in state.twins] == [("demo-ava", ["device", "host"], True),
                                                                  ("demo-ben", [], False)]
    assert state.of("demo-ava").in_slot and state.of("ghost") is None
    assert state.cache == CACHE_STATE["cache"]
    assert evicted == Evicted(twin_id="demo-ava", evicted_from=["device", "host", "slot"])
    assert prefetched == Prefetched(results={"demo-ava": "device", "ghost": "error:twin_not_found"})
    assert CacheRoutes.seen == [("/internal/cache", {}, credential.authorization()),
                                ("/internal/evict", {"twin_id": "demo-ava"}, credential.authorization()),
                                ("/internal/prefetch", {"twin_ids": ["demo-ava", "ghost"]}, credential.authorization())]


@pytest.mark.parametrize("path, answer", [
    ("/internal/cache", {"twins": "all", "cache": {}}),
    ("/internal/cache", {"twins": [{"id": "demo-ava"}], "cache": {}}),  # no tiers, no slot
    ("/internal/cache", {"twins": [], "cache": {"device": {"entries": "many"}}}),
    ("/internal/cache", ["device"]),
    ("/internal/evict", {"ok": True}),
    ("/internal/evict", [{"tier": "device"}]),
    ("/internal/evict", "device"),
    ("/internal/prefetch", ["device"]),
    ("/internal/prefetch", {"demo-ava": 1}),
    ("/internal/prefetch", {"demo-ava": None}),
    ("/internal/prefetch", b"<html>busy</html>"),  # not JSON at all
    ("/internal/evict", b""),
])
def test_a_cache_answer_of_another_shape_is_an_error_never_passed_on(cache_routes, path, answer):
    CacheRoutes.answers = {path: answer}
    call = {"/internal/cache": lambda c: c.cache_state(wait_s=10),
            "/internal/evict": lambda c: c.evict("demo-ava", wait_s=10),
            "/internal/prefetch": lambda c: c.prefetch(["demo-ava"], wait_s=10)}[path]
    client = HttpRenderClient(cache_routes)
    try:
        with pytest.raises(AtelierError) as refused:
            call(client)
    finally:
        client.close()
    assert refused.value.status == 500 and refused.value.code == "internal_error"
    assert "renderer's answer" in refused.value.message
