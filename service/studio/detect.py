"""Studio's public Detect page: anyone may check whether an image carries Atelier's marks.

Owns: the Detect form (one image file, bounded as `POST /v1/detect` bounds it), open without
signing in (a signed-in viewer sees the usual navigation), its CSRF pair (a cookie of its own
and the HMAC token of the sign-in form: `security.new_login_csrf`, since there is no session to
bind it to), and handing the image to the public check `POST /v1/detect` calls
(`Detector.check`: the source's budget, the slots, verify's bounds, the answer and the compact
record of refusals, filed under `/studio/detect`). Must never hold detection logic, ask for a
key, or show anything the API's answer does not hold.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from service.errors import InvalidRequest, MalformedRequest
from service.studio.pages import SignInNeeded, Viewer, client_ip, core_of, current_viewer, is_htmx, page, templates
from service.studio.security import (CSRF_FIELD, CSRF_HEADER, LOGIN_CSRF_TTL_S, check_login_csrf, new_login_csrf,
                                     set_cookie)
from service.studio.signin import login_secret_of

router = APIRouter(include_in_schema=False)
ROUTE = "/studio/detect"  # what a refused check from this page is filed under in the refusal ledger
DETECT_CSRF_COOKIE = "atelier_studio_detect"


def viewer_or_none(request: Request) -> Viewer | None:
    """The signed-in viewer when there is one (for the navigation); the page needs none."""
    try:
        return current_viewer(request)
    except SignInNeeded:
        return None


def detect_page(request: Request, core, status: int = 200, **context) -> HTMLResponse:
    """The page with a fresh CSRF pair (the form token is the HMAC of its cookie)."""
    cookie, token = new_login_csrf(login_secret_of(core))
    response = page(request, "detect.html", viewer_or_none(request), status=status, active="detect",
                    detect_csrf=token, max_bytes=core.settings.max_verify_bytes, **context)
    set_cookie(response, request, DETECT_CSRF_COOKIE, cookie, max_age=LOGIN_CSRF_TTL_S)
    return response


@router.get("/detect", response_class=HTMLResponse)
def detect_form(request: Request):
    return detect_page(request, core_of(request))


@router.post("/detect", response_class=HTMLResponse)
async def detect_submit(request: Request):
    """The image goes to the public check `POST /v1/detect` calls (same budget, bounds and answer)."""
    core = core_of(request)

    async def read(max_bytes: int) -> bytes:  # inside the check: after the budget, holding a slot
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes)
        except HTTPException:  # no boundary, too many parts, a torn part
            raise MalformedRequest("the form could not be read; choose the image again", field="image") from None
        check_login_csrf(login_secret_of(core), request.cookies.get(DETECT_CSRF_COOKIE),
                         request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD))
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise InvalidRequest("choose an image to check", field="image")
        return await upload.read()

    answer = await core.detector.check(client_ip(request), read, route=ROUTE)
    if is_htmx(request):
        return templates.TemplateResponse(request, "_detect_report.html", {"answer": answer})
    return detect_page(request, core, answer=answer)
