"""The gateway's one error path: every failure becomes `{"error": {code, message, field?}}`.

Owns: the exception handler for `AtelierError` (and the translation of FastAPI's validation
errors, unparseable bodies, unknown routes, a lost registry connection and unexpected
exceptions into typed errors first), the audit record of refusals no route recorded (after
authentication: a full record naming the key; before it: the compact, per-source ledger of
`service.audit.refusals`, so a keyless flood cannot flood the audit log), and the error
schemas every route declares for /docs.json. Must never leak internals: an unexpected
exception is logged and answered as a plain 500.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.audit.events import edge_refusal_event
from service.audit.record import AuditError as AuditUnavailable
from service.errors import AtelierError, InvalidRequest, MalformedRequest, PayloadTooLarge
from service.registry.errors import RegistryUnavailable
from service.http_edge import error_response, internal_error_response
from service.schemas import ErrorBody

log = logging.getLogger("atelier.gateway")

ERROR_RESPONSES = {status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


class RouteNotFound(AtelierError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AtelierError):
    status = 405
    code = "method_not_allowed"


def validation_error(exc: RequestValidationError) -> AtelierError:
    """FastAPI's first validation error as a typed error naming the field."""
    first = exc.errors()[0] if exc.errors() else {"type": "", "loc": (), "msg": "invalid request"}
    kind, loc = first.get("type", ""), tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return MalformedRequest("the body is not valid JSON")
    where = loc[0] if loc else "body"
    path = [str(part) for part in loc[1:]]
    if where == "body" and (not path or kind in ("model_attributes_type", "dict_type")) and kind != "missing":
        return MalformedRequest("the body must be a JSON object")
    if where == "body" and kind == "missing" and not path:
        return MalformedRequest("the body is empty; send a JSON object")
    field = ".".join(path) or str(where)
    if kind == "extra_forbidden":
        return InvalidRequest(f"unknown field {field!r}", field=field)
    return InvalidRequest(f"{field}: {first.get('msg', 'invalid')}", field=field)


def route_of(request: Request, exc: AtelierError) -> str:
    """The route template a refusal is filed under: never an attacker's arbitrary path."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(exc, RouteNotFound) or not path or not hasattr(route, "methods"):
        return "(unmatched)"
    return request.scope.get("root_path", "") + path


async def _answer(request: Request, exc: AtelierError):
    core = getattr(request.app.state, "core", None)
    if core is not None and not getattr(exc, "audited", False) and not isinstance(exc, AuditUnavailable):
        client = request.client.host if request.client else None
        principal = getattr(request.state, "principal", None)  # set once a key was accepted
        route = route_of(request, exc)
        try:
            if principal is not None:
                event = edge_refusal_event(route=route, error=exc, client_ip=client) | principal.audit_fields()
                await anyio.to_thread.run_sync(core.audit.record, event)
            elif core.trust is not None:
                await anyio.to_thread.run_sync(core.trust.refused_unauthenticated, route, exc, client)
            else:
                await anyio.to_thread.run_sync(core.audit.record, edge_refusal_event(route=route, error=exc,
                                                                                     client_ip=client))
        except AtelierError:
            return error_response(AuditUnavailable())
    if exc.status >= 500:
        log.warning("request failed", extra={"fields": {"route": request.url.path, "code": exc.code}})
    return error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AtelierError)
    async def atelier_error(request: Request, exc: AtelierError):
        return await _answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return await _answer(request, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 405:
            return await _answer(request, MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
        if exc.status_code == 404:
            return await _answer(request, RouteNotFound(f"no route {request.url.path[:200]}"))
        if exc.status_code == 413:
            return await _answer(request, PayloadTooLarge("the body is too large"))
        # 400 and the rest: a body FastAPI or Starlette could not parse (a multipart body with
        # no boundary, too many parts or fields, a torn part...): the client's fault, in our shape.
        return await _answer(request, MalformedRequest("the request body could not be parsed "
                                                       "(check its Content-Type and multipart encoding)"))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def registry_down(request: Request, exc: Exception):
        log.warning("registry unavailable", extra={"fields": {"route": request.url.path, "error": type(exc).__name__}})
        return await _answer(request, RegistryUnavailable("the registry database cannot be reached right now; "
                                                          "retry shortly"))

    app.add_middleware(UnexpectedErrors)


class UnexpectedErrors:
    """Innermost catch-all: an exception no handler knows is logged and answered as a plain 500
    in our shape (never re-raised into the server, never with its text)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("request failed", extra={"fields": {"route": scope.get("path")}})
            if not started:
                await internal_error_response()(scope, receive, send)
