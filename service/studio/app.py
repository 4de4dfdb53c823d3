"""Studio, the web console: server-rendered pages over the gateway's own capabilities, at /studio.

Owns: the Studio FastAPI app that the Gateway mounts at `/studio` (`build_studio`), sign-in
with an API key into a server-side session (`sessions`), the signed-in `Viewer` (the key as it
is now: revoked keys end their sessions), the pages, and showing every error as a message.

Studio has no back end of its own: each page calls what the `/v1` route for the same thing
calls, with the same scope, rate limits and audit record: the route functions themselves
where they can be called (jobs, review, verify, usage, audit, twins), or the same capability
(`GuardedGeneration`, `CatalogJobs`). A key may do in Studio exactly what its scopes allow on
the API. Must never put an API key in a page, a cookie or a log, never accept a form without
its CSRF token, and never hold a capability's logic.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from service.audit.events import studio_event
from service.errors import AtelierError, Forbidden, InvalidRequest, NotReady, Unauthorized
from service.gateway.routes import audit as audit_route
from service.gateway.routes import jobs as jobs_route
from service.gateway.routes import review as review_route
from service.gateway.routes import twins as twins_route
from service.gateway.routes import usage as usage_route
from service.gateway.routes import verify as verify_route
from service.gateway.routes.admin import list_twins as admin_list_twins
from service.jobs.presets import SIZES
from service.schemas import GenerateRequest, JobReviewBody, JobSubmitBody
from service.studio import live
from service.studio.security import (
    BASE,
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_CSRF_COOKIE,
    LOGIN_CSRF_TTL_S,
    SESSION_COOKIE,
    SecurityHeaders,
    check_csrf,
    check_login_csrf,
    clear_cookie,
    csp,
    login_secret,
    new_login_csrf,
    set_cookie,
)
from service.registry.sessions import SESSION_TTL, SessionStore
from service.tenancy import Principal

log = logging.getLogger("atelier.studio")
HERE = Path(__file__).resolve().parent
HTMX = HERE / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"  # `make install` runs npm ci here
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Named sizes of the Generate page: a quick preview, then the catalogue's sizes.
GENERATE_SIZES: dict[str, tuple[int, int]] = {"preview_256": (256, 256), "square_512": (512, 512), **SIZES}
POSE_PRESETS = ("front", "three-quarter", "walking", "back", "seated")
GARMENT_CATEGORIES = ("tops", "bottoms", "one-pieces", "outerwear", "shoes", "accessories", "swimwear", "lingerie")
PAGES = (  # (path, label, scopes any of which shows it)
    ("/twins", "Twins", ("generate", "admin", "talent")),
    ("/generate", "Generate", ("generate",)),
    ("/jobs", "Jobs", ("generate",)),
    ("/verify", "Verify", ("verify",)),
    ("/usage", "Usage", ("admin", "talent")),
    ("/audit", "Audit", ("admin",)),
)


SIGN_IN_ROUTE = "/studio/login"  # what a refused sign-in is filed under in the refusal ledger


class SignInNeeded(Exception):
    """No live session: the browser goes to the sign-in page."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in key, as the registry says it is now, and its session's CSRF token."""

    principal: Principal
    csrf: str
    session_id: str

    def can(self, scope: str) -> bool:
        return scope in self.principal.scopes

    def require(self, *scopes: str) -> None:
        """As the API: 403 insufficient_scope unless the key holds one of `scopes`."""
        if not any(self.can(s) for s in scopes):
            raise Forbidden(f"this API key lacks the {' or '.join(repr(s) for s in scopes)} scope",
                            code="insufficient_scope")

    @property
    def is_talent(self) -> bool:
        return self.can("talent")

    @property
    def nav(self) -> list[tuple[str, str]]:
        return [(BASE + path, label) for path, label, scopes in PAGES if any(self.can(s) for s in scopes)]


def core_of(request: Request):
    core = getattr(request.app.state, "core", None)
    if core is None:
        raise NotReady("the service is starting")
    return core


