"""How the gateway reaches the renderer: one blocking call per batch, retried while it is busy.

Owns: the two ways to call a renderer — over HTTP (`bentoml serve`, Knative, BentoCloud: the
URL comes from `bentoml.depends`) or in-process (tests that build the gateway without a
server) — and the retry of busy or unreachable renderers (429, 502-504, connection errors)
with exponential backoff until a deadline; the streamed render call (`render_streaming`),
which reports each denoising step while the batch renders; and the cache calls (`cache_state`,
`evict`, `prefetch`), each answered as its typed model (`service.rendering`), an answer of
another shape refused. Each HTTP call opens its own connection, so the renderer's workers take
calls as they free up instead of one worker holding every kept-alive connection. Every HTTP
call carries the gateways' internal credential as its bearer (`service.admission_seal`); a
renderer that refuses it (401) is a configuration error, logged and never retried. Must never
authenticate callers, seal, audit or decide anything about the items it carries (the items
arrive sealed by `service.gateway.generation`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlparse

import httpx

from service.admission_seal import InternalCredential
from service.errors import AtelierError, RendererUnavailable
from service.rendering import (RENDER_CALL_TIMEOUT_S, Backoff, CacheState, Evicted, Prefetched, RenderBatch,
                               RenderBatchResult, cache_state_of, evicted_of, prefetched_of, read_stream)

log = logging.getLogger("atelier.render_client")
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


def retried(once, wait_s: float, stop: threading.Event | None = None):
    """Call `once()` until it does not raise RendererUnavailable or `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    backoff = Backoff()
    while True:
        try:
            return once()
        except RendererUnavailable as exc:
            delay = backoff.next_delay()
            log.debug("renderer unavailable; retrying", extra={"fields": {"reason": exc.message, "retry_in_s": delay}})
            if time.monotonic() + delay > deadline or (stop is not None and stop.is_set()):
                raise
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


class HttpRenderClient:
    """Calls a served Renderer at `url` (http://host:port, tcp://host:port or file:///path.sock)."""

    PATHS = {"render": "/internal/render", "cache_state": "/internal/cache", "evict": "/internal/evict",
             "prefetch": "/internal/prefetch", "render_stream": "/internal/render_stream"}

    def __init__(self, url: str, timeout_s: float = RENDER_CALL_TIMEOUT_S, credential: InternalCredential | None = None):
        self.url = url  # as given (logged in the gateway's ready line)
        self.headers = {"Content-Type": "application/json"}
        if credential is not None:
            self.headers["Authorization"] = credential.authorization()
        parsed = urlparse(url)
        uds = None
        if parsed.scheme == "file":
            uds, url = parsed.path, "http://renderer"
        elif parsed.scheme == "tcp":
            url = f"http://{parsed.netloc}"
        # No kept-alive connections (see the module docstring). The limits go on the transport:
        # httpx ignores a client's own limits once it is given a transport.
        transport = httpx.HTTPTransport(uds=uds, limits=httpx.Limits(max_keepalive_connections=0))
        self.client = httpx.Client(base_url=url, transport=transport, timeout=httpx.Timeout(timeout_s, connect=5.0))

    def _post(self, name: str, body: bytes) -> httpx.Response:
        try:
            response = self.client.post(self.PATHS[name], content=body, headers=self.headers)
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
                httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RendererUnavailable(f"the renderer cannot be reached ({type(exc).__name__})") from None
        except httpx.TimeoutException:
            raise RendererUnavailable("the renderer did not answer in time") from None
        if response.status_code in RETRYABLE_STATUS:
            raise RendererUnavailable(f"the renderer is busy or starting (HTTP {response.status_code})")
        if response.status_code != 200:
            _refused(name, response)
        return response

    def render(self, batch: RenderBatch, *, wait_s: float, stop: threading.Event | None = None) -> RenderBatchResult:
        body = batch.model_dump_json().encode()
        response = retried(lambda: self._post("render", body), wait_s, stop)
        return RenderBatchResult.model_validate_json(response.content)

    def render_streaming(self, batch: RenderBatch, *, wait_s: float, on_progress: Callable[[int, int], None],
                         stop: threading.Event | None = None) -> RenderBatchResult:
        """`render`, with each denoising step passed to `on_progress(step, steps)` as the
        renderer reports it. Busy renderers are retried until the stream starts; a stream cut
        before its result is RendererUnavailable."""
        body = batch.model_dump_json().encode()

        def opened() -> httpx.Response:
            request = self.client.build_request("POST", self.PATHS["render_stream"], content=body, headers=self.headers)
            try:
                response = self.client.send(request, stream=True)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                raise RendererUnavailable(f"the renderer cannot be reached ({type(exc).__name__})") from None
            if response.status_code != 200:
                response.read()
                response.close()
                if response.status_code in RETRYABLE_STATUS:
                    raise RendererUnavailable(f"the renderer is busy or starting (HTTP {response.status_code})")
                _refused("render_stream", response)
            return response

        response = retried(opened, wait_s, stop)
        try:
            result = read_stream(response.iter_lines(), on_progress)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise RendererUnavailable(f"the renderer's stream broke off ({type(exc).__name__})") from None
        finally:
            response.close()
        if result is None:
            raise RendererUnavailable("the renderer's stream ended without a result")
        return result

    def cache_state(self, *, wait_s: float) -> CacheState:
        return cache_state_of(self._answer("cache_state", {}, wait_s))

    def evict(self, twin_id: str, *, wait_s: float) -> Evicted:
        return evicted_of(twin_id, self._answer("evict", {"twin_id": twin_id}, wait_s))

    def prefetch(self, twin_ids: list[str], *, wait_s: float) -> Prefetched:
        return prefetched_of(self._answer("prefetch", {"twin_ids": list(twin_ids)}, wait_s))

    def _answer(self, name: str, payload: dict, wait_s: float) -> object:
        """POST `payload` as JSON to the call's route (retried while the renderer is busy) and
        return the JSON it answers; a body that is not JSON is an AtelierError (500)."""
        body = json.dumps(payload).encode()
        response = retried(lambda: self._post(name, body), wait_s)
        try:
            return response.json()
        except ValueError:
            raise AtelierError(f"the renderer's answer to {name} is not JSON") from None

    def close(self) -> None:
        self.client.close()


def _refused(name: str, response: httpx.Response) -> NoReturn:
    """Log a renderer's refusal (its error body holds no secret) and raise it, unretried."""
    fields = {"call": name, "status": response.status_code, "body": response.text[:300]}
    if response.status_code == 401:
        log.error("the renderer refused this gateway's internal credential or admission seals: gateway and "
                  "renderer must share ATELIER_INTERNAL_TOKEN (or ATELIER_INTERNAL_TOKEN_FILE)", extra={"fields": fields})
    else:
        log.error("renderer error", extra={"fields": fields})
    raise AtelierError(f"the renderer refused the {name} call (HTTP {response.status_code})")


class LocalRenderClient:
    """Calls a Renderer instance in this process (the gateway built without a server): no
    bearer crosses a socket here, and the renderer's runtime still checks every item's seal."""

    def __init__(self, renderer: Any):
        self.renderer = renderer
        self.url = "local"

    def render(self, batch: RenderBatch, *, wait_s: float, stop: threading.Event | None = None) -> RenderBatchResult:
        return self.renderer.render(batch)

    def render_streaming(self, batch: RenderBatch, *, wait_s: float, on_progress: Callable[[int, int], None],
                         stop: threading.Event | None = None) -> RenderBatchResult:
        result = read_stream(self.renderer.render_stream(batch), on_progress)
        if result is None:
            raise RendererUnavailable("the renderer's stream ended without a result")
        return result

    def cache_state(self, *, wait_s: float) -> CacheState:
        return cache_state_of(self.renderer.cache_state())

    def evict(self, twin_id: str, *, wait_s: float) -> Evicted:
        return evicted_of(twin_id, self.renderer.evict(twin_id))

    def prefetch(self, twin_ids: list[str], *, wait_s: float) -> Prefetched:
        return prefetched_of(self.renderer.prefetch(list(twin_ids)))

    def close(self) -> None:
        pass
