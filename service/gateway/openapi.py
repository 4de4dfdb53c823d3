"""The API's contract: the OpenAPI 3.1 document served at `/docs.json`.

Owns: building that document from the gateway's FastAPI router (its routes, request and
response models) plus the health routes BentoML serves, then making it a contract clients
can be generated from: Atelier's title, version and description; a bearer security scheme
declared per operation (the health routes and the keyless public check are `security: []`);
per operation only the error statuses it can answer, each an `ErrorBody` naming its codes
(`x-error-codes`): the common ones derived from what the route depends on (a key, a body,
parameters) and the ones its decorator names (`service.gateway.errors.answers`); and no schema no operation uses. Also
the response shapes routes declare for bytes (`binary_image`) and CSV (`json_or_csv`).
Must never import bentoml (BentoML's own generator, which `bentoml build` still runs for the
bento's apis/openapi.yaml, is not used for /docs.json) and never describe a route the gateway
does not serve.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

try:  # FastAPI >= 0.160 includes routers lazily: their routes are reached through contexts
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI: app.routes holds every APIRoute
    iter_route_contexts = None

from service import __version__
from service.gateway.errors import ERROR_CODES
from service.schemas import MEDIA_TYPES

OPENAPI_VERSION = "3.1.0"
PREFIX = "/v1"
SCHEME = "bearerAuth"
ERROR_REF = "#/components/schemas/ErrorBody"

DESCRIPTION = """\
Atelier renders images of fashion models' digital twins for brands and e-commerce platforms:
one diffusion base model, one LoRA adapter per consenting person. Every image is watermarked
and signed (C2PA), every request is audited, and a twin can be used only by the brands its
person consented to.

**Authentication.** Send an API key as `Authorization: Bearer <key>`. Each operation names
the scope its key needs (`generate`, `verify`, `admin` or `talent`); the health routes and
the public check `POST /v1/detect` take no key (`security: []`).

**Errors.** Every error answers `{"error": {"code", "message", "field"?}}` with a stable
snake_case `code`; each operation lists the statuses it can answer and, in `x-error-codes`,
their codes. A `429` or `503` carries `Retry-After`.

**Catalogue jobs.** `POST /v1/jobs/submit` queues items; poll `GET /v1/jobs/status`, page
through `GET /v1/jobs/get`, or receive Standard Webhooks events: `job.item.completed` per item
(when asked for), then `job.completed` last.
"""

TAGS = [
    {"name": "generate", "description": "Synchronous generation: JSON with base64 images, or the first image's bytes."},
    {"name": "assets", "description": "Input images (garments, poses, masks, source photos) stored per tenant."},
    {"name": "jobs", "description": "Catalogue jobs: submit, poll, page through results, download, cancel, review."},
    {"name": "twins", "description": "The twins a brand may use, with the consent terms of each."},
    {"name": "verify", "description": "Whether an image carries Atelier's watermark and credential, and whose it is."},
    {"name": "detect", "description": "The free public check (no key): whether an image carries Atelier's marks and "
                                      "is AI-generated; never whose it is."},
    {"name": "usage", "description": "Images per day or month, tenant and twin, from the audit log."},
    {"name": "admin", "description": "Operators: tenants, keys, consent, twins and their adapters, delivery, audit."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics (public)."},
]

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


def binary_image(description: str) -> dict:
    """A 200 response of image bytes (PNG, JPEG or WebP, as the request asked)."""
    schema = {"type": "string", "format": "binary"}
    return {"description": description, "content": {media: {"schema": dict(schema)} for media in MEDIA_TYPES.values()}}


def json_or_csv() -> dict:
    """The CSV alternative of a JSON report (`format=csv`); the JSON schema is the route's model."""
    return {"description": "The report: JSON, or CSV with a header row when `format=csv`.",
            "content": {"text/csv": {"schema": {"type": "string"}}}}


# -- what a route depends on -> the errors every such route can answer ------------------------

EVERY_ROUTE = ("source_rate_limited", "too_many_auth_failures", "internal_error", "not_ready", "registry_unavailable",
               "audit_unavailable")
WITH_KEY = ("missing_api_key", "invalid_api_key", "insufficient_scope", "rate_limited", "too_many_concurrent",
            "limits_unavailable")
WITH_BODY = ("malformed_request", "invalid_field", "payload_too_large")
WITH_PARAMETERS = ("invalid_field",)
BODYLESS_POST = ("payload_too_large",)  # the edge caps every body, even one the route ignores


