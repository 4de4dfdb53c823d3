"""Fetching an asset from an https URL, through the SSRF guard, within one deadline, in a pool of its own.

Owns: refusing URLs the guard refuses (`service.netguard`: only public addresses, https
only unless development callbacks are on), connecting to the checked address only (pinned,
with the original Host and TLS name), never following redirects or environment proxies,
reading at most `max_bytes`, and one wall-clock deadline over the whole fetch: connect, TLS
handshake, sending, the status line and headers, and the body. Every socket operation waits
at most the time left, so a server that trickles a header line every few seconds is cut at
the deadline, not at the deadline of each line. (The HTTP/1.1 exchange is h11 over a plain
socket: httpx's timeouts are per operation and cannot bound the total.)

`FetchPool` runs fetches on their own small set of threads (`ATELIER_FETCH_CONCURRENCY`, at
most `ATELIER_FETCH_CONCURRENCY_PER_TENANT` of them for one tenant): a fetch that finds no
free slot is refused at once (503 `fetch_busy`, or 429 `too_many_fetches` for a tenant over
its share) rather than queued (background work on threads of its own may wait for one:
`patient_fetches`), and its caller waits no longer than the deadline (DNS
included: a resolver that hangs keeps its slot, not its caller). So slow URLs can hold at
most that many threads, never the server's pool that every synchronous route shares.
Must never keep or log the bytes.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from urllib.parse import quote

import h11

from service import __version__
from service.errors import AtelierError, PayloadTooLarge
from service.netguard import Resolver, Target, check_target

USER_AGENT = f"Atelier-Assets/{__version__}"
MAX_HEADER_BYTES = 32 * 1024  # status line and headers together
_GRACE_S = 0.5  # how much longer a caller waits than the deadline for the worker to say why
_PATIENCE: ContextVar[float | None] = ContextVar("atelier_fetch_patience", default=None)


@contextmanager
def patient_fetches(wait_s: float = 120.0) -> Iterator[None]:
    """Fetches made inside wait up to `wait_s` for a free slot instead of being refused: for
    background work on threads of its own (the job dispatcher's, bounded by its window), whose
    items would otherwise fail for a moment's contention. Never for a request's thread."""
    token = _PATIENCE.set(wait_s)
    try:
        yield
    finally:
        _PATIENCE.reset(token)


class UrlRefused(AtelierError):
    status = 422
    code = "url_refused"

    def __init__(self, message: str, *, field: str | None = "url", code: str | None = None):
        super().__init__(message, field=field, code=code)


class FetchFailed(AtelierError):
    status = 422
    code = "fetch_failed"


class FetchBusy(AtelierError):
    """503: every fetch slot of this gateway is taken; the client retries shortly."""

    status = 503
    code = "fetch_busy"

    def __init__(self, message: str, *, retry_after: int = 2, field: str | None = None, code: str | None = None):
        super().__init__(message, field=field, code=code)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyFetches(FetchBusy):
    """429: this tenant already has its share of the fetch slots."""

    status = 429
    code = "too_many_fetches"


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    import certifi  # the CA bundle httpx uses: the same roots as before

    return ssl.create_default_context(cafile=certifi.where())


def fetch_url(url: str, *, max_bytes: int, allow_private: bool = False, timeout_s: float = 20.0,
              resolve: Resolver = socket.getaddrinfo, field: str = "url", deadline: float | None = None) -> bytes:
    """The body of a GET of `url` (2xx only), at most `max_bytes`, all of it within `timeout_s`
    (or by the monotonic `deadline`); typed 4xx errors otherwise."""
    deadline = time.monotonic() + timeout_s if deadline is None else deadline
    target = check_target(url, allow_private=allow_private, resolve=resolve,
                          refuse=lambda message: UrlRefused(message, field=field), label=field)
    if target.parts.scheme.lower() != "https" and not allow_private:
        raise UrlRefused(f"{field} must use https", field=field)
    return _get(target, max_bytes=max_bytes, deadline=deadline, timeout_s=timeout_s, field=field)


def _get(target: Target, *, max_bytes: int, deadline: float, timeout_s: float, field: str) -> bytes:
    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed(f"{field} took longer than {timeout_s:g} s (headers included)", field=field)
        return remaining

    https = target.parts.scheme.lower() == "https"
    host = f"[{target.host}]" if ":" in target.host else target.host
    explicit_port = target.parts.port
    path = quote(target.parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if target.parts.query:
        path += "?" + quote(target.parts.query, safe="/%:@!$&'()*+,;=-._~?")
    headers = [("Host", f"{host}:{explicit_port}" if explicit_port else host), ("User-Agent", USER_AGENT),
               ("Accept", "image/*"), ("Connection", "close")]
    address = target.addresses[0]
    sock: socket.socket | None = None
    try:
        sock = socket.create_connection((str(address), target.port), timeout=left())
        if https:
            sock.settimeout(left())
            sock = _tls().wrap_socket(sock, server_hostname=target.host)  # the handshake, bounded too
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        sock.settimeout(left())
        sock.sendall(conn.send(h11.Request(method="GET", target=path, headers=headers)) + conn.send(h11.EndOfMessage()))
        chunks, size = [], 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                sock.settimeout(left())
                conn.receive_data(sock.recv(64 * 1024))  # b"": the server closed
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                if not 200 <= event.status_code < 300:
                    raise FetchFailed(f"{field} answered HTTP {event.status_code} (redirects are not followed)",
                                      field=field)
                declared = dict(event.headers).get(b"content-length", b"")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise PayloadTooLarge(f"{field} serves {int(declared)} bytes; the limit is {max_bytes}", field=field)
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > max_bytes:
                    raise PayloadTooLarge(f"{field} serves more than {max_bytes} bytes", field=field)
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:  # ConnectionClosed before the message ended
                raise FetchFailed(f"{field} closed the connection early", field=field)
    except AtelierError:
        raise
    except TimeoutError:  # socket.timeout: an operation outlived the time left
        raise FetchFailed(f"{field} took longer than {timeout_s:g} s (headers included)", field=field) from None
    except h11.RemoteProtocolError:
        raise FetchFailed(f"{field} could not be fetched (not a valid HTTP response)", field=field) from None
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise FetchFailed(f"{field} could not be fetched ({type(exc).__name__})", field=field) from None
    finally:
        if sock is not None:
            sock.close()


class FetchPool:
    """At most `workers` fetches at once (`per_owner` for one tenant), on threads of their own."""

    def __init__(self, workers: int = 8, per_owner: int = 4, timeout_s: float = 20.0):
        self.workers = max(1, workers)
        self.per_owner = max(1, min(per_owner or self.workers, self.workers))
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="atelier-fetch")
        self._free = threading.Condition()
        self._running = 0
        self._by_owner: dict[str, int] = {}

    @property
    def running(self) -> int:
        return self._running

    def fetch(self, owner: str, url: str, *, max_bytes: int, allow_private: bool = False,
              resolve: Resolver = socket.getaddrinfo, field: str = "url") -> bytes:
        """`fetch_url` on the pool's threads; refused at once (503/429) when no slot is free."""
        patience = _PATIENCE.get()
        give_up = None if patience is None else time.monotonic() + patience
        with self._free:
            while self._running >= self.workers or self._by_owner.get(owner, 0) >= self.per_owner:
                remaining = None if give_up is None else give_up - time.monotonic()
                if remaining is not None and remaining > 0:
                    self._free.wait(remaining)
                    continue
                if self._running >= self.workers:
                    raise FetchBusy(f"this gateway is already fetching {self.workers} URLs; retry shortly, or "
                                    "upload the image (POST /v1/assets)", field=field)
                raise TooManyFetches(f"this tenant is already fetching {self.per_owner} URLs at once; retry when "
                                     "they are done", retry_after=1, field=field)
            self._running += 1
            self._by_owner[owner] = self._by_owner.get(owner, 0) + 1
        deadline = time.monotonic() + self.timeout_s

        def release() -> None:
            with self._free:
                self._running -= 1
                if self._by_owner[owner] <= 1:
                    del self._by_owner[owner]
                else:
                    self._by_owner[owner] -= 1
                self._free.notify_all()

        def run() -> bytes:
            try:
                return fetch_url(url, max_bytes=max_bytes, allow_private=allow_private, timeout_s=self.timeout_s,
                                 resolve=resolve, field=field, deadline=deadline)
            finally:  # the slot is the worker's until it ends: a hung resolver keeps it, never more
                release()

        try:
            future = self._executor.submit(run)
        except RuntimeError:  # the pool is shut down (the gateway is stopping)
            release()
            raise FetchBusy("the gateway is stopping", field=field) from None
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()) + _GRACE_S)
        except FutureTimeout:
            raise FetchFailed(f"{field} took longer than {self.timeout_s:g} s (headers included)", field=field) from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