def store_of(core) -> SessionStore:
    store = getattr(core, "_studio_sessions", None)
    if store is None:
        store = core._studio_sessions = SessionStore(core.registry.db)
    return store


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_viewer(request: Request) -> Viewer:
    core = core_of(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = store_of(core).get(session_id)
    if session is None:
        raise SignInNeeded()
    info = core.registry.active_key(session.key_id)
    if info is None:  # the key was revoked (or its tenant disabled) since: the session ends with it
        store_of(core).end(session_id)
        raise SignInNeeded()
    principal = Principal(info.key_id, info.tenant_id, info.scopes, info.requests_per_minute, info.max_concurrent_jobs,
                          info.twin_ids)
    request.state.principal = principal
    return Viewer(principal, session.csrf_token, session_id)


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


async def form_of(request: Request, viewer: Viewer, **limits) -> dict:
    """The posted form, once its CSRF token (field, or header for fetch/htmx) matches the session's."""
    form = await request.form(**limits)
    check_csrf(viewer.csrf, request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD))
    return form


def page(request: Request, name: str, viewer: Viewer | None, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"viewer": viewer, "base": BASE, "csrf": viewer.csrf if viewer else None,
                                                      "htmx": HTMX.is_file(), "active": context.pop("active", None),
                                                      **context}, status_code=status)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(BASE + path, status_code=303)


def first_error(exc: ValidationError) -> InvalidRequest:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return InvalidRequest(f"{field}: {message}" if field else message, field=field or None)


def _int(form, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number", field=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}", field=name)
    return value


def _size(form) -> tuple[int, int]:
    name = form.get("size") or "preview_256"
    if name not in GENERATE_SIZES:
        raise InvalidRequest(f"unknown size {name!r}", field="size")
    return GENERATE_SIZES[name]


# -- the app ------------------------------------------------------------------------------------


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


router = APIRouter(include_in_schema=False)


@router.get("/vendor/htmx.min.js")
def htmx_js() -> Response:
    """htmx, from the npm package `htmx.org` that `make install` installs (never from a CDN)."""
    if not HTMX.is_file():
        return Response("// htmx is not installed: run `make install` (npm ci in service/studio)\n",
                        media_type="text/javascript", status_code=404)
    return Response(HTMX.read_bytes(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
def home(viewer: CurrentViewer):
    nav = viewer.nav
    return RedirectResponse(nav[0][0] if nav else f"{BASE}/account", status_code=303)


# -- sign-in and sign-out ----------------------------------------------------------------------


def login_secret_of(core) -> bytes:
    """The server secret that binds a sign-in form's CSRF token to its cookie (security.py)."""
    secret = getattr(core, "_studio_login_secret", None)
    if secret is None:
        secret = core._studio_login_secret = login_secret(core.settings.audit_key)
    return secret


def login_form(request: Request, core, status: int = 200, error: AtelierError | None = None) -> HTMLResponse:
    """The sign-in page with a fresh CSRF pair: the token is the cookie's HMAC (never equal to it)."""
    cookie, token = new_login_csrf(login_secret_of(core))
    response = page(request, "login.html", None, status=status, login_csrf=token, error=error)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, cookie, max_age=LOGIN_CSRF_TTL_S)
    if error is not None:
        response.headers.update(error.response_headers())
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, error: str | None = None):
    return login_form(request, core_of(request))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    core = core_of(request)
    form = await request.form(max_files=0, max_fields=4)
    check_login_csrf(login_secret_of(core), request.cookies.get(LOGIN_CSRF_COOKIE), form.get(CSRF_FIELD))
    token = (form.get("api_key") or "").strip()
    ip = client_ip(request)
    trust = core.trust
    if trust is not None:
        # The API's per-source budget: failed sign-ins spend it as failed API calls do, and
        # once it is spent only a valid key (checked in memory, no query) is heard.
        try:
            trust.admit_sign_in(ip, token)
        except AtelierError as refused:
            await anyio.to_thread.run_sync(trust.refused_unauthenticated, SIGN_IN_ROUTE, refused, ip)
            return login_form(request, core, status=refused.status, error=refused)
    info = await anyio.to_thread.run_sync(core.registry.authenticate, token) if token else None
    if info is None:
        error = Unauthorized("that API key is not valid (or was revoked)", code="invalid_api_key")
        if trust is not None:  # counted against the source, recorded compactly (audit/refusals.py)
            await anyio.to_thread.run_sync(trust.refused_unauthenticated, SIGN_IN_ROUTE, error, ip)
        else:
            await anyio.to_thread.run_sync(core.audit.record, studio_event(action="sign_in", client_ip=ip, error=error))
        return login_form(request, core, status=401, error=error)
    session_id, _ = store_of(core).create(info.key_id)
    await anyio.to_thread.run_sync(core.audit.record, studio_event(action="sign_in", client_ip=client_ip(request),
                                                                   tenant=info.tenant_id, key_id=info.key_id))
    response = see_other("/")
    set_cookie(response, request, SESSION_COOKIE, session_id, max_age=int(SESSION_TTL.total_seconds()))
    clear_cookie(response, request, LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, viewer: CurrentViewer):
    core = core_of(request)
    await form_of(request, viewer)
    store_of(core).end(viewer.session_id)
    core.audit.record(studio_event(action="sign_out", client_ip=client_ip(request), **viewer.principal.audit_fields()))
    response = see_other("/login")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, viewer: CurrentViewer):
    return page(request, "account.html", viewer, active="account")


