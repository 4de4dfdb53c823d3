"""Studio's Edit: choose a kept generation, paint a mask (or choose a preset), describe the
change, and see the result as Generate shows it.

Owns: the edit page (the tenant's kept generations to choose from; then the chosen one with
a canvas to paint on, and mask presets drawn at the source's size), the mask presets' shapes
and pictures, and the posted edit turned into the calls `POST /v1/assets` (the mask, `kind:
mask`, with its bounds and `asset.add` record) and `POST /v1/edit` make: the twin's consent
and prompt policy before any asset is read, the source resolved as this tenant's generation
of that twin (`ConditioningInputs.edit_source`, through `EditSources`), a refusal recorded
as a `generation` record as the API records it, then one guarded generation with the edit
(recorded under the route `/studio/edit`). The twin is the source generation's, read from
its audit record, never from the form. Must never hold consent, source or generation logic,
and never show or edit another tenant's generation.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.assets import AssetNotFound
from service.audit.actions import audited, audited_action
from service.audit.events import asset_event, generation_event
from service.errors import AtelierError, InvalidRequest, MalformedRequest
from service.schemas import EditRequest, GenerateRequest
from service.studio.gallery import PER_PAGE, GalleryQuery, gallery_page, generation_record, kept_image, twin_names_of
from service.studio.garments import category_of, garments_context
from service.studio.generate import follow_ups, images_label, render_result
from service.studio.pages import (Viewer, acting, client_ip, core_of, first_error, form_of, int_field, page, signed_in)
from service.tenancy import Limits

router = APIRouter(include_in_schema=False)
EditViewer = Annotated[Viewer, Depends(signed_in("generate"))]
ROUTE = "/studio/edit"
# Mask presets: (label, boxes as (left, top, right, bottom) fractions of the frame, invert).
# White is repainted; `invert` repaints everything outside (the person kept, the scene changed).
MASK_PRESETS: dict[str, tuple[str, tuple[tuple[float, float, float, float], ...], bool]] = {
    "top": ("Top garment", ((0.22, 0.17, 0.78, 0.56),), False),
    "bottom": ("Bottom garment", ((0.25, 0.50, 0.75, 0.95),), False),
    "outfit": ("Whole outfit", ((0.20, 0.17, 0.80, 0.95),), False),
    "background": ("Background (keeps the person)", ((0.18, 0.04, 0.82, 0.99),), True),
}
MASK_CHOICES = ("painted", "upload", *MASK_PRESETS)


def mask_png(name: str, width: int, height: int) -> bytes:
    """A preset's mask at the source's size: white where the preset's boxes are, black elsewhere."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for left, top, right, bottom in MASK_PRESETS[name][1]:
        draw.rounded_rectangle((left * width, top * height, right * width, bottom * height),
                               radius=max(2, min(width, height) // 16), fill=255)
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


@lru_cache(maxsize=len(MASK_PRESETS))
def mask_picture(name: str) -> bytes:
    """A preset's small picture: what it repaints in the accent colour, what it keeps pale."""
    from PIL import Image

    small = Image.open(io.BytesIO(mask_png(name, 64, 80))).convert("L")
    if MASK_PRESETS[name][2]:
        small = small.point(lambda v: 255 - v)
    kept, repainted = Image.new("RGB", small.size, (228, 222, 213)), Image.new("RGB", small.size, (122, 62, 29))
    out = io.BytesIO()
    Image.composite(repainted, kept, small).save(out, "PNG")
    return out.getvalue()


@router.get("/edit/masks/{name}.png")
def mask_preset_picture(name: str):
    """A mask preset's picture (public: a shape, nothing of any tenant)."""
    if name not in MASK_PRESETS:
        error = AtelierError(f"there is no mask preset {name!r}")
        error.status, error.code = 404, "not_found"
        raise error
    return Response(mask_picture(name), media_type="image/png")


def source_of(request: Request, viewer: Viewer, generation_id: str) -> dict:
    """The kept generation an edit starts from: its record's twin and prompt, and its kept image."""
    core = core_of(request)
    tenant = viewer.principal.tenant_id
    record = generation_record(core, tenant, (generation_id or "").strip().lower())
    kept = kept_image(core, tenant, record) if record is not None else None
    if record is None or kept is None or not record.get("twin_id"):
        raise AssetNotFound(f"no kept generation {generation_id!r} of a twin for this tenant: choose one from the "
                            "gallery", field="generation_id")
    _, names = twin_names_of(core, tenant)
    prompt = ((record.get("params") or {}).get("prompt") or {}).get("verbatim")
    return {"generation_id": record["generation_id"], "twin_id": record["twin_id"],
            "twin_name": names.get(record["twin_id"], record["twin_id"]), "prompt": prompt, "asset": kept,
            "use": (record.get("params") or {}).get("use"), "territory": (record.get("params") or {}).get("territory")}


def _context(request: Request, viewer: Viewer, source: dict | None, form: dict | None = None) -> dict:
    context = {"source": source, "presets": {name: label for name, (label, _, _) in MASK_PRESETS.items()},
               "form": form or {}, **garments_context(request, viewer)}
    if source is None:  # the chooser: recent kept generations of a twin
        core = core_of(request)
        _, names = twin_names_of(core, viewer.principal.tenant_id)
        items, _ = gallery_page(core, viewer.principal.tenant_id, GalleryQuery(), names)
        context["choices"] = [it for it in items if it["links"]["edit"]][:PER_PAGE]
    return context


@router.get("/edit", response_class=HTMLResponse)
def edit_page(request: Request, viewer: EditViewer, generation: str | None = None):
    source = source_of(request, viewer, generation) if generation else None
    form = {"use": source["use"], "territory": source["territory"]} if source else None
    return page(request, "edit.html", viewer, active="edit", **_context(request, viewer, source, form))


async def _edit_form(request: Request, viewer: Viewer):
    try:
        return await form_of(request, viewer, max_files=1, max_fields=16, max_part_size=8192)
    except StarletteHTTPException:  # a torn or malformed multipart body
        raise MalformedRequest("send the edit as the page's form: its fields and at most one mask image",
                               field="mask") from None


def edit_body(form, source: dict, mask_asset_id: str, invert: bool, category_of_garment) -> EditRequest:
    garment = (form.get("garment") or "").strip()
    body: dict = {"twin_id": source["twin_id"], "source": {"generation_id": source["generation_id"]},
                  "mask_asset_id": mask_asset_id, "invert_mask": invert, "prompt": (form.get("prompt") or "").strip(),
                  "steps": int_field(form, "steps", 30, 1, 100), "seed": int_field(form, "seed", None, 0, 2**53 - 1),
                  "use": form.get("use") or "ecommerce", "territory": (form.get("territory") or "").strip().upper() or None}
    if garment:
        category = category_of_garment(garment)
        if category is None:
            raise InvalidRequest("choose a garment from your garments", field="garment")
        body["garments"] = [{"asset_id": garment, "category": category}]
    try:
        return EditRequest.model_validate(body)
    except ValidationError as exc:
        raise first_error(exc) from None


def as_generation(body: EditRequest, width: int | None = None, height: int | None = None) -> GenerateRequest:
    """The edit as the generation request it renders (as `POST /v1/edit` turns it into one):
    the source's size once it is known."""
    size = {} if width is None else {"width": width, "height": height}
    return GenerateRequest(twin_id=body.twin_id, prompt=body.prompt, negative_prompt=body.negative_prompt, **size,
                           steps=body.steps, guidance_scale=body.guidance_scale, seed=body.seed,
                           num_images=body.num_images, output_format=body.output_format, use=body.use,
                           territory=body.territory, garments=body.garments)


@router.post("/edit", response_class=HTMLResponse)
async def edit_submit(request: Request, viewer: EditViewer):
    """The edit: its mask stored as the tenant's asset, then the edit as `POST /v1/edit` runs
    it. The page comes back with the result, or with the refusal at its field, the input kept."""
    core = core_of(request)
    form = await _edit_form(request, viewer)
    typed = {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    source = source_of(request, viewer, form.get("generation_id") or "")
    ip = client_ip(request)
    choice = form.get("mask_choice") or ""
    upload = form.get("mask")
    mask_bytes = await upload.read() if upload is not None and not isinstance(upload, str) else b""

    def run():
        if not (form.get("prompt") or "").strip():
            raise InvalidRequest("describe the change: what should the masked area show?", field="prompt")
        if choice not in MASK_CHOICES:
            raise InvalidRequest("paint the area to change, or choose a mask", field="mask_choice")
        category = lambda asset_id: category_of(request, viewer.principal.tenant_id, asset_id)  # noqa: E731
        edit_body(form, source, "0" * 64, False, category)  # the form's own refusals, before a mask is stored
        if choice in MASK_PRESETS:
            data, invert = mask_png(choice, source["asset"].width, source["asset"].height), MASK_PRESETS[choice][2]
        elif not mask_bytes:
            raise InvalidRequest("paint the area to change on the picture (or upload a mask image)" if choice == "painted"
                                 else "choose a mask image to upload", field="mask")
        else:
            data, invert = mask_bytes, False
        with acting(request, viewer, "generate") as principal:  # the mask's upload: one request, as on the API
            with audited_action(core.audit.record, asset_event, action="add", client_ip=ip, route=ROUTE,
                                **principal.audit_fields()) as details:
                mask = core.assets.add(principal.tenant_id, "mask", data, field="mask")
                details.update(asset_id=mask.asset_id, kind=mask.kind, bytes=mask.bytes)
        body = edit_body(form, source, mask.asset_id, invert, category)
        principal = viewer.principal
        draft = as_generation(body)
        try:  # as /v1/edit: consent, categories and prompt policy before any asset; then the source
            core.tenancy.gate.admit(principal, draft)
            render_edit, width, height = core.inputs.edit_source(principal, body.twin_id, body.source, body.mask_asset_id,
                                                                 body.invert_mask)
        except AtelierError as exc:
            core.audit.record(generation_event(route=ROUTE, request=draft, error=exc, client_ip=ip,
                                               base_model_id=core.generation.base_model_id, prompts=core.audit.prompts,
                                               **principal.audit_fields()))
            raise audited(exc) from None
        request_ = as_generation(body, width, height)
        result = core.generation.run(request_, admit=lambda: core.tenancy.admit(principal, "generate",
                                                                                 limits=Limits.REQUEST),
                                     route=ROUTE, client_ip=ip, edit=render_edit)
        return request_, result

    try:
        body, result = await anyio.to_thread.run_sync(run)
    except AtelierError as exc:
        return page(request, "edit.html", viewer, status=exc.status, active="edit", error=exc,
                    **_context(request, viewer, source, typed))
    links = follow_ups(twin_id=result.twin_id, prompt=None, width=None, height=None,
                       generation_id=result.generation_id, editable=core.settings.keep_outputs)
    links["new_seed"] = links["job"] = None  # an edit is redone from its source
    html = await anyio.to_thread.run_sync(lambda: render_result(request, result, links))
    return page(request, "edit.html", viewer, active="edit", result_html=html, count=images_label(len(result.images)),
                **_context(request, viewer, source, typed))
