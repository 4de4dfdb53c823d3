"""What every Studio page shares: the signed-in viewer, admission per page, forms and rendering.

Owns: the `Viewer` (the session's key as the registry says it is now, and its CSRF token),
`signed_in(*scopes)`, the page dependency that admits the viewer through `Tenancy.admit` (a
revoked key ends its session; a missing scope is refused and audited as on the API), `acting`
(an action's admission, spending the key's rate limits as the API's routes do), reading a
posted form behind its CSRF token, small form parsers, the name the header shows for the
viewer (`who`: a talent key's person, a brand key's tenant), and the templates. Must never put an
API key in a page, a cookie or a log, and never check a key itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.templating import Jinja2Templates

from service.errors import InvalidRequest, NotReady, Unauthorized
from service.jobs.presets import SIZES
from service.registry.sessions import SessionStore
from service.studio.security import BASE, CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, check_csrf
from service.tenancy import KeyRef, Limits, Principal

log = logging.getLogger("atelier.studio")
HERE = Path(__file__).resolve().parent
HTMX = HERE / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"  # `make install` runs npm ci here
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Named sizes of the Generate page: a quick preview, then the catalogue's sizes.
GENERATE_SIZES: dict[str, tuple[int, int]] = {"preview_256": (256, 256), "square_512": (512, 512), **SIZES}
PAGES = (  # (path, label, scopes any of which shows it; none: every viewer)
    ("/twins", "Twins", ("generate", "admin", "talent")),
    ("/licences", "Licences", ("talent", "licensing")),
    ("/generate", "Generate", ("generate",)),
    ("/garments", "Garments", ("generate",)),
    ("/jobs", "Jobs", ("generate",)),
    ("/gallery", "Gallery", ("generate",)),
    ("/verify", "Verify", ("verify",)),
    ("/usage", "Usage", ("admin", "talent", "usage")),
    ("/statement", "Statement", ("talent", "usage")),
    ("/audit", "Audit", ("admin",)),
    ("/detect", "Detect", ()),  # the public check: every viewer (and anyone signed out)
)


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

    @property
    def is_talent(self) -> bool:
        return self.can("talent")

    @property
    def nav(self) -> list[tuple[str, str]]:
        return [(BASE + path, label) for path, label, scopes in PAGES
                if not scopes or any(self.can(s) for s in scopes)]


def core_of(request: Request):
    core = getattr(request.app.state, "core", None)
    if core is None:
        raise NotReady("the service is starting")
    return core


def display_names(request: Request, twin_ids, tenant_ids) -> tuple[dict[str, str], dict[str, str]]:
    """Display names beside ids: twin id -> its name (a deleted twin's too), tenant id -> the
    brand's name; an id the registry no longer knows stands for itself."""
    registry = core_of(request).registry
    twins: dict[str, str] = {}
    for twin_id in sorted(twin_ids):
        info = registry.twins.get_twin(twin_id, include_deleted=True)
        twins[twin_id] = info.display_name if info is not None else twin_id
    tenants: dict[str, str] = {}
    for tenant_id in sorted(tenant_ids):
        info = registry.tenants.get_tenant(tenant_id)
        tenants[tenant_id] = info.name if info is not None else tenant_id
    return twins, tenants


def store_of(core) -> SessionStore:
    store = getattr(core, "_studio_sessions", None)
    if store is None:
        store = core._studio_sessions = SessionStore(core.registry.db)
    return store


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def route_of(request: Request) -> str:
    """The matched page's path template (`/studio/jobs/{job_id}`): what a refusal is filed under."""
    route = request.scope.get("route")
    return request.scope.get("root_path", "") + getattr(route, "path", "")


def current_viewer(request: Request) -> Viewer:
    """The session's key as it is now (any scope); SignInNeeded when there is none or it ended."""
    core = core_of(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = store_of(core).get(session_id)
    if session is None:
        raise SignInNeeded()
    try:  # a key revoked (or its tenant disabled) since ends the session with it: not a refusal, a sign-out
        with core.tenancy.admit(KeyRef(session.key_id), None, limits=Limits.NONE) as principal:
            pass
    except Unauthorized:
        store_of(core).end(session_id)
        raise SignInNeeded() from None
    request.state.principal = principal
    return Viewer(principal, session.csrf_token, session_id)


def signed_in(*scopes: str):
    """A page's dependency: the viewer, holding one of `scopes` (none: any key), as the API's
    routes admit their caller (a missing scope: 403, audited under the page's route)."""

    def viewer(request: Request) -> Viewer:
        viewer = current_viewer(request)
        if scopes:
            with core_of(request).tenancy.admit(viewer.principal, scopes, route=route_of(request),
                                                client_ip=client_ip(request), limits=Limits.NONE):
                pass
        return viewer

    return viewer


def acting(request: Request, viewer: Viewer, scope: str) -> AbstractContextManager[Principal]:
    """An action's admission: one request of the key's rate limits, held while the action runs
    (as the API's route for the same action spends it); a refusal is audited under the page."""
    return core_of(request).tenancy.admit(viewer.principal, scope, route=route_of(request),
                                          client_ip=client_ip(request), limits=Limits.REQUEST)


@asynccontextmanager
async def acting_async(request: Request, viewer: Viewer, scope: str) -> AsyncIterator[Principal]:
    """`acting` for an async page: admitted in a worker thread (a refusal's audit record is
    written there, never in the event loop), the slot held until the action ends."""
    held = acting(request, viewer, scope)
    principal = await anyio.to_thread.run_sync(held.__enter__)
    try:
        yield principal
    finally:
        held.__exit__(None, None, None)  # releases the slot; the action's own error goes on


async def form_of(request: Request, viewer: Viewer, **limits) -> dict:
    """The posted form, once its CSRF token (field, or header for fetch/htmx) matches the session's."""
    form = await request.form(**limits)
    check_csrf(viewer.csrf, request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD))
    return form


def who(request: Request, viewer: Viewer) -> str:
    """The name the header shows for the signed-in key: a talent key's person (the key names
    their twins), else its tenant's display name (the brand's); the tenant's id, or "Talent",
    when the registry cannot say (an error page still shows)."""
    principal = viewer.principal
    try:
        registry = core_of(request).registry
        if viewer.is_talent:
            return registry.persons.person_of_twin(sorted(principal.twin_ids or ())[0]).display_name
        tenant = registry.tenants.get_tenant(principal.tenant_id)
        return tenant.name if tenant is not None else principal.tenant_id
    except Exception:  # noqa: BLE001 - a name is not worth an error page of its own
        return "Talent" if viewer.is_talent else principal.tenant_id


def page(request: Request, name: str, viewer: Viewer | None, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"viewer": viewer, "base": BASE, "csrf": viewer.csrf if viewer else None,
                                                      "who": who(request, viewer) if viewer else None,
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


def int_field(form, name: str, default: int | None, low: int, high: int) -> int | None:
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


def size_field(form) -> tuple[int, int]:
    name = form.get("size") or "preview_256"
    if name not in GENERATE_SIZES:
        raise InvalidRequest(f"unknown size {name!r}", field="size")
    return GENERATE_SIZES[name]
