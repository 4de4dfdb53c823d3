"""Studio's Garments: upload packshots (a file input, or dropped on the page), see them as
thumbnails with a category each, change a category, take one off the list.

Owns: the upload form read within the asset bounds and handed to the assets capability
(`AssetService.add`: the same byte, format, pixel and decoding checks as `POST /v1/assets`,
the same `asset.add` audit record, admitted with the same `generate` scope and rate limits),
the garment's category (the uploader's choice, or, where a garment classifier runs and the
uploader asks for it, the classifier's: `GarmentList` keeps which), the tenant's garment list
as cards or as the Generate page's picker options, and garment thumbnails. Must never check
an image itself, decide what a category means for consent (each generation's consent check
does, classifier included, whatever the list says), or show another tenant's garment.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.assets import AssetNotFound, ListedGarment, UnsupportedImage
from service.assets.garment_list import CATEGORIES, check_category
from service.assets.store import ASSET_ID
from service.audit.actions import audited_action
from service.audit.events import asset_event
from service.errors import AtelierError, InvalidRequest, MalformedRequest
from service.studio.pages import Viewer, acting, client_ip, core_of, form_of, is_htmx, page, see_other, signed_in, templates
from service.studio.security import BASE

router = APIRouter(include_in_schema=False)
GarmentViewer = Annotated[Viewer, Depends(signed_in("generate"))]
AUTO = "auto"  # the category field's value that asks the classifier (only offered where one runs)
THUMB_SIDE = 256
ROUTE = "/studio/garments"


def classifier_of(request: Request):
    return core_of(request).tenancy.gate.classifier


def listed(request: Request, viewer: Viewer) -> list[ListedGarment]:
    return core_of(request).assets.garments.entries(viewer.principal.tenant_id)


def category_of(request: Request, tenant_id: str, asset_id: str) -> str | None:
    """The listed garment's category (None when the garment is not on the tenant's list)."""
    entry = core_of(request).assets.garments.get(tenant_id, asset_id)
    return entry.category if entry is not None else None


def garments_context(request: Request, viewer: Viewer) -> dict:
    core = core_of(request)
    return {"garments": listed(request, viewer), "categories": CATEGORIES, "max_bytes": core.settings.max_asset_bytes,
            "classifier": classifier_of(request) is not None}


def classify(gate, data: bytes, declared: str) -> tuple[str, str, str | None]:
    """(category, chosen by, the classifier's category) for a new garment. Without a
    classifier the uploader's category is the garment's. With one, it reads the image: its
    category is the garment's when the uploader asked for it (`auto`); either way it is kept,
    and shown beside the uploader's choice."""
    from service.tenancy.consent import classified_category

    if gate.classifier is None:
        if declared == AUTO:
            raise InvalidRequest("no garment classifier runs here: choose the garment's category", field="category")
        return check_category(declared), "person", None
    scores = dict(gate.classifier.classify(data))
    found = classified_category(scores, gate.threshold)  # a restricted category first, as consent reads it
    if found is None:
        known = {name: score for name, score in scores.items() if name in CATEGORIES}
        found = max(known, key=known.get) if known else None
    if declared != AUTO:
        return check_category(declared), "person", found
    if found not in CATEGORIES:  # e.g. sleepwear: a category no generation can declare
        raise InvalidRequest(f"the classifier sees {found or 'no known category'}; choose the garment's category",
                             field="category")
    return found, "classifier", found


async def read_upload(request: Request, viewer: Viewer) -> tuple[dict, bytes, str | None]:
    """The posted form (CSRF checked) and the file's bytes. The body was bounded at the edge
    (the asset limit and a form's margin); the image's own bounds are the assets capability's."""
    try:
        form = await form_of(request, viewer, max_files=1, max_fields=4, max_part_size=4096)
    except StarletteHTTPException:  # a torn or malformed multipart body (starlette's MultiPartException)
        raise MalformedRequest("send the garment as a form with one image file and its category", field="file") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise InvalidRequest("choose a garment image (PNG, JPEG or WebP) to upload", field="file")
    return form, await upload.read(), upload.filename


# How the Generate page answers a refused upload from its picker without JavaScript (its own
# page, the refusal at the upload): set by service.studio.generate, which imports this module,
# so this one never imports it back.
picker_error_page: Callable[..., HTMLResponse] | None = None


@router.get("/garments", response_class=HTMLResponse)
def garments_page(request: Request, viewer: GarmentViewer):
    return page(request, "garments.html", viewer, active="garments", **garments_context(request, viewer))


@router.post("/garments", response_class=HTMLResponse)
async def garments_upload(request: Request, viewer: GarmentViewer):
    """One garment image, checked and stored as `POST /v1/assets` stores it, then listed with
    its category. From the page's script: the new card (or the Generate picker's option);
    without JavaScript: back to the page, the garment in view (or the page with the error)."""
    core = core_of(request)
    form, data, filename = await read_upload(request, viewer)
    declared = form.get("category") or ""
    view = form.get("view") if form.get("view") in ("list", "picker") else "list"

    def add() -> ListedGarment:
        with acting(request, viewer, "generate") as principal:
            with audited_action(core.audit.record, asset_event, action="add", client_ip=client_ip(request), route=ROUTE,
                                **principal.audit_fields()) as details:
                if declared != AUTO:
                    check_category(declared)  # a wrong category refuses the upload before it is stored
                elif core.tenancy.gate.classifier is None:
                    raise InvalidRequest("no garment classifier runs here: choose the garment's category",
                                         field="category")
                info = core.assets.add(principal.tenant_id, "garment", data, field="file")
                details.update(asset_id=info.asset_id, kind=info.kind, bytes=info.bytes)
            category, chosen_by, found = classify(core.tenancy.gate, data, declared)
            return core.assets.garments.put(info, category, chosen_by=chosen_by, name=filename, classified=found)

    try:
        entry = await anyio.to_thread.run_sync(add)
    except AtelierError as exc:
        if is_htmx(request):
            raise  # the script shows the message beside the drop zone
        if view == "picker" and picker_error_page is not None:  # the Generate page again, the refusal at the upload
            return picker_error_page(request, viewer, status=exc.status, upload_error=exc,
                                     upload_form={"category": declared})
        return page(request, "garments.html", viewer, status=exc.status, active="garments", error=exc,
                    form={"category": declared}, **garments_context(request, viewer))
    if is_htmx(request):
        name = "_garment_option.html" if view == "picker" else "_garment_card.html"
        return templates.TemplateResponse(request, name, {"g": entry, "base": BASE, "csrf": viewer.csrf,
                                                          "categories": CATEGORIES, "checked": True, "fresh": True},
                                          status_code=201)
    if view == "picker":
        return see_other(f"/generate?garment={entry.asset_id}#garment-picker")
    return see_other(f"/garments#garment-{entry.asset_id}")


def _asset_id(asset_id: str) -> str:
    if not ASSET_ID.fullmatch(asset_id or ""):
        raise AssetNotFound(f"no garment {asset_id!r}", field="asset_id")
    return asset_id


@router.post("/garments/{asset_id}/category", response_class=HTMLResponse)
async def garment_category(request: Request, viewer: GarmentViewer, asset_id: str):
    core = core_of(request)
    form = await form_of(request, viewer)
    asset_id = _asset_id(asset_id)

    def change() -> ListedGarment:
        with acting(request, viewer, "generate") as principal:
            return core.assets.garments.set_category(principal.tenant_id, asset_id, form.get("category") or "")

    entry = await anyio.to_thread.run_sync(change)
    if is_htmx(request):
        return templates.TemplateResponse(request, "_garment_card.html", {"g": entry, "base": BASE, "csrf": viewer.csrf,
                                                                          "categories": CATEGORIES, "saved": True})
    return see_other(f"/garments#garment-{entry.asset_id}")


@router.post("/garments/{asset_id}/remove")
async def garment_remove(request: Request, viewer: GarmentViewer, asset_id: str):
    core = core_of(request)
    await form_of(request, viewer)
    asset_id = _asset_id(asset_id)

    def remove() -> None:
        with acting(request, viewer, "generate") as principal:
            core.assets.garments.remove(principal.tenant_id, asset_id)

    await anyio.to_thread.run_sync(remove)
    if is_htmx(request):
        return HTMLResponse("")
    return see_other("/garments")


def thumbnail_png(data: bytes, side: int = THUMB_SIDE) -> bytes:
    """A small PNG of an image that passed the asset bounds when it was added."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (side, side))  # a JPEG decodes at a fraction of its size
        image.thumbnail((side, side))
        out = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    buffer = io.BytesIO()
    out.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


@router.get("/garments/{asset_id}/thumbnail")
def garment_thumbnail(request: Request, viewer: GarmentViewer, asset_id: str):
    """A garment's thumbnail: this tenant's garment assets only (another's reads as missing)."""
    info, data = core_of(request).assets.read(viewer.principal.tenant_id, _asset_id(asset_id))
    if info.kind != "garment":
        raise AssetNotFound(f"no garment {asset_id!r}", field="asset_id")
    try:
        return Response(thumbnail_png(data), media_type="image/png")
    except Exception:  # noqa: BLE001 - an image Pillow decoded once but cannot scale (an unusual mode)
        raise UnsupportedImage("this garment's thumbnail cannot be drawn", field="asset_id") from None