# -- twins --------------------------------------------------------------------------------------


@router.get("/twins", response_class=HTMLResponse)
def twins(request: Request, viewer: CurrentViewer):
    viewer.require("generate", "admin", "talent")
    core = core_of(request)
    p = viewer.principal
    cache, cache_error, rows = None, None, []
    now = dt.datetime.now(dt.timezone.utc)
    if viewer.can("admin"):
        try:
            listing = admin_list_twins(core, p, client_ip(request), cache=True)
            cache = {t.id: t for t in listing.twins}
        except AtelierError as exc:
            cache_error = exc.message
        for twin in core.twins.all():
            record = core.registry.current_consent(twin.id, now)
            rows.append({"id": twin.id, "display_name": twin.display_name,
                         "consent": twins_route.consent_terms(record, now) if record else None,
                         "tenants": sorted(record.tenants) if record else [], "cache": (cache or {}).get(twin.id)})
    elif viewer.can("generate"):
        rows = twins_route.tenant_twins(core, p.tenant_id)
    else:  # talent: their own twins, with every brand their consent names
        for twin_id in sorted(p.twin_ids or ()):
            twin = core.registry.get_twin(twin_id)
            if twin is None:
                continue
            record = core.registry.current_consent(twin_id, now)
            rows.append({"id": twin.id, "display_name": twin.display_name,
                         "consent": twins_route.consent_terms(record, now) if record else None,
                         "tenants": sorted(record.tenants) if record else []})
    return page(request, "twins.html", viewer, active="twins", twins=rows, cache_error=cache_error,
                show_cache=viewer.can("admin"))


# -- generate -----------------------------------------------------------------------------------


def generate_request(form, viewer: Viewer) -> GenerateRequest:
    width, height = _size(form)
    body: dict = {"twin_id": form.get("twin_id") or None, "prompt": (form.get("prompt") or "").strip(),
                  "negative_prompt": (form.get("negative_prompt") or "").strip() or None,
                  "width": width, "height": height, "steps": _int(form, "steps", 30, 1, 100),
                  "seed": _int(form, "seed", None, 0, 2**53 - 1), "use": form.get("use") or "ecommerce",
                  "territory": (form.get("territory") or "").strip().upper() or None}
    if form.get("pose"):
        body["pose"] = {"preset": form.get("pose")}
    garment = (form.get("garment") or "").strip()
    if garment:
        source = {"asset_id": garment} if len(garment) == 64 and all(c in "0123456789abcdef" for c in garment) else {"url": garment}
        body["garments"] = [{**source, "category": form.get("garment_category") or "tops"}]
    if not body["prompt"]:
        raise InvalidRequest("write a prompt: what should the picture show?", field="prompt")
    try:
        return GenerateRequest.model_validate(body)
    except ValidationError as exc:
        raise first_error(exc) from None


