"""The renderer's door: only gateways come in, and only with work they admitted.

Owns: an ASGI middleware in front of every renderer route but the probes. A call
- without the gateways' bearer credential (`Authorization: Bearer <internal token>`, compared
  in constant time) is answered 401 `unauthorized`;
- with a body that is not JSON is answered 415 `unsupported_media_type` (BentoML would
  otherwise unpickle an `application/vnd.bentoml+pickle` body sent to a dependency service);
- to `/internal/render` or `/internal/render_stream` with any item whose admission seal is
  missing, forged, altered or expired is answered 401 `invalid_admission`, the whole call.
Each refusal has the standard error body, happens before BentoML parses the call or it takes a
render slot, and is logged as one JSON line (path, peer, reason; never a credential). The
runtime checks the seals again (`RendererRuntime.admit`), which also covers the in-process
path. Plain ASGI: must never import bentoml or torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Awaitable

from pydantic import ValidationError

from service.admission_seal import InternalCredential
from service.asgi_body import read_body
from starlette.responses import JSONResponse

from service.errors import AdmissionRefused, AtelierError, MalformedRequest, PayloadTooLarge, Unauthorized, error_body
from service.rendering import RenderBatch

log = logging.getLogger("atelier.internal_auth")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

SEALED_PATHS = frozenset({"/internal/render", "/internal/render_stream"})
# A full batch (16 items, prompts of up to 2000 characters, keypoints) is a few tens of KB.
MAX_SEALED_BODY_BYTES = 4 * 1024**2


class UnsupportedMediaType(AtelierError):
    status = 415
    code = "unsupported_media_type"


class InternalAuth:
    """ASGI middleware: the bearer on every path but `open_paths`, JSON bodies only, and the
    admission seal of every item on the render paths."""

    def __init__(self, app, credential: Callable[[], InternalCredential], open_paths: Iterable[str] = (),
                 sealed_paths: Iterable[str] = SEALED_PATHS, max_body_bytes: int = MAX_SEALED_BODY_BYTES):
        self.app = app
        self._load = credential  # loaded on the first call, in the worker process
        self._credential: InternalCredential | None = None
        self.open_paths = frozenset(open_paths)
        self.sealed_paths = frozenset(sealed_paths)
        self.max_body_bytes = max_body_bytes

    @property
    def credential(self) -> InternalCredential:
        if self._credential is None:
            self._credential = self._load()
        return self._credential

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["path"] in self.open_paths):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = scope.get("headers") or []
        authorizations = [value for name, value in headers if name == b"authorization"]
        if len(authorizations) != 1 or not self.credential.accepts(authorizations[0]):
            reason = "no credential" if not authorizations else "wrong credential"
            await self._refuse(Unauthorized("this renderer serves its gateways only: the internal credential is "
                                            "missing or wrong"), reason, scope, send)
            return
        if scope["type"] != "http":  # no websocket or other route here
            await self._refuse(MalformedRequest("the renderer answers HTTP calls only"), "not http", scope, send)
            return
        for name, value in headers:
            if name == b"content-type" and value.split(b";")[0].strip().lower() != b"application/json":
                await self._refuse(UnsupportedMediaType("the renderer takes JSON bodies only"), "media type",
                                   scope, send)
                return
        if path.rstrip("/") not in self.sealed_paths:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.max_body_bytes, f"a render call's body is at most {self.max_body_bytes} bytes")
        except PayloadTooLarge as exc:
            await self._refuse(exc, "body too large", scope, send)
            return
        try:
            batch = RenderBatch.model_validate_json(body)
        except ValidationError as exc:
            await self._refuse(MalformedRequest(f"not a render batch ({exc.error_count()} errors)"), "malformed",
                               scope, send)
            return
        try:
            self.credential.verify_all(batch.items)
        except AdmissionRefused as exc:
            await self._refuse(exc, "invalid admission", scope, send,
                               generation_ids=[item.generation_id for item in batch.items])
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the client's disconnect, when it comes

        await self.app(scope, replay, send)

    async def _refuse(self, exc: AtelierError, reason: str, scope: Scope, send: Send, **fields) -> None:
        client = scope.get("client")
        log.warning("internal call refused", extra={"fields": {
            "path": scope.get("path"), "status": exc.status, "code": exc.code, "reason": reason,
            "detail": exc.message, "peer": client[0] if client else None, **fields}})
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = JSONResponse(error_body(exc), status_code=exc.status, headers=exc.response_headers())
        await response(scope, _no_receive, send)


async def _no_receive() -> dict:
    return {"type": "http.disconnect"}
