"""The gateway's front door outside `/v1` and `/studio`: the API reference and the one error shape.

Owns: an ASGI middleware in front of BentoML's app that serves `GET /docs.json` (the contract
of `service.gateway.openapi`, in place of BentoML's generated document), `GET /docs` (Swagger
UI, vendored through npm in `service/gateway/apidocs`, under a Content-Security-Policy that
allows this origin only), `GET /` (a redirect to `/docs`, in place of BentoML's page and its
third-party scripts), and that answers every unknown path or wrong method outside the
`/v1` router as `{"error": {"code": "not_found" | "method_not_allowed", ...}}` (BentoML's
router answers those in plain text). Must never serve a file outside its short list, never
load or link anything from another origin, and never import bentoml.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, RedirectResponse, Response

from service.gateway.errors import MethodNotAllowed, RouteNotFound
from service.gateway.http_edge import error_response

HERE = Path(__file__).resolve().parent / "apidocs"
SWAGGER = HERE / "node_modules" / "swagger-ui-dist"  # `make install` runs npm ci in service/gateway/apidocs
# The only files /docs/assets/ serves: name -> (path, media type).
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (SWAGGER / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (SWAGGER / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "init.js": (HERE / "static" / "init.js", "text/javascript; charset=utf-8"),
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache"}

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Atelier API reference</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" href="data:,">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
"""

NO_RENDERER = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Atelier API reference</title><link rel="icon" href="data:,"></head>
<body>
  <h1>Atelier API reference</h1>
  <p>The reference renderer is not installed here ({missing}): run <code>make install</code>
  (npm ci in service/gateway/apidocs). The contract itself is at <a href="/docs.json">/docs.json</a>.</p>
</body>
</html>
"""


def docs_page() -> Response:
    missing = [name for name, (path, _) in ASSETS.items() if not path.is_file()]
    body = NO_RENDERER.format(missing=html.escape(", ".join(missing))) if missing else PAGE
    return Response(body, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def asset(name: str) -> Response | None:
    entry = ASSETS.get(name)
    if entry is None or not entry[0].is_file():
        return None
    path, media_type = entry
    return Response(path.read_bytes(), media_type=media_type,
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"})


class FrontDoor:
    """ASGI middleware: /docs.json, /docs, / and JSON errors for whatever no route matched.

    `contract()` gives the document's JSON bytes (built once, on first use)."""

    # BentoML's own Swagger page and its assets stay unreachable (their page loads third parties).
    HIDDEN_PREFIXES = ("/static_content/", "/assets/")

    def __init__(self, app, contract: Callable[[], bytes]):
        self.app = app
        self.contract = contract

    def _own(self, path: str) -> Callable[[], Response | None] | None:
        if path == "/docs.json":
            return lambda: Response(self.contract(), media_type="application/json",
                                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
        if path == "/docs":
            return docs_page
        if path == "/docs/":
            return lambda: RedirectResponse("/docs", status_code=308)
        if path == "/":
            return lambda: RedirectResponse("/docs", status_code=307)
        if path.startswith("/docs/assets/"):
            return lambda: asset(path[len("/docs/assets/"):])
        if path.startswith(self.HIDDEN_PREFIXES):
            return lambda: None
        return None

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        answer = self._own(path)
        if answer is not None:
            if method not in ("GET", "HEAD"):
                response = error_response(MethodNotAllowed(f"{method} is not allowed on {path[:200]}"))
                response.headers["Allow"] = "GET, HEAD"
            else:
                response = answer() or error_response(RouteNotFound(f"no route {path[:200]}"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, _json_errors(scope, send))


def _json_errors(scope: dict[str, Any], send):
    """Wrap `send`: a plain-text 404 or 405 (BentoML's router: no route matched) becomes ours."""
    replaced = False

    async def wrapped(message: dict) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] in (404, 405):
            headers = dict((k.lower(), v) for k, v in message.get("headers", []))
            if headers.get(b"content-type", b"").startswith(b"text/plain"):
                replaced = True
                path, method = scope["path"][:200], scope["method"]
                error = (RouteNotFound(f"no route {path}") if message["status"] == 404
                         else MethodNotAllowed(f"{method} is not allowed on {path}"))
                response: JSONResponse = error_response(error)
                if b"allow" in headers:
                    response.headers["Allow"] = headers[b"allow"].decode("latin-1")
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": response.raw_headers})
                await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body,
                            "more_body": False})
                return
        if replaced:  # the plain-text body we replaced
            return
        await send(message)

    return wrapped