def render_result(request: Request, result) -> str:
    """The result fragment: the image, with its provenance (watermark id, C2PA state, generation id)."""
    core = core_of(request)
    images = []
    for image in result.images:
        c2pa = "signed" if image.manifest_sha256 else "none"
        try:
            from service.provenance.verify import verify_image

            c2pa = verify_image(image.data, core.settings.max_verify_pixels, core.settings.c2pa_trust_anchors).c2pa_state
        except Exception:  # noqa: BLE001 - the manifest's presence is still shown
            log.warning("could not read back the C2PA state", extra={"fields": {"generation_id": result.generation_id}})
        mime = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}[image.format]
        images.append({"src": f"data:{mime};base64,{base64.b64encode(image.data).decode('ascii')}", "image": image,
                       "c2pa": c2pa, "filename": f"{result.generation_id}-{image.index}.{image.format}"})
    return templates.get_template("_generate_result.html").render(result=result, images=images)


def _generate_context(request: Request, viewer: Viewer) -> dict:
    core = core_of(request)
    twins_ = twins_route.tenant_twins(core, viewer.principal.tenant_id)
    conditioning = "garments" in GenerateRequest.model_fields and "pose" in GenerateRequest.model_fields
    return {"twins": twins_, "sizes": GENERATE_SIZES, "poses": POSE_PRESETS, "garment_categories": GARMENT_CATEGORIES,
            "conditioning": conditioning}


@router.get("/generate", response_class=HTMLResponse)
def generate_page(request: Request, viewer: CurrentViewer):
    viewer.require("generate")
    return page(request, "generate.html", viewer, active="generate", **_generate_context(request, viewer))


@router.post("/generate", response_class=HTMLResponse)
async def generate_submit(request: Request, viewer: CurrentViewer):
    """Without JavaScript: the form posts here and the page comes back with the image."""
    viewer.require("generate")
    form = await form_of(request, viewer)
    body = generate_request(form, viewer)
    result = await anyio.to_thread.run_sync(lambda: live.generate(core_of(request), viewer.principal, body, client_ip(request)))
    html = await anyio.to_thread.run_sync(render_result, request, result)
    return page(request, "generate.html", viewer, active="generate", result_html=html, form=dict(form),
                **_generate_context(request, viewer))


@router.post("/generate/stream")
async def generate_stream(request: Request, viewer: CurrentViewer):
    """Server-sent events: `progress` {step, steps} as the renderer denoises, then `result` or `error`."""
    viewer.require("generate")
    form = await form_of(request, viewer)
    body = generate_request(form, viewer)
    events = live.generation_events(core_of(request), viewer.principal, body, client_ip(request),
                                    lambda result: render_result(request, result))
    return StreamingResponse(events, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


# -- jobs ---------------------------------------------------------------------------------------


def _jobs(request: Request, viewer: Viewer) -> dict:
    listing = core_of(request).jobs.list_jobs(viewer.principal.tenant_id, 50)["jobs"]
    return {"jobs": listing, "live": any(j["status"] in ("queued", "running") and not j.get("items_awaiting_review")
                                         for j in listing)}


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, viewer: CurrentViewer):
    viewer.require("generate")
    twins_ = twins_route.tenant_twins(core_of(request), viewer.principal.tenant_id)
    return page(request, "jobs.html", viewer, active="jobs", twins=twins_, sizes=GENERATE_SIZES, **_jobs(request, viewer))


@router.get("/jobs/table", response_class=HTMLResponse)
def jobs_table(request: Request, viewer: CurrentViewer):
    viewer.require("generate")
    return templates.TemplateResponse(request, "_jobs_table.html", {"base": BASE, **_jobs(request, viewer)})


