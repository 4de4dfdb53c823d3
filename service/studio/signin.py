"""Studio's sign-in, sign-out and account pages.

Owns: the sign-in form (its CSRF token bound to its cookie by HMAC: `security.py`), turning a
valid API key into a server-side session (the key is admitted by `Tenancy.admit`, with any
scope; the per-source budget of failed authentications is the API's), sign-out, and the audit
record of each (`studio.sign_in`, `studio.sign_out`; a refused sign-in is recorded compactly,
per source, as a refused API call is). Must never put the key in a page, a cookie or a log.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from service.audit.events import studio_event
from service.errors import AtelierError, Unauthorized
from service.registry.sessions import SESSION_TTL
from service.studio.pages import Viewer, client_ip, core_of, form_of, page, see_other, signed_in, store_of
from service.studio.security import (CSRF_FIELD, LOGIN_CSRF_COOKIE, LOGIN_CSRF_TTL_S, SESSION_COOKIE, check_login_csrf,
                                     clear_cookie, login_secret, new_login_csrf, set_cookie)
from service.tenancy import Limits

router = APIRouter(include_in_schema=False)
SIGN_IN_ROUTE = "/studio/login"  # what a refused sign-in is filed under in the refusal ledger
AnyViewer = Annotated[Viewer, Depends(signed_in())]


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


def admit_key(core, token: str, ip: str | None):
    """The key of the form, admitted with any scope (no rate limit spent: signing in is not a
    call); a refusal is audited under the sign-in route and counts against the source."""
    with core.tenancy.admit(f"Bearer {token}", None, route=SIGN_IN_ROUTE, client_ip=ip, limits=Limits.NONE) as principal:
        return principal


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
    try:
        principal = await anyio.to_thread.run_sync(admit_key, core, token, ip)
    except Unauthorized as refused:  # recorded compactly (audit/refusals.py) and counted against the source
        error = Unauthorized("that API key is not valid (or was revoked)", code=refused.code)
        return login_form(request, core, status=401, error=error)
    session_id, _ = store_of(core).create(principal.key_id)
    await anyio.to_thread.run_sync(core.audit.record, studio_event(action="sign_in", client_ip=ip,
                                                                   **principal.audit_fields()))
    response = see_other("/")
    set_cookie(response, request, SESSION_COOKIE, session_id, max_age=int(SESSION_TTL.total_seconds()))
    clear_cookie(response, request, LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, viewer: AnyViewer):
    core = core_of(request)
    await form_of(request, viewer)
    store_of(core).end(viewer.session_id)
    core.audit.record(studio_event(action="sign_out", client_ip=client_ip(request), **viewer.principal.audit_fields()))
    response = see_other("/login")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, viewer: AnyViewer):
    return page(request, "account.html", viewer, active="account")
