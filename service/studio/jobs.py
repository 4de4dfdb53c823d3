"""Studio's Jobs pages: build a catalogue job (by hand or from a CSV), follow it, review its
items at a glance, download what was approved, cancel it.

Owns: the Jobs page (a quick job of one prompt per line, and the list of jobs with their
states as they truly are), the job builder's page (`job_builder`: rows of SKU, twin, garment
images, scene, pose, size, alt text and prompt; a CSV imported into them; every error shown on
its row and column with the input kept), a job's page (its items polled by htmx while anything
renders; approve, reject with a reason, approve all; keyboard review and the lightbox in
`static/jobs.js`), an item's own view (its image beside its packshot, with its provenance:
the lightbox's content, and a page of its own without JavaScript), and the downloads (an
image, the approved images as a zip, the items as CSV: `review`). Every action is the jobs
capability's own audited call (`CatalogJobs.accept`, `decide`, `cancel_job`: the same records
as `POST /v1/jobs/submit`, `/approve`, `/reject`, `/cancel`), admitted as the API's routes
admit it; every read is the capability's (`results`, `image`) or the asset store's, for the
viewer's tenant only. Must never hold job logic.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.assets import AssetNotFound
from service.errors import AtelierError, InvalidRequest
from service.jobs.catalog import check_job_id
from service.jobs.presets import BUILTIN_SCENES
from service.registry import ItemNotFound
from service.schemas import JobSubmitBody
from service.schemas.jobs import JobRejectBody
from service.studio import job_builder, review
from service.studio.job_builder import BUILDER_SIZES, CATEGORIES, COLUMNS, MAX_CSV_BYTES, MAX_ROWS, POSES, Choices, Problem, Row
from service.studio.pages import (GENERATE_SIZES, Viewer, acting, client_ip, core_of, first_error, form_of, int_field,
                                  is_htmx, page, see_other, signed_in, size_field, templates)
from service.studio.security import BASE

router = APIRouter(include_in_schema=False)
GenerateViewer = Annotated[Viewer, Depends(signed_in("generate"))]
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
PAGE_ITEMS = 100
HELPERS = {"plural": review.plural, "job_state": review.job_state, "job_name": review.job_name,
           "item_name": review.item_name, "size_labels": job_builder.SIZE_LABELS}


def usable_twins(request: Request, viewer: Viewer) -> list[dict]:
    """The twins the viewer's tenant may use now (their consent or licence holds), by display name."""
    twins = core_of(request).twin_views.for_tenant(viewer.principal.tenant_id)
    return [t for t in twins if (t.get("consent") or {}).get("state") == "active"]


def _twin_names(request: Request, viewer: Viewer) -> dict[str, str]:
    return {t["id"]: t["display_name"] for t in core_of(request).twin_views.for_tenant(viewer.principal.tenant_id)}


def _jobs(request: Request, viewer: Viewer) -> dict:
    listing = core_of(request).jobs.list_jobs(viewer.principal.tenant_id, 50)["jobs"]
    return {"jobs": listing, "live": any(review.job_state(j).tone == "running" for j in listing), **HELPERS}


# -- the Jobs page: the list, and a quick job of one prompt per line -------------------------------


def _jobs_page(request: Request, viewer: Viewer, *, status: int = 200, form: dict | None = None,
               error: AtelierError | None = None):
    return page(request, "jobs.html", viewer, status=status, active="jobs", twins=usable_twins(request, viewer),
                sizes=GENERATE_SIZES, form=form or {}, error=error, **_jobs(request, viewer))


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, viewer: GenerateViewer):
    return _jobs_page(request, viewer)


@router.get("/jobs/table", response_class=HTMLResponse)
def jobs_table(request: Request, viewer: GenerateViewer):
    return templates.TemplateResponse(request, "_jobs_table.html", {"base": BASE, **_jobs(request, viewer)})


@router.post("/jobs")
async def jobs_submit(request: Request, viewer: GenerateViewer):
    """A quick job: one item per line of prompts, one twin. An error comes back on the form, as typed."""
    core = core_of(request)
    form = await form_of(request, viewer)
    typed = {name: str(form.get(name) or "") for name in ("twin_id", "prompts", "size", "steps", "title", "review")}
    try:
        prompts = [line.strip() for line in typed["prompts"].splitlines() if line.strip()]
        if not prompts:
            raise InvalidRequest("write one prompt per line: each line is one item", field="prompts")
        width, height = size_field(form)
        steps = int_field(form, "steps", 30, 1, 100)
        items = [{"twin_id": typed["twin_id"], "prompt": prompt, "width": width, "height": height, "steps": steps}
                 for prompt in prompts]
        body = {"items": items, "review": typed["review"] == "on"}
        if typed["title"].strip():
            body["title"] = typed["title"]
        try:
            job = JobSubmitBody.model_validate(body)
        except ValidationError as exc:
            raise first_error(exc) from None

        def submit() -> dict:
            with acting(request, viewer, "generate") as principal:
                return core.jobs.accept(principal, job, client_ip=client_ip(request)).response

        accepted = await anyio.to_thread.run_sync(submit)
    except AtelierError as exc:
        if exc.status >= 500:
            raise
        exc.field = quick_field(exc.field)
        return _jobs_page(request, viewer, status=exc.status, form=typed, error=exc)
    return see_other(f"/jobs/{accepted['job_id']}")


