"""Studio's Jobs pages: submit a catalogue job, follow it, review its items, cancel it.

Owns: the Jobs form turned into a `JobSubmitBody`, the job list and a job's items (polled by
htmx while anything runs), keyboard review item by item, and an item's thumbnail. Every
action is the jobs capability's own audited call (`CatalogJobs.accept`, `decide`,
`cancel_job`: the same records as `POST /v1/jobs/submit`, `/approve`, `/reject`, `/cancel`),
admitted as the API's routes admit it. Must never hold job logic.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from service.errors import InvalidRequest
from service.jobs.catalog import check_job_id
from service.schemas import JobSubmitBody
from service.studio.pages import (GENERATE_SIZES, Viewer, acting, client_ip, core_of, first_error, form_of, int_field,
                                  is_htmx, page, see_other, signed_in, size_field, templates)
from service.studio.security import BASE

router = APIRouter(include_in_schema=False)
GenerateViewer = Annotated[Viewer, Depends(signed_in("generate"))]
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def _jobs(request: Request, viewer: Viewer) -> dict:
    listing = core_of(request).jobs.list_jobs(viewer.principal.tenant_id, 50)["jobs"]
    return {"jobs": listing, "live": any(j["status"] in ("queued", "running") and not j.get("items_awaiting_review")
                                         for j in listing)}


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, viewer: GenerateViewer):
    twins_ = core_of(request).twin_views.for_tenant(viewer.principal.tenant_id)
    return page(request, "jobs.html", viewer, active="jobs", twins=twins_, sizes=GENERATE_SIZES, **_jobs(request, viewer))


@router.get("/jobs/table", response_class=HTMLResponse)
def jobs_table(request: Request, viewer: GenerateViewer):
    return templates.TemplateResponse(request, "_jobs_table.html", {"base": BASE, **_jobs(request, viewer)})


@router.post("/jobs")
async def jobs_submit(request: Request, viewer: GenerateViewer):
    core = core_of(request)
    form = await form_of(request, viewer)
    prompts = [line.strip() for line in (form.get("prompts") or "").splitlines() if line.strip()]
    if not prompts:
        raise InvalidRequest("write one prompt per line: each line is one item", field="prompts")
    width, height = size_field(form)
    steps = int_field(form, "steps", 30, 1, 100)
    items = [{"twin_id": form.get("twin_id") or "", "prompt": prompt, "width": width, "height": height, "steps": steps,
              "sku": f"studio-{index + 1}"} for index, prompt in enumerate(prompts)]
    try:
        body = JobSubmitBody.model_validate({"items": items, "review": form.get("review") == "on"})
    except ValidationError as exc:
        raise first_error(exc) from None

    def submit() -> dict:
        with acting(request, viewer, "generate") as principal:
            return core.jobs.accept(principal, body, client_ip=client_ip(request)).response

    accepted = await anyio.to_thread.run_sync(submit)
    return see_other(f"/jobs/{accepted['job_id']}")


def _job(request: Request, viewer: Viewer, job_id: str, focus: int | None = None) -> dict:
    results = core_of(request).jobs.results(viewer.principal.tenant_id, check_job_id(job_id), 0, 100)
    live_ = any(item["status"] in ("pending", "running") for item in results["items"]) or results["status"] == "queued"
    awaiting = [item["index"] for item in results["items"] if item["status"] == "awaiting_review"]
    # After a decision, focus goes to the next item awaiting review (keyboard review, item by item).
    autofocus = None if focus is None else next((i for i in awaiting if i >= focus), awaiting[0] if awaiting else None)
    return {"job": results, "items": results["items"], "live": live_, "autofocus": autofocus, "base": BASE,
            "csrf": viewer.csrf}


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, viewer: GenerateViewer, job_id: str):
    return page(request, "job.html", viewer, active="jobs", **_job(request, viewer, job_id))


@router.get("/jobs/{job_id}/items", response_class=HTMLResponse)
def job_items(request: Request, viewer: GenerateViewer, job_id: str):
    return templates.TemplateResponse(request, "_job_items.html", _job(request, viewer, job_id))


@router.post("/jobs/{job_id}/review")
async def job_review(request: Request, viewer: GenerateViewer, job_id: str):
    """Approve or reject one item (the same decision as POST /v1/jobs/approve or /reject)."""
    core = core_of(request)
    form = await form_of(request, viewer)
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise InvalidRequest("choose approve or reject", field="decision")
    index = int_field(form, "index", None, 0, 499)
    if index is None:
        raise InvalidRequest("which item?", field="index")
    job_id = check_job_id(job_id)

    def decide() -> dict:
        with acting(request, viewer, "generate") as principal:
            return core.jobs.decide(principal, job_id, [index], approve=decision == "approve", client_ip=client_ip(request))

    await anyio.to_thread.run_sync(decide)
    if is_htmx(request):
        return templates.TemplateResponse(request, "_job_items.html", _job(request, viewer, job_id, focus=index + 1))
    return see_other(f"/jobs/{job_id}#item-{index}")


@router.post("/jobs/{job_id}/cancel")
async def job_cancel(request: Request, viewer: GenerateViewer, job_id: str):
    core = core_of(request)
    await form_of(request, viewer)

    def cancel() -> dict:
        with acting(request, viewer, "generate") as principal:
            return core.jobs.cancel_job(principal, job_id, client_ip=client_ip(request))

    await anyio.to_thread.run_sync(cancel)
    return see_other(f"/jobs/{check_job_id(job_id)}")


@router.get("/jobs/{job_id}/image")
def job_image(request: Request, viewer: GenerateViewer, job_id: str, index: int, n: int = 0):
    """An item's image for its thumbnail: held or inline bytes, or a redirect to its S3 URL."""
    data, fmt, url = core_of(request).jobs.image(viewer.principal.tenant_id, check_job_id(job_id), index, n)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return Response(data, media_type=MEDIA[fmt])
