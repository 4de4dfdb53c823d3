"""Studio's Verify and Audit pages: is this image ours, and every record of one generation.

Owns: the Verify form (one image file, bounded as `POST /v1/verify` bounds it) handed to the
verify capability (`Verifier.check`: the same slot, checks, disclosure and `verify` record as
the API), the number of the generation's audit record shown beside the report's audit summary
(`Reports.generation_record`, only when the report discloses that summary to this key), and
the Audit page's query handed to the audit reports (`Reports.generation_records`, recorded as
`admin.audit_records`), each admitted as the API's route admits it. Must never hold
verification or audit logic.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from service.errors import InvalidRequest
from service.studio.pages import Viewer, acting, acting_async, client_ip, core_of, form_of, is_htmx, page, signed_in, templates
from service.studio.security import BASE

router = APIRouter(include_in_schema=False)
VerifyViewer = Annotated[Viewer, Depends(signed_in("verify"))]
AdminViewer = Annotated[Viewer, Depends(signed_in("admin"))]


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, viewer: VerifyViewer):
    return page(request, "verify.html", viewer, active="verify", max_bytes=core_of(request).settings.max_verify_bytes)


@router.post("/verify", response_class=HTMLResponse)
async def verify_submit(request: Request, viewer: VerifyViewer):
    """The image goes to the verify capability `POST /v1/verify` calls (same checks and record)."""
    core = core_of(request)
    form = await form_of(request, viewer, max_files=1, max_fields=4, max_part_size=core.settings.max_verify_bytes)
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise InvalidRequest("choose an image to verify", field="image")

    async def read(max_bytes: int) -> bytes:  # bounded by the form's max_part_size, as the API's body is
        return await upload.read()

    async with acting_async(request, viewer, "verify") as principal:
        report = await core.verifier.check(principal, client_ip(request), read)
    record = None
    if report.get("audit"):  # disclosed to this key: its generation's record, by number
        record = await anyio.to_thread.run_sync(core.reports.generation_record, report["audit"]["generation_id"])
    if is_htmx(request):
        return templates.TemplateResponse(request, "_verify_report.html", {"report": report, "record": record,
                                                                           "base": BASE, "viewer": viewer})
    return page(request, "verify.html", viewer, active="verify", report=report, record=record,
                max_bytes=core.settings.max_verify_bytes)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, viewer: AdminViewer, generation_id: str | None = None):
    found = None
    if generation_id:
        generation_id = generation_id.strip().lower()
        if len(generation_id) != 32 or any(c not in "0123456789abcdef" for c in generation_id):
            raise InvalidRequest("a generation id is 32 hexadecimal characters", field="generation_id")
        with acting(request, viewer, "admin") as principal:
            found = core_of(request).reports.generation_records(principal.audit_fields(), client_ip(request),
                                                                generation_id)
    return page(request, "audit.html", viewer, active="audit", found=found, generation_id=generation_id or "")
