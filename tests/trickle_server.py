"""A real HTTP server that answers slowly on purpose, for the fetch-deadline tests.

`/slow...` sends its status line at once, then one header line every `every_s` seconds until
`release` is set (then the rest of the headers and a small PNG) or `max_lines` are sent (then it
hangs up). `/fast...` answers the PNG at once. It counts the connections open now, every path
asked for, and at which header line each slow client hung up.
"""

from __future__ import annotations

import io
import socket
import threading

from PIL import Image


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


class TrickleServer:
    def __init__(self, every_s: float = 0.3, max_lines: int = 400):
        self.every_s = every_s
        self.max_lines = max_lines
        self.release = threading.Event()
        self.body = png()
        self.open = 0
        self.paths: list[str] = []
        self.hung_up_at: list[int] = []  # header lines a slow client had received when it went away
        self.finished = 0  # slow responses sent in full
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._closing = threading.Event()
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.open += 1
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            path = request.split(b" ", 2)[1].decode()
            with self._lock:
                self.paths.append(path)
            tail = f"Content-Type: image/png\r\nContent-Length: {len(self.body)}\r\nConnection: close\r\n\r\n".encode()
            if not path.startswith("/slow"):
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + tail + self.body)
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for line in range(self.max_lines):
                if self.release.wait(self.every_s) or self._closing.is_set():
                    break
                try:
                    conn.sendall(f"X-Trickle-{line}: still coming\r\n".encode())
                except OSError:
                    with self._lock:
                        self.hung_up_at.append(line)
                    return
            else:
                return  # max_lines sent: hang up without finishing the headers
            if self._closing.is_set():
                return
            try:
                conn.sendall(tail + self.body)
                with self._lock:
                    self.finished += 1
            except OSError:
                with self._lock:
                    self.hung_up_at.append(-1)
        except OSError:
            pass
        finally:
            with self._lock:
                self.open -= 1
            conn.close()

    def close(self) -> None:
        self._closing.set()
        self.release.set()
        self._sock.close()