def _calls(dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def key_scope(route) -> str | None:
    """The scope of the key a route authenticates (its `*Caller` dependency), or None."""
    for call in _calls(route.dependant):
        name = getattr(call, "__name__", "")
        if name.endswith("_caller"):
            return name[: -len("_caller")]
    return None


def common_codes(route, method: str, operation: dict) -> list[str]:
    codes = list(EVERY_ROUTE)
    if key_scope(route) is not None:
        codes += WITH_KEY
    if "requestBody" in operation:
        codes += WITH_BODY
    elif method != "get":
        codes += BODYLESS_POST
    if operation.get("parameters"):
        codes += WITH_PARAMETERS
    return codes


def error_response(codes: list[str]) -> dict:
    status = ERROR_CODES[codes[0]]
    response = {"description": "Error: " + ", ".join(f"`{c}`" for c in codes) + ".",
                "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                "x-error-codes": codes}
    if status in (429, 503):
        response["headers"] = copy.deepcopy(RETRY_AFTER)
    return response


def _contract_errors(route, method: str, operation: dict) -> None:
    """Replace FastAPI's error responses with the ones this route can answer, by status."""
    responses = operation.setdefault("responses", {})
    named: list[str] = []
    for status in [s for s in responses if s[0] in "45"]:
        named += responses.pop(status).get("x-error-codes", [])
    by_status: dict[int, list[str]] = {}
    for code in [*common_codes(route, method, operation), *named]:
        found = by_status.setdefault(ERROR_CODES[code], [])
        if code not in found:
            found.append(code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = error_response(codes)


def _routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    """Every API route of `app` by (path, method), with its dependencies resolved."""
    routes = iter_route_contexts(app.routes) if iter_route_contexts is not None else app.routes
    found = {}
    for route in routes:
        if getattr(route, "dependant", None) is None or not getattr(route, "methods", None):
            continue  # not an API route (a mount, a websocket)
        for method in route.methods:
            found[(route.path_format, method.lower())] = route
    return found


# -- health routes (BentoML's, on the same port) ----------------------------------------------

def _plain(description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


HEALTH_PATHS = {
    "/livez": {"get": {"operationId": "livez", "summary": "Liveness", "tags": ["health"], "security": [],
                       "description": "200 while the process is alive.",
                       "responses": {"200": _plain("Alive (the body is a newline).")}}},
    "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness (alias of /livez)", "tags": ["health"],
                         "security": [], "responses": {"200": _plain("Alive (the body is a newline).")}}},
    "/readyz": {"get": {"operationId": "readyz", "summary": "Readiness", "tags": ["health"], "security": [],
                        "description": "200 once the gateway's registry and audit log are open; 503 while the "
                                       "audit log cannot write.",
                        "responses": {"200": _plain("Ready (the body is a newline)."),
                                      "503": _plain("Not ready.")}}},
    "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics", "tags": ["health"], "security": [],
                         "responses": {"200": {"description": "Prometheus text exposition format.",
                                               "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
}


# -- unused schemas ---------------------------------------------------------------------------

def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _prune_schemas(document: dict) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = list(_refs(document["paths"]))
    while pending:
        name = pending.pop()
        if name in used or name not in schemas:
            continue
        used.add(name)
        pending += list(_refs(schemas[name]))
    for name in [n for n in schemas if n not in used]:
        del schemas[name]


# -- the document -----------------------------------------------------------------------------

def build_document(app: FastAPI, prefix: str = PREFIX) -> dict:
    """The contract of the gateway whose `/v1` router is `app`."""
    base = get_openapi(title="Atelier", version=__version__, openapi_version=OPENAPI_VERSION,
                       summary="Digital-twin fashion imagery: generation, catalogue jobs, verify and admin.",
                       description=DESCRIPTION, routes=app.routes, tags=TAGS)
    routes = _routes(app)
    paths: dict[str, dict] = {}
    for path, item in base["paths"].items():
        for method, operation in item.items():
            route = routes[(path, method)]
            scope = key_scope(route)
            if scope is not None:
                operation["security"] = [{SCHEME: []}]
                note = f"Needs a key with the `{scope}` scope."
                operation["description"] = f"{operation.get('description', '').rstrip()}\n\n{note}".strip()
            else:
                operation["security"] = []
            _contract_errors(route, method, operation)
        paths[prefix + path] = item
    document = {
        "openapi": OPENAPI_VERSION,
        "info": base["info"],
        "tags": TAGS,
        "paths": {**paths, **copy.deepcopy(HEALTH_PATHS)},
        "components": {
            "schemas": base.get("components", {}).get("schemas", {}),
            "securitySchemes": {SCHEME: {
                "type": "http", "scheme": "bearer",
                "description": "An Atelier API key (`Authorization: Bearer <key>`), minted by an operator "
                               "(`POST /v1/admin/keys` or `atelier keys create`)."}},
        },
    }
    _prune_schemas(document)
    return document


class Contract:
    """The document, built once on first use, and its JSON bytes."""

    def __init__(self, app: FastAPI):
        self.app = app
        self._bytes: bytes | None = None

    def document(self) -> dict:
        return json.loads(self.json_bytes())

    def json_bytes(self) -> bytes:
        if self._bytes is None:
            self._bytes = json.dumps(build_document(self.app), separators=(",", ":")).encode()
        return self._bytes


if __name__ == "__main__":  # python -m service.gateway.openapi > openapi.json
    from service.gateway.api import build_api

    print(json.dumps(build_document(build_api()), indent=2))
