"""Studio's Gallery: the tenant's recent generations, newest first, with what to do next.

Owns: reading the tenant's answered generations (`outcome: ok`) from the audit record, the
one place that already holds every generation's tenant, twin, time, job, parameters and
images, whichever gateway made it; the filters (twin, days, job) and pages; each item's
kept image (the first image of a delivered generation, kept as the tenant's edit source
when `ATELIER_KEEP_OUTPUTS` is on: `ConditioningInputs.keep`) and its links: verify (the
kept file handed to the verify capability, as `POST /v1/verify`), edit this, use in a job
and new seed. Reading the gallery is a page view (not counted against the key's limit);
verifying is an action, admitted and recorded as the API's.

Cost: one page is one registry query over the (tenant, ts) index
(`AuditRecords.tenant_generations`, filters and paging in SQL): a page reads its own records
and never another tenant's, however long the log.

Must never show another tenant's generation (every read is by the viewer's tenant, and a
kept image is read from the tenant's own assets), never show a record's key id or client
address, and never write to the audit record itself (only the capabilities it calls do).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from service.assets import AssetNotFound
from service.assets.store import ASSET_ID
from service.errors import InvalidRequest
from service.schemas.common import TWIN_ID_PATTERN
from service.studio.generate import follow_ups, images_label, size_name
from service.studio.pages import Viewer, acting_async, client_ip, core_of, form_of, page, signed_in

router = APIRouter(include_in_schema=False)
GalleryViewer = Annotated[Viewer, Depends(signed_in("generate"))]
PER_PAGE = 24
MAX_PAGE = 1000
GENERATION_ID = re.compile(r"^[0-9a-f]{32}$")
QUERY = ("twin", "from", "to", "job", "page")


@dataclass(frozen=True)
class GalleryQuery:
    twin: str | None = None
    date_from: str | None = None  # YYYY-MM-DD, inclusive, UTC
    date_to: str | None = None
    job: str | None = None
    page: int = 1

    def shown(self) -> dict[str, str]:
        """The query as the filter form shows it (and the pager repeats it)."""
        return {k: v for k, v in {"twin": self.twin, "from": self.date_from, "to": self.date_to,
                                  "job": self.job}.items() if v}


def _day(raw: str | None, field: str) -> str | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw).isoformat()
    except ValueError:
        raise InvalidRequest(f"{field} is a day, YYYY-MM-DD", field=field) from None


def parse_query(params) -> GalleryQuery:
    unknown = sorted(set(params) - set(QUERY))
    if unknown:
        raise InvalidRequest(f"unknown filter {unknown[0]!r}", field=unknown[0])
    twin = (params.get("twin") or "").strip() or None
    if twin is not None and not re.fullmatch(TWIN_ID_PATTERN, twin):
        raise InvalidRequest("twin is a twin id: lowercase letters, digits, '-' and '_'", field="twin")
    job = (params.get("job") or "").strip().lower() or None
    if job is not None and not GENERATION_ID.fullmatch(job):  # a job id is 32 hex characters too
        raise InvalidRequest("job is a job id: 32 hexadecimal characters", field="job")
    raw_page = (params.get("page") or "1").strip()
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
        raise InvalidRequest(f"page is a number from 1 to {MAX_PAGE}", field="page")
    query = GalleryQuery(twin=twin, date_from=_day(params.get("from"), "from"), date_to=_day(params.get("to"), "to"),
                         job=job, page=int(raw_page))
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise InvalidRequest("'from' is after 'to'", field="from")
    return query


def answered(record: dict) -> bool:
    return (record.get("event") == "generation" and record.get("outcome") == "ok"
            and bool(GENERATION_ID.fullmatch(str(record.get("generation_id") or ""))) and bool(record.get("images")))


def generation_record(core, tenant_id: str, generation_id: str) -> dict | None:
    """One answered generation of this tenant (another tenant's reads as missing)."""
    if not GENERATION_ID.fullmatch(generation_id or ""):
        return None
    for record in core.reports.store.find("generation_id", generation_id):
        if record.get("tenant") == tenant_id and answered(record):
            return record
    return None


def kept_image(core, tenant_id: str, record: dict):
    """The kept first image of a generation (its asset info), or None (not kept, or purged)."""
    sha = str((record.get("images") or [{}])[0].get("sha256") or "")
    if not ASSET_ID.fullmatch(sha):
        return None
    return core.assets.store.info(tenant_id, sha, missing_ok=True)


def item_of(core, tenant_id: str, record: dict, twin_names: dict[str, str]) -> dict[str, Any]:
    params = record.get("params") or {}
    conditioning = record.get("conditioning") or {}
    garments = conditioning.get("garments") or []
    garment = garments[0] if garments and garments[0].get("sha256") else None
    pose = (conditioning.get("pose") or {}).get("preset")
    edit = conditioning.get("edit")
    prompt = (params.get("prompt") or {}).get("verbatim")
    kept = kept_image(core, tenant_id, record)
    twin_id = record.get("twin_id")
    job = record.get("job") or {}
    seed = record.get("seed", params.get("seed"))
    links = follow_ups(twin_id=twin_id, prompt=prompt, width=params.get("width"), height=params.get("height"),
                       steps=params.get("steps"), seed=seed, garment=garment["sha256"] if garment else None,
                       garment_category=garment.get("category") if garment else None, pose=pose,
                       use=params.get("use"), territory=params.get("territory"),
                       generation_id=record["generation_id"], editable=kept is not None)
    if edit is not None:
        links["new_seed"] = links["job"] = None  # an edit is redone from its source, not from a prompt alone
    return {"generation_id": record["generation_id"], "ts": str(record.get("ts") or ""), "twin_id": twin_id,
            "twin_name": twin_names.get(twin_id or "", twin_id or "base model"), "prompt": prompt,
            "prompt_kept": "verbatim" in (params.get("prompt") or {}), "seed": seed,
            "width": params.get("width"), "height": params.get("height"), "steps": params.get("steps"),
            "size": size_name(params.get("width"), params.get("height")), "use": params.get("use"),
            "images": images_label(len(record.get("images") or [])), "job_id": job.get("job_id"),
            "job_item": job.get("item"), "garment": garment, "pose": pose, "edit": edit,
            "route": record.get("route"), "kept": kept, "links": links}


def gallery_page(core, tenant_id: str, query: GalleryQuery, twin_names: dict[str, str]) -> tuple[list[dict], bool]:
    """One page of items and whether an older page follows."""
    found = core.reports.store.tenant_generations(
        tenant_id, twin=query.twin, day_from=query.date_from, day_to=query.date_to, job_id=query.job,
        offset=(query.page - 1) * PER_PAGE, limit=PER_PAGE + 1)
    chosen = [r for r in found[:PER_PAGE] if answered(r)]  # the filters were the query's
    return [item_of(core, tenant_id, r, twin_names) for r in chosen], len(found) > PER_PAGE


def twin_names_of(core, tenant_id: str) -> tuple[list[dict], dict[str, str]]:
    twins = core.twin_views.for_tenant(tenant_id)
    return twins, {t["id"]: t["display_name"] for t in twins}


@router.get("/gallery", response_class=HTMLResponse)
def gallery(request: Request, viewer: GalleryViewer):
    core = core_of(request)
    tenant = viewer.principal.tenant_id
    twins, names = twin_names_of(core, tenant)
    jobs = core.jobs.list_jobs(tenant, 50)["jobs"]
    try:
        query = parse_query(request.query_params)
    except InvalidRequest as exc:  # the filters as typed, the refusal beside them
        shown = {k: request.query_params.get(k, "")[:64] for k in QUERY if k != "page"}
        return page(request, "gallery.html", viewer, status=exc.status, active="gallery", items=[], more=False,
                    query=shown, page_no=1, twins=twins, jobs=jobs, error=exc, can_verify=viewer.can("verify"))
    items, more = gallery_page(core, tenant, query, names)
    return page(request, "gallery.html", viewer, active="gallery", items=items, more=more, query=query.shown(),
                page_no=query.page, twins=twins, jobs=jobs, can_verify=viewer.can("verify"))


@router.get("/gallery/image/{asset_id}")
def gallery_image(request: Request, viewer: GalleryViewer, asset_id: str):
    """A kept generation's image, as delivered (marked and signed): this tenant's only."""
    if not ASSET_ID.fullmatch(asset_id or ""):
        raise AssetNotFound(f"no kept image {asset_id!r}", field="asset_id")
    info, data = core_of(request).assets.read(viewer.principal.tenant_id, asset_id)
    if info.kind != "source":
        raise AssetNotFound(f"no kept image {asset_id!r}", field="asset_id")
    return Response(data, media_type=info.media_type)


@router.post("/gallery/verify", response_class=HTMLResponse)
async def gallery_verify(request: Request, viewer: Annotated[Viewer, Depends(signed_in("verify"))]):
    """Verify a kept generation's file: the verify capability `POST /v1/verify` calls, on the
    bytes Atelier kept (same slot, checks, disclosure and `verify` record)."""
    core = core_of(request)
    form = await form_of(request, viewer)
    generation_id = (form.get("generation_id") or "").strip()
    record = generation_record(core, viewer.principal.tenant_id, generation_id)
    kept = kept_image(core, viewer.principal.tenant_id, record) if record is not None else None
    if kept is None:
        raise AssetNotFound(f"no kept image of generation {generation_id!r}", field="generation_id")
    _, data = core.assets.read(viewer.principal.tenant_id, kept.asset_id)

    async def read(max_bytes: int) -> bytes:
        return data

    async with acting_async(request, viewer, "verify") as principal:
        report = await core.verifier.check(principal, client_ip(request), read)
    return page(request, "verify.html", viewer, active="verify", report=report, max_bytes=core.settings.max_verify_bytes)