@router.post("/jobs")
async def jobs_submit(request: Request, viewer: CurrentViewer):
    viewer.require("generate")
    core = core_of(request)
    form = await form_of(request, viewer)
    prompts = [line.strip() for line in (form.get("prompts") or "").splitlines() if line.strip()]
    if not prompts:
        raise InvalidRequest("write one prompt per line: each line is one item", field="prompts")
    width, height = _size(form)
    steps = _int(form, "steps", 30, 1, 100)
    items = [{"twin_id": form.get("twin_id") or "", "prompt": prompt, "width": width, "height": height, "steps": steps,
              "sku": f"studio-{index + 1}"} for index, prompt in enumerate(prompts)]
    try:
        body = JobSubmitBody.model_validate({"items": items, "review": form.get("review") == "on"})
    except ValidationError as exc:
        raise first_error(exc) from None

    def submit() -> dict:
        with core.tenancy.limits(viewer.principal):
            return jobs_route.submit(body, core, viewer.principal, client_ip(request), idempotency_key=None)

    accepted = await anyio.to_thread.run_sync(submit)
    return see_other(f"/jobs/{accepted['job_id']}")


def _job(request: Request, viewer: Viewer, job_id: str, focus: int | None = None) -> dict:
    job_id = jobs_route.job_id_of(job_id, None)
    results = core_of(request).jobs.results(viewer.principal.tenant_id, job_id, 0, 100)
    live_ = any(item["status"] in ("pending", "running") for item in results["items"]) or results["status"] == "queued"
    awaiting = [item["index"] for item in results["items"] if item["status"] == "awaiting_review"]
    # After a decision, focus goes to the next item awaiting review (keyboard review, item by item).
    autofocus = None if focus is None else next((i for i in awaiting if i >= focus), awaiting[0] if awaiting else None)
    return {"job": results, "items": results["items"], "live": live_, "autofocus": autofocus, "base": BASE,
            "csrf": viewer.csrf}


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, viewer: CurrentViewer, job_id: str):
    viewer.require("generate")
    return page(request, "job.html", viewer, active="jobs", **_job(request, viewer, job_id))


@router.get("/jobs/{job_id}/items", response_class=HTMLResponse)
def job_items(request: Request, viewer: CurrentViewer, job_id: str):
    viewer.require("generate")
    return templates.TemplateResponse(request, "_job_items.html", _job(request, viewer, job_id))


@router.post("/jobs/{job_id}/review")
async def job_review(request: Request, viewer: CurrentViewer, job_id: str):
    """Approve or reject one item (the same decision as POST /v1/jobs/approve or /reject)."""
    viewer.require("generate")
    core = core_of(request)
    form = await form_of(request, viewer)
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise InvalidRequest("choose approve or reject", field="decision")
    index = _int(form, "index", None, 0, 499)
    if index is None:
        raise InvalidRequest("which item?", field="index")
    body = JobReviewBody(job_id=jobs_route.job_id_of(job_id, None), items=[index])

    def decide() -> dict:
        with core.tenancy.limits(viewer.principal):
            return review_route.decide(core, viewer.principal, client_ip(request), body, approve=decision == "approve")

    await anyio.to_thread.run_sync(decide)
    if is_htmx(request):
        return templates.TemplateResponse(request, "_job_items.html", _job(request, viewer, job_id, focus=index + 1))
    return see_other(f"/jobs/{body.job_id}#item-{index}")


@router.post("/jobs/{job_id}/cancel")
async def job_cancel(request: Request, viewer: CurrentViewer, job_id: str):
    viewer.require("generate")
    core = core_of(request)
    await form_of(request, viewer)

    def cancel() -> dict:
        with core.tenancy.limits(viewer.principal):
            return jobs_route.cancel(core, viewer.principal, client_ip(request), job_id=job_id, task_id=None)

    await anyio.to_thread.run_sync(cancel)
    return see_other(f"/jobs/{jobs_route.job_id_of(job_id, None)}")