def quick_field(field: str | None) -> str | None:
    """The quick form's field that an error's `field` (`items.2.prompt`, `title`) is about."""
    parts = (field or "").split(".")
    name = parts[2] if parts[0] == "items" and len(parts) > 2 else parts[0]
    return {"twin_id": "twin_id", "prompt": "prompts", "prompts": "prompts", "items": "prompts", "title": "title",
            "width": "size", "height": "size", "size": "size", "steps": "steps"}.get(name)


# -- the job builder ------------------------------------------------------------------------------


def _choices(request: Request, viewer: Viewer, twins: list[dict]) -> Choices:
    core, tenant = core_of(request), viewer.principal.tenant_id

    def own_asset(asset_id: str) -> bool:
        try:
            core.assets.info(tenant, asset_id)
            return True
        except AssetNotFound:
            return False

    listing = getattr(core.assets, "garments", None)  # Studio's garment list, where it exists
    garments = [{"asset_id": g.asset_id, "name": g.name, "category": g.category}
                for g in (listing.entries(tenant) if listing is not None else [])][:200]
    return Choices.of(twins, core.jobs.store.delivery.presets(tenant), own_asset, garments)


def _builder_page(request: Request, viewer: Viewer, rows: list[Row], *, job: dict | None = None,
                  problems: list[Problem] = (), status: int = 200, notice: str | None = None,
                  twins: list[dict] | None = None):
    twins = usable_twins(request, viewer) if twins is None else twins
    choices = _choices(request, viewer, twins)
    job = job or {"title": "", "steps": "30", "review": True, "per_item": False}
    ready = sum(1 for row in rows if not row.errors)
    return page(request, "job_new.html", viewer, status=status, active="jobs", rows=rows, job=job, twins=twins,
                choices=choices, columns=COLUMNS, sizes=BUILDER_SIZES, poses=POSES, categories=CATEGORIES,
                problems=list(problems), row_problems=[p for p in problems if p.row is not None],
                job_problems={p.column: p.message for p in problems if p.row is None and p.column},
                other_problems=[p for p in problems if p.row is None and not p.column], notice=notice, ready=ready,
                max_rows=MAX_ROWS, max_csv_bytes=MAX_CSV_BYTES, builtin_scenes=BUILTIN_SCENES, **HELPERS)


@router.get("/jobs/new", response_class=HTMLResponse)
def builder_page(request: Request, viewer: GenerateViewer, twin_id: str | None = None, garment: str | None = None,
                 prompt: str | None = None, scene: str | None = None, pose: str | None = None, sku: str | None = None):
    """The builder, with one row (prefilled from the query: `twin_id`, `garment`, `prompt`,
    `scene`, `pose`, `sku`, e.g. from a gallery's "use in a job")."""
    row = Row.empty(twin=twin_id or "", garments=garment or "", prompt=prompt or "", scene=scene or "",
                    pose=pose or "", sku=sku or "")
    return _builder_page(request, viewer, [row])


