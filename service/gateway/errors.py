"""The gateway's one error path: every failure becomes `{"error": {code, message, field?}}`.

Owns: the exception handler for `AtelierError` (and the translation of FastAPI's validation
errors, unparseable bodies, unknown routes, a lost registry connection and unexpected
exceptions into typed errors first), the audit record of refusals no route recorded (after
authentication: a full record naming the key; before it: the compact, per-source ledger of
`service.audit.refusals`, so a keyless flood cannot flood the audit log), and the error
error codes every route declares for /docs.json (`ERROR_CODES`, `answers`: the statuses and
codes a route can answer beyond the common ones that `service.gateway.openapi` adds from its
dependencies). Must never leak internals: an unexpected exception is logged and answered as a
plain 500.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.audit.events import edge_refusal_event
from service.audit.record import AuditError
from service.audit.recorder import AuditUnavailable
from service.errors import AtelierError, InvalidRequest, MalformedRequest, PayloadTooLarge
from service.registry.errors import RegistryUnavailable
from service.gateway.http_edge import error_response, internal_error_response
from service.schemas import ErrorBody

log = logging.getLogger("atelier.gateway")

# Every error code a /v1 route can answer, with its HTTP status (docs/API.md#errors says when).
# tests/test_openapi_contract.py checks each against the status of the error class that
# carries it, so this catalogue cannot drift from the code.
ERROR_CODES: dict[str, int] = {
    "malformed_request": 400,
    "missing_api_key": 401, "invalid_api_key": 401,
    "insufficient_scope": 403, "base_model_admin_only": 403, "consent_missing": 403, "revoked": 403,
    "consent_expired": 403, "use_not_allowed": 403, "territory_not_allowed": 403, "category_not_allowed": 403,
    "edit_source_mismatch": 403, "edit_upload_not_allowed": 403,
    "licence_pending": 403, "licence_declined": 403, "licence_revoked": 403, "licence_expired": 403,
    "licence_out_of_scope": 403, "not_your_twin": 403,
    "licence_not_found": 404, "person_not_found": 404,
    "licence_not_pending": 409, "licence_not_active": 409, "person_exists": 409,
    "invalid_signature": 422,
    "not_found": 404, "twin_not_found": 404, "tenant_not_found": 404, "key_not_found": 404, "job_not_found": 404,
    "item_not_found": 404, "delivery_not_found": 404, "asset_not_found": 404,
    "method_not_allowed": 405,
    "tenant_exists": 409, "twin_revoked": 409, "adapter_in_use": 409, "likeness_in_use": 409, "would_lock_out": 409,
    "consent_conflict": 409,
    "idempotency_key_reused": 409, "not_awaiting_review": 409, "not_redeliverable": 409,
    "length_required": 411,
    "payload_too_large": 413, "image_too_large": 413,
    "unsupported_image": 415,
    "invalid_field": 422, "url_refused": 422, "fetch_failed": 422, "conditioning_unavailable": 422,
    "callback_url_refused": 422, "prompt_policy": 422, "unreadable_image": 422, "adapter_incompatible": 422,
    "image_too_complex": 422, "edit_source_unverifiable": 422,
    "source_rate_limited": 429, "too_many_auth_failures": 429, "rate_limited": 429, "too_many_concurrent": 429,
    "internal_error": 500, "marking_failed": 500, "render_failed": 500,
    "not_ready": 503, "registry_unavailable": 503, "audit_unavailable": 503, "renderer_unavailable": 503,
    "adapter_unavailable": 503, "model_unavailable": 503, "verify_busy": 503, "detect_busy": 503, "asset_unavailable": 503,
    "asset_store_unavailable": 503, "limits_unavailable": 503,
}

# Groups of codes that several routes share (a route names what it can answer beyond the
# common errors of its dependencies: authentication, body, parameters, availability).
CONSENT = ("consent_missing", "revoked", "consent_expired", "use_not_allowed", "territory_not_allowed",
           "category_not_allowed", "prompt_policy", "licence_pending", "licence_declined", "licence_revoked",
           "licence_expired", "licence_out_of_scope")
INPUT_IMAGES = ("asset_not_found", "url_refused", "fetch_failed", "image_too_large", "unsupported_image",
                "asset_unavailable", "asset_store_unavailable")
RENDERING = ("renderer_unavailable", "adapter_unavailable", "adapter_incompatible", "conditioning_unavailable",
             "model_unavailable", "marking_failed", "render_failed")
GENERATION = ("base_model_admin_only", *CONSENT, *INPUT_IMAGES, *RENDERING)


def answers(*codes: str) -> dict[int, dict]:
    """FastAPI `responses` for the error codes a route can answer beyond the common ones: one
    entry per status, its codes listed in `x-error-codes` (service.gateway.openapi turns each
    into an `ErrorBody` response naming them)."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        if code not in ERROR_CODES:
            raise KeyError(f"unknown error code {code!r}: add it to ERROR_CODES")
        by_status.setdefault(ERROR_CODES[code], [])
        if code not in by_status[ERROR_CODES[code]]:
            by_status[ERROR_CODES[code]].append(code)
    return {status: {"model": ErrorBody, "x-error-codes": found} for status, found in sorted(by_status.items())}


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
    if core is not None and not getattr(exc, "audited", False) and not isinstance(exc, AuditError):
        client = request.client.host if request.client else None
        principal = getattr(request.state, "principal", None)  # set once a key was accepted
        route = route_of(request, exc)
        try:
            if core.trust is not None:  # where admission audits its refusals too (GatewayTrust.refused)
                await anyio.to_thread.run_sync(core.trust.refused, route, exc, client, principal)
            elif principal is not None:
                event = edge_refusal_event(route=route, error=exc, client_ip=client) | principal.audit_fields()
                await anyio.to_thread.run_sync(core.audit.record, event)
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
