"""The HTTP edge: what must happen before a body is read, and the one mapping of errors to HTTP.

Owns: the `{"error": {"code", "message", "field"}}` body and its status code for every typed
error, and an ASGI middleware that first settles who the client is (the peer, or the
`X-Forwarded-For` client only behind a trusted proxy: `service.tenancy.preauth`) and its scheme
(`X-Forwarded-Proto`, from a trusted proxy only, so a request that was https behind a proxy
that ended TLS reads as https), lets a
pre-authentication check refuse the source (429) before anything else, and refuses oversized
bodies (413) and unauthenticated uploads (401/403) before they are read or spooled. Validation of what is read is the router's
(`service.gateway.errors`). Plain ASGI: must never import bentoml.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from starlette.responses import JSONResponse

from service.asgi_body import read_body
from service.errors import AtelierError, MalformedRequest, PayloadTooLarge, error_body

log = logging.getLogger("atelier.http")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class LengthRequired(AtelierError):
    status = 411
    code = "length_required"




def error_response(exc: AtelierError) -> JSONResponse:
    """The single place a typed error becomes an HTTP response."""
    return JSONResponse(error_body(exc), status_code=exc.status, headers=exc.response_headers())


def internal_error_response() -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "internal_error", "message": "an unexpected error occurred; it has been logged"}},
        status_code=500,
    )


class HttpEdge:
    """ASGI middleware in front of the BentoML app.

    Every request body is buffered and capped at `max_body_bytes`, except on the upload paths
    of `streamed_limits`: those must declare a Content-Length within their own cap and are
    streamed through unbuffered.
    """

    def __init__(
        self,
        app,
        max_body_bytes: int | Callable[[], int] = 64 * 1024,
        streamed_limits: dict[str, int | Callable[[], int]] | None = None,
        on_refused: Callable[[str, AtelierError, str | None], None] | None = None,
        before_upload: Callable[[str, str | None], None] | None = None,
        body_limits: dict[str, int | Callable[[], int]] | None = None,
        trusted_proxies: tuple | Callable[[], tuple] = (),
        before_request: Callable[[str, str | None], None] | None = None,
    ):
        self.app = app
        # Networks whose X-Forwarded-For is believed; scope["client"] becomes the real client.
        self._trusted = trusted_proxies
        # Called (in the event loop: it must be cheap, no I/O) with (path, client, Authorization
        # header) for every /v1 request before anything else; raising refuses it (per-source
        # limits before authentication, which a valid key passes).
        self.before_request = before_request
        self.body_limits = body_limits or {}  # per-path caps that replace max_body_bytes
        self._max_body = max_body_bytes
        self.streamed_limits = streamed_limits or {}
        self.on_refused = on_refused  # e.g. the audit log: called (in a worker thread) before the reply
        # Called (in a worker thread) with (path, Authorization header) before an upload is
        # streamed in; raising refuses it, so no unauthenticated gigabyte is ever spooled.
        self.before_upload = before_upload

    async def _refuse(self, exc: AtelierError, scope: Scope, receive: Receive, send: Send) -> None:
        if self.on_refused is not None:
            import anyio

            client = scope.get("client")
            await anyio.to_thread.run_sync(self.on_refused, scope["path"], exc, client[0] if client else None)
        await error_response(exc)(scope, receive, send)

    @property
    def max_body_bytes(self) -> int:
        return self._max_body() if callable(self._max_body) else self._max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trusted = self._trusted() if callable(self._trusted) else self._trusted
        if trusted:
            from service.tenancy.preauth import client_address, forwarded_scheme

            peer = scope.get("client")
            headers = scope.get("headers", [])
            forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
            client = client_address(peer[0] if peer else None, forwarded, trusted)
            # TLS ended at a trusted proxy: the request was https if that proxy says so (only
            # then: anyone else's X-Forwarded-Proto is ignored). Secure cookies and HSTS follow.
            scheme = forwarded_scheme(peer[0] if peer else None,
                                      [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-proto"], trusted)
            if scheme is not None:
                scope["scheme"] = scheme
            if peer and client != peer[0]:
                scope["client"] = (client, 0)
        if self.before_request is not None and scope["path"].startswith("/v1/"):
            client = scope.get("client")
            authorization = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), None)
            try:
                self.before_request(scope["path"], client[0] if client else None, authorization)
            except AtelierError as exc:
                await self._refuse(exc, scope, receive, send)
                return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        if path in self.streamed_limits:
            await self._streamed(scope, receive, send)
            return
        limit = self.body_limits.get(path, self.max_body_bytes)
        limit = limit() if callable(limit) else limit
        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise PayloadTooLarge(f"the body is {declared} bytes; the limit for {path} is {limit} bytes")
            body = await read_body(receive, limit, f"the body is larger than the limit for {path} ({limit} bytes)")
        except AtelierError as exc:
            await self._refuse(exc, scope, receive, send)
            return

        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/") or "/"
        limit = self.streamed_limits[path]
        limit = limit() if callable(limit) else limit
        try:
            declared = _content_length(scope)
            if declared is None:
                raise LengthRequired(f"uploads to {path} must declare a Content-Length")
            if declared > limit:
                raise PayloadTooLarge(f"the body is {declared} bytes; the limit for {path} is {limit} bytes")
            if self.before_upload is not None:
                import anyio

                authorization = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), None)
                principal = await anyio.to_thread.run_sync(self.before_upload, path, authorization)
                if principal is not None:  # the route's refusals (a torn multipart...) name the key
                    scope.setdefault("state", {})["principal"] = principal
        except AtelierError as exc:
            await self._refuse(exc, scope, receive, send)
            return
        await self.app(scope, receive, send)  # the server enforces the declared length


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise MalformedRequest("the Content-Length header is not a number") from None
    return None