@router.get("/jobs/template.csv")
def builder_template(request: Request, viewer: GenerateViewer):
    """The CSV template: the columns, and two example rows with the tenant's own twins."""
    return Response(job_builder.template_csv(usable_twins(request, viewer)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="atelier-job-template.csv"'})


def _job_fields(form) -> dict:
    return {"title": str(form.get("title") or "")[:400], "steps": str(form.get("steps") or "30")[:12],
            "review": form.get("review") == "on", "per_item": form.get("webhook_per_item") == "on"}


@router.post("/jobs/new", response_class=HTMLResponse)
async def builder_submit(request: Request, viewer: GenerateViewer):
    """One post for every button of the builder (`action`): `import` a CSV into the rows, `add`
    a row, `remove` one, `check` the rows, or `submit` the job. Any problem comes back on the
    page at its row and column, with everything as typed."""
    core = core_of(request)
    try:
        form = await form_of(request, viewer, max_files=1, max_fields=MAX_ROWS * (len(COLUMNS) + 1) + 20,
                             max_part_size=MAX_CSV_BYTES)
    except StarletteHTTPException as exc:  # a form the parser refused (too many fields, a part too large)
        raise InvalidRequest(f"the form could not be read: {exc.detail}; import at most {MAX_ROWS} rows, "
                             f"a CSV of at most {MAX_CSV_BYTES // 1024} KiB", field="csv") from None
    action = str(form.get("action") or "check")
    rows, job = job_builder.rows_of_form(form), _job_fields(form)
    twins = usable_twins(request, viewer)
    if len(rows) > MAX_ROWS:
        rows = rows[:MAX_ROWS]
        return _builder_page(request, viewer, rows, job=job, twins=twins,
                             problems=[Problem(f"a job takes at most {MAX_ROWS} items")])
    if form.get("remove") is not None:
        index = str(form.get("remove"))
        if index.isdigit() and int(index) < len(rows):
            del rows[int(index)]
        return _builder_page(request, viewer, rows or [Row.empty()], job=job, twins=twins)
    if action == "add":
        if len(rows) < MAX_ROWS:
            rows.append(Row.empty())
        return _builder_page(request, viewer, rows, job=job, twins=twins)
    notice = None
    if action == "import":
        upload = form.get("csv")
        data = await upload.read(MAX_CSV_BYTES + 1) if upload is not None and not isinstance(upload, str) else b""
        if not data:
            return _builder_page(request, viewer, rows, job=job, twins=twins,
                                 problems=[Problem("choose a CSV file to import", column="csv")])
        imported, problems = job_builder.read_csv(data)
        if problems and not imported:
            return _builder_page(request, viewer, rows, job=job, twins=twins, problems=problems)
        rows = imported
        notice = f"Imported {review.plural(len(rows), 'row')} from {getattr(upload, 'filename', None) or 'the file'}."
    else:
        problems = []
    steps, of_job = job_builder.job_problems(job["title"], job["steps"])
    problems = problems + of_job + job_builder.check(rows, _choices(request, viewer, twins))
    if not rows:
        problems.append(Problem("add at least one item"))
    if problems or action != "submit":
        if action == "import" and not problems:
            notice += " Every row is ready: check them, then submit the job."
        return _builder_page(request, viewer, rows or [Row.empty()], job=job, twins=twins, notice=notice,
                             problems=problems)
    body, problems = job_builder.body_of(rows, title=job["title"], steps=steps, review=job["review"],
                                         per_item=job["per_item"])
    if body is None:
        return _builder_page(request, viewer, rows, job=job, twins=twins, problems=problems)

    def submit() -> dict:
        with acting(request, viewer, "generate") as principal:
            return core.jobs.accept(principal, body, client_ip=client_ip(request)).response

    try:
        accepted = await anyio.to_thread.run_sync(submit)
    except AtelierError as exc:
        if exc.status >= 500:
            raise
        problem = job_builder.place(exc.field, exc.message, rows)
        return _builder_page(request, viewer, rows, job=job, twins=twins, problems=[problem],
                             status=exc.status)
    return see_other(f"/jobs/{accepted['job_id']}")


# -- a job: its items, review, downloads ----------------------------------------------------------


def _job(request: Request, viewer: Viewer, job_id: str, focus: int | None = None, offset: int = 0,
         review_error: dict | None = None) -> dict:
    results = core_of(request).jobs.results(viewer.principal.tenant_id, check_job_id(job_id), offset, PAGE_ITEMS)
    live_ = any(item["status"] in ("pending", "running") for item in results["items"]) or results["status"] == "queued"
    awaiting = [item["index"] for item in results["items"] if item["status"] == "awaiting_review"]
    # After a decision, focus goes to the next item awaiting review (keyboard review, item by item).
    autofocus = None if focus is None else next((i for i in awaiting if i >= focus), awaiting[0] if awaiting else None)
    return {"job": results, "items": results["items"], "live": live_, "autofocus": autofocus, "base": BASE,
            "csrf": viewer.csrf, "awaiting": awaiting, "state": review.job_state(results), "offset": offset,
            "page_items": PAGE_ITEMS, "twin_names": _twin_names(request, viewer), "zip_parts": review.zip_parts(results),
            "review_error": review_error or {}, **HELPERS}


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, viewer: GenerateViewer, job_id: str, offset: int = 0):
    return page(request, "job.html", viewer, active="jobs", **_job(request, viewer, job_id, offset=max(0, offset)))


@router.get("/jobs/{job_id}/items", response_class=HTMLResponse)
def job_items(request: Request, viewer: GenerateViewer, job_id: str, offset: int = 0):
    return templates.TemplateResponse(request, "_job_items.html", _job(request, viewer, job_id, offset=max(0, offset)))


@router.post("/jobs/{job_id}/review")
async def job_review(request: Request, viewer: GenerateViewer, job_id: str):
    """Approve or reject one item (with an optional reason), or approve every item awaiting
    review: the same decisions as POST /v1/jobs/approve and /reject."""
    core = core_of(request)
    form = await form_of(request, viewer)
    job_id = check_job_id(job_id)
    decision = form.get("decision")
    if decision not in ("approve", "reject", "approve_all"):
        raise InvalidRequest("choose approve or reject", field="decision")
    offset = int_field(form, "offset", 0, 0, 499) or 0
    reason = str(form.get("reason") or "")[:2000]
    if decision == "approve_all":
        indexes = [item["index"] for item in _awaiting(core, viewer, job_id)]
        if not indexes:
            raise InvalidRequest("no item of this job is awaiting review", field="decision")
        index = indexes[0]
    else:
        index = int_field(form, "index", None, 0, 499)
        if index is None:
            raise InvalidRequest("which item?", field="index")
        indexes = [index]
    reasons: dict[int, str] = {}
    if decision == "reject" and reason.strip():
        try:
            reasons = JobRejectBody.model_validate({"job_id": job_id, "items": indexes, "reason": reason}).reason_of()
        except ValidationError as exc:
            problem = first_error(exc)
            error = {"index": index, "message": problem.message.removeprefix("reason: "), "reason": reason}
            return _decided(request, viewer, job_id, form, index, offset, error)

    def decide() -> None:
        for start in range(0, len(indexes), 100):
            chunk = indexes[start:start + 100]
            with acting(request, viewer, "generate") as principal:
                core.jobs.decide(principal, job_id, chunk, approve=decision != "reject", client_ip=client_ip(request),
                                 reasons=reasons)

    await anyio.to_thread.run_sync(decide)
    return _decided(request, viewer, job_id, form, index, offset)


def _awaiting(core, viewer: Viewer, job_id: str) -> list[dict]:
    found, offset = [], 0
    while offset is not None:
        page_ = core.jobs.results(viewer.principal.tenant_id, job_id, offset, PAGE_ITEMS)
        found += [item for item in page_["items"] if item["status"] == "awaiting_review"]
        offset = page_["next_offset"]
    return found


def _decided(request: Request, viewer: Viewer, job_id: str, form, index: int, offset: int,
             error: dict | None = None, status: int = 200):
    """After a decision: the items fragment (htmx, the lightbox), the next item's own view (a
    decision taken on it, without JavaScript), or the job's page."""
    if is_htmx(request):
        return templates.TemplateResponse(request, "_job_items.html",
                                          _job(request, viewer, job_id, focus=index + 1, offset=offset, review_error=error),
                                          status_code=status)
    if error:
        if form.get("from") == "item":
            return _item_page(request, viewer, job_id, index, error=error, status=status)
        return page(request, "job.html", viewer, status=status, active="jobs",
                    **_job(request, viewer, job_id, offset=offset, review_error=error))
    if form.get("from") == "item":
        following = [i["index"] for i in _awaiting(core_of(request), viewer, job_id)]
        after = next((i for i in following if i > index), following[0] if following else None)
        if after is not None:
            return see_other(f"/jobs/{job_id}/items/{after}")
    return see_other(f"/jobs/{job_id}" + (f"?offset={offset}" if offset else "") + f"#item-{index}")


@router.post("/jobs/{job_id}/cancel")
async def job_cancel(request: Request, viewer: GenerateViewer, job_id: str):
    core = core_of(request)
    await form_of(request, viewer)

    def cancel() -> dict:
        with acting(request, viewer, "generate") as principal:
            return core.jobs.cancel_job(principal, job_id, client_ip=client_ip(request))

    await anyio.to_thread.run_sync(cancel)
    return see_other(f"/jobs/{check_job_id(job_id)}")


@router.get("/jobs/{job_id}/items/{index}", response_class=HTMLResponse)
def item_view(request: Request, viewer: GenerateViewer, job_id: str, index: int):
    """One item enlarged beside its packshot, with its provenance: the lightbox's content
    (htmx) or, without JavaScript, a page of its own."""
    return _item_page(request, viewer, job_id, index)


def _item_page(request: Request, viewer: Viewer, job_id: str, index: int, error: dict | None = None, status: int = 200):
    core, tenant = core_of(request), viewer.principal.tenant_id
    job_id = check_job_id(job_id)
    if not 0 <= index < 500:
        raise InvalidRequest("an item index is 0 to 499", field="index")
    results = core.jobs.results(tenant, job_id, index, 1)
    if not results["items"]:
        raise ItemNotFound(f"job {job_id} has no item {index}", field="index")
    item = results["items"][0]
    spec = core.jobs.store.jobs.get_item(tenant, job_id, index).spec
    packshots = [(n, g.get("asset_id"), g.get("category")) for n, g in enumerate(spec.get("garments") or [])]
    provenance = []
    for image in item.get("images") or ():
        data, _, _ = core.jobs.image(tenant, job_id, index, image["n"])
        provenance.append(review.c2pa_state(data, core.settings) if data is not None else "delivered to your bucket")
    awaiting = [i["index"] for i in _awaiting(core, viewer, job_id)] if item["status"] == "awaiting_review" else []
    context = {"job": results, "item": item, "spec": spec, "packshots": packshots, "provenance": provenance,
               "twin_names": _twin_names(request, viewer), "base": BASE, "csrf": viewer.csrf,
               "previous": index - 1 if index > 0 else None,
               "next": index + 1 if index + 1 < results["items_total"] else None,
               "offset": (index // PAGE_ITEMS) * PAGE_ITEMS, "review_error": error or {},
               "awaiting_left": len(awaiting), **HELPERS}
    if is_htmx(request):
        return templates.TemplateResponse(request, "_job_item_view.html", context, status_code=status)
    return page(request, "job_item.html", viewer, status=status, active="jobs", **context)


@router.get("/jobs/{job_id}/image")
def job_image(request: Request, viewer: GenerateViewer, job_id: str, index: int, n: int = 0, download: bool = False):
    """An item's image: held or inline bytes, or a redirect to its S3 URL; `download` names the file."""
    data, fmt, url = core_of(request).jobs.image(viewer.principal.tenant_id, check_job_id(job_id), index, n)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    headers = {}
    if download:
        item = core_of(request).jobs.results(viewer.principal.tenant_id, job_id, index, 1)["items"][0]
        name = review.image_filename(item, {"n": n, "format": fmt})
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(data, media_type=MEDIA[fmt], headers=headers)


@router.get("/jobs/{job_id}/packshot")
def job_packshot(request: Request, viewer: GenerateViewer, job_id: str, index: int, n: int = 0):
    """The garment image an item was made with (one of the tenant's assets): the packshot the
    lightbox shows beside the result."""
    core, tenant = core_of(request), viewer.principal.tenant_id
    spec = core.jobs.store.jobs.get_item(tenant, check_job_id(job_id), index).spec
    garments = spec.get("garments") or []
    if not 0 <= n < len(garments) or not garments[n].get("asset_id"):
        raise AssetNotFound(f"item {index} has no garment image {n} among your assets", field="n")
    info, data = core.assets.read(tenant, garments[n]["asset_id"])
    return Response(data, media_type=info.media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/jobs/{job_id}/approved.zip")
def job_zip(request: Request, viewer: GenerateViewer, job_id: str, part: int = 1):
    """The approved images as one zip (part `part` of a large job: 100 items a part), streamed
    one image at a time."""
    jobs, tenant = core_of(request).jobs, viewer.principal.tenant_id
    job_id = check_job_id(job_id)
    if part < 1:
        raise InvalidRequest("part is 1 or more", field="part")
    job, entries = review.approved(jobs, tenant, job_id, part)
    if not entries:
        raise InvalidRequest("this job has no approved image to download yet", field="job_id")
    name = review.safe_name(job.get("title"), f"job-{job_id[:12]}")
    suffix = f"-part{part}" if review.zip_parts(job) > 1 else ""
    return StreamingResponse(review.stream_zip(entries, review.image_reader(jobs, tenant, job_id)),
                             media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}-approved{suffix}.zip"'})


@router.get("/jobs/{job_id}/items.csv")
def job_items_csv(request: Request, viewer: GenerateViewer, job_id: str):
    """The job's items as CSV: SKU, twin, status, rejection reason, alt text and file names."""
    jobs, tenant = core_of(request).jobs, viewer.principal.tenant_id
    job_id = check_job_id(job_id)
    items, offset, head = [], 0, None
    while offset is not None:
        page_ = jobs.results(tenant, job_id, offset, PAGE_ITEMS)
        head = head or page_
        items += page_["items"]
        offset = page_["next_offset"]
    name = review.safe_name(head.get("title"), f"job-{job_id[:12]}")
    return Response(review.items_csv(head, items, _twin_names(request, viewer)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}-items.csv"'})
