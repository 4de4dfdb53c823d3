"""Studio, the web console: server-rendered pages over the gateway's own capabilities, at /studio.

Owns: the Studio FastAPI app that the Gateway mounts at `/studio` (`build_studio`): its pages
by area (`signin`, `generate`: twins and generation, `garments`: garment upload and list,
`edit`: edits of kept generations, `gallery`: recent generations, `jobs`: jobs and review, `licences`: the
person's and the brand's licences, `verify`: verify and audit, `detect`: the public check,
`usage`), the static files and htmx, the security headers, and showing every error as a message.

Studio has no back end of its own: each page (but sign-in and the public Detect page, which
ask for no key) admits its viewer through `Tenancy.admit` (with
the scope the `/v1` route for the same thing asks, and its rate limits for every action) and
calls the capability that route calls (`TwinViews`, `GuardedGeneration`, `CatalogJobs`,
`Licensing`, `Verifier`, `Reports`), so the checks and the audit record are the API's. A key
may do in Studio exactly what its scopes allow on the API. Must never put an API key in a page, a
cookie or a log, never accept a form without its CSRF token, never hold a capability's
logic, and never import the gateway's routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from service.errors import AtelierError, InvalidRequest
from service.studio import detect, edit, gallery, garments, generate, jobs, licences, signin, statement, usage, verify
from service.studio.pages import (HERE, HTMX, SignInNeeded, Viewer, current_viewer, is_htmx, log, page, see_other,
                                  signed_in, templates)
from service.studio.security import BASE, SecurityHeaders, csp

router = APIRouter(include_in_schema=False)


@router.get("/vendor/htmx.min.js")
def htmx_js() -> Response:
    """htmx, from the npm package `htmx.org` that `make install` installs (never from a CDN)."""
    if not HTMX.is_file():
        return Response("// htmx is not installed: run `make install` (npm ci in service/studio)\n",
                        media_type="text/javascript", status_code=404)
    return Response(HTMX.read_bytes(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
def home(viewer: Annotated[Viewer, Depends(signed_in())]):
    nav = viewer.nav
    return RedirectResponse(nav[0][0] if nav else f"{BASE}/account", status_code=303)


for area in (signin, generate, garments, edit, gallery, jobs, licences, verify, detect, usage, statement):
    router.include_router(area.router)


@router.get("/{rest:path}", response_class=HTMLResponse)
def not_found(request: Request, rest: str):
    """Any other /studio path: a page that says so (BentoML would answer its own plain 404)."""
    error = AtelierError(f"there is no page {request.url.path}")
    error.status, error.code = 404, "not_found"
    raise error


def route_templates(prefix: str = BASE) -> set[str]:
    """Every Studio page's path: what a refused request to Studio may be filed under. FastAPI
    >= 0.160 includes the areas' routers lazily: their pages are reached through route contexts."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI: router.routes holds every APIRoute
        routes = [r for r in router.routes if isinstance(r, APIRoute)]
    else:
        routes = list(iter_route_contexts(router.routes))
    paths = {getattr(r, "path_format", None) or r.path for r in routes}
    return {prefix + path for path in paths if "{rest" not in path}


def build_studio() -> FastAPI:
    app = FastAPI(title="Atelier Studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)

    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded):
        if is_htmx(request):  # a fragment request whose session ended: the whole page goes to sign-in
            return Response(status_code=204, headers={"HX-Redirect": f"{BASE}/login"})
        return see_other("/login")

    @app.exception_handler(AtelierError)
    async def atelier_error(request: Request, exc: AtelierError):
        return error_page(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return error_page(request, InvalidRequest(f"{field or 'request'}: {first.get('msg', 'invalid')}", field=field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        error = AtelierError(f"there is no page {request.url.path}")
        error.status, error.code = exc.status_code, "not_found" if exc.status_code == 404 else "http_error"
        return error_page(request, error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("studio page failed", extra={"fields": {"path": request.url.path}})
        return error_page(request, AtelierError("an unexpected error occurred; it has been logged"))

    def policy() -> str:
        core = getattr(app.state, "core", None)
        return csp(core.settings.s3_endpoint_url if core is not None else None)

    app.add_middleware(SecurityHeaders, policy=policy)
    return app


def error_page(request: Request, exc: AtelierError) -> HTMLResponse:
    viewer = None
    try:
        viewer = current_viewer(request)
    except Exception:  # noqa: BLE001 - an error page shows without a session too
        viewer = None
    headers = exc.response_headers() if hasattr(exc, "response_headers") else {}
    if is_htmx(request):
        response = templates.TemplateResponse(request, "_error.html", {"error": exc}, status_code=exc.status)
    else:
        response = page(request, "error.html", viewer, status=exc.status, error=exc)
    response.headers.update(headers)
    return response
