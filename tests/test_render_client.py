"""The gateway's render client opens one connection per call, over TCP and over a unix socket
(as `bentoml serve` connects the gateway to its renderer), so that a renderer's workers take
calls as they free up instead of one worker holding every kept-alive connection."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from service.gateway.render_client import HttpRenderClient


class Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive is allowed: only the client decides to close
    connections = 0

    def setup(self):
        super().setup()
        type(self).connections += 1

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps({"ok": True}).encode()
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
            assert client.call("cache_state", {}, wait_s=10) == {"ok": True}
    finally:
        client.close()
    assert Counting.connections == 3