@router.get("/jobs/{job_id}/image")
def job_image(request: Request, viewer: CurrentViewer, job_id: str, index: int, n: int = 0):
    """An item's image for its thumbnail: held or inline bytes, or a redirect to its S3 URL."""
    viewer.require("generate")
    data, fmt, url = core_of(request).jobs.image(viewer.principal.tenant_id, jobs_route.job_id_of(job_id, None), index, n)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return Response(data, media_type={"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}[fmt])


# -- verify -------------------------------------------------------------------------------------


def as_raw_body(request: Request, data: bytes, content_type: str | None) -> Request:
    """The request as `POST /v1/verify` takes an image as its raw body (the CSRF field stays in
    Studio's form), so the route's own reading, bounds and record apply unchanged."""
    headers = [(k, v) for k, v in request.scope["headers"] if k not in (b"content-type", b"content-length")]
    headers += [(b"content-type", (content_type or "application/octet-stream").encode("latin-1")),
                (b"content-length", str(len(data)).encode())]
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return Request({**request.scope, "headers": headers}, receive)


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, viewer: CurrentViewer):
    viewer.require("verify")
    return page(request, "verify.html", viewer, active="verify", max_bytes=core_of(request).settings.max_verify_bytes)


@router.post("/verify", response_class=HTMLResponse)
async def verify_submit(request: Request, viewer: CurrentViewer):
    """The image goes through `POST /v1/verify`'s own route function (same checks and record)."""
    viewer.require("verify")
    core = core_of(request)
    form = await form_of(request, viewer, max_files=1, max_fields=4, max_part_size=core.settings.max_verify_bytes)
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise InvalidRequest("choose an image to verify", field="image")
    data = await upload.read()
    report = await verify_route.verify(as_raw_body(request, data, upload.content_type), core, viewer.principal,
                                       client_ip(request))
    if is_htmx(request):
        return templates.TemplateResponse(request, "_verify_report.html", {"report": report})
    return page(request, "verify.html", viewer, active="verify", report=report, max_bytes=core.settings.max_verify_bytes)


# -- usage --------------------------------------------------------------------------------------


def _date(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date, YYYY-MM-DD", field=name) from None


def _usage(request: Request, viewer: Viewer, format: str):
    viewer.require("admin", "talent")
    q = request.query_params
    twin = q.get("twin") or None
    period = q.get("period") or "month"
    if period not in ("day", "month"):
        raise InvalidRequest("period is day or month", field="period")
    core = core_of(request)
    talent = not viewer.can("admin")
    if talent and twin is not None and twin not in (viewer.principal.twin_ids or ()):
        raise InvalidRequest(f"twin {twin!r} is not one of this key's twins", field="twin")
    with core.tenancy.limits(viewer.principal):
        return usage_route.answer(request, core, viewer.principal, client_ip(request),
                                  "talent_usage" if talent else "usage",
                                  (viewer.principal.twin_ids or frozenset()) if talent else None, twin,
                                  _date(q.get("from"), "from"), _date(q.get("to"), "to"), format, period)


@router.get("/usage", response_class=HTMLResponse)
def usage_page(request: Request, viewer: CurrentViewer):
    rows = _usage(request, viewer, "json")["rows"]
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["twin_id"] or "(base model)"] = totals.get(row["twin_id"] or "(base model)", 0) + row["images"]
    return page(request, "usage.html", viewer, active="usage", rows=rows, totals=totals, query=dict(request.query_params),
                talent=not viewer.can("admin"), twin_choices=sorted(viewer.principal.twin_ids or ()))


@router.get("/usage.csv")
def usage_csv(request: Request, viewer: CurrentViewer):
    response = _usage(request, viewer, "csv")
    response.headers["Content-Disposition"] = 'attachment; filename="atelier-usage.csv"'
    return response


# -- audit --------------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, viewer: CurrentViewer, generation_id: str | None = None):
    viewer.require("admin")
    found = None
    if generation_id:
        generation_id = generation_id.strip().lower()
        if len(generation_id) != 32 or any(c not in "0123456789abcdef" for c in generation_id):
            raise InvalidRequest("a generation id is 32 hexadecimal characters", field="generation_id")
        core = core_of(request)
        with core.tenancy.limits(viewer.principal):
            found = audit_route.generation_records(core, viewer.principal, client_ip(request), generation_id)
    return page(request, "audit.html", viewer, active="audit", found=found, generation_id=generation_id or "")


@router.get("/{rest:path}", response_class=HTMLResponse)
def not_found(request: Request, rest: str):
    """Any other /studio path: a page that says so (BentoML would answer its own plain 404)."""
    error = AtelierError(f"there is no page {request.url.path}")
    error.status, error.code = 404, "not_found"
    raise error
