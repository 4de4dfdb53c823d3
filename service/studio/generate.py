"""Studio's Twins and Generate pages: the twins a key may see, and one live generation.

Owns: the twins each kind of key sees (a brand: the twins its tenant may use; an operator:
every twin with its consent and a renderer's cache; a talent key: its own twins), the
Generate form turned into a `GenerateRequest`, and its answer: the page again (without
JavaScript) or a stream of denoising steps (`live.py`), then the image with its provenance.
Every read is the twins capability's (`TwinViews`; the signed licences beside each twin's
paper consent are `licences.signed_licences`'), every generation the guarded one's. Must
never hold consent or generation logic.
"""

from __future__ import annotations

import base64
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import ValidationError

from service.errors import AtelierError, InvalidRequest
from service.schemas import GenerateRequest
from service.studio import live
from service.studio.licences import signed_licences
from service.studio.pages import (GENERATE_SIZES, Viewer, client_ip, core_of, first_error, form_of, int_field, log, page,
                                  signed_in, size_field, templates)

router = APIRouter(include_in_schema=False)
POSE_PRESETS = ("front", "three-quarter", "walking", "back", "seated")
GARMENT_CATEGORIES = ("tops", "bottoms", "one-pieces", "outerwear", "shoes", "accessories", "swimwear", "lingerie")
TwinsViewer = Annotated[Viewer, Depends(signed_in("generate", "admin", "talent"))]
GenerateViewer = Annotated[Viewer, Depends(signed_in("generate"))]


@router.get("/twins", response_class=HTMLResponse)
def twins(request: Request, viewer: TwinsViewer):
    views = core_of(request).twin_views
    p = viewer.principal
    cache_error, rows = None, []
    if viewer.can("admin"):
        cache = {}
        try:
            listing = views.registered(p.audit_fields(), client_ip(request), cache=True)
            cache = {t.id: t for t in listing.twins}
        except AtelierError as exc:
            cache_error = exc.message
        rows = [{**row, "cache": cache.get(row["id"])} for row in views.with_consent()]
    elif viewer.can("generate"):
        rows = views.for_tenant(p.tenant_id)
    else:  # talent: their own twins, with every brand their consent names
        rows = views.with_consent(p.twin_ids or ())
    return page(request, "twins.html", viewer, active="twins", twins=rows, cache_error=cache_error,
                show_cache=viewer.can("admin"), licences=signed_licences(request, viewer))


def generate_request(form) -> GenerateRequest:
    width, height = size_field(form)
    body: dict = {"twin_id": form.get("twin_id") or None, "prompt": (form.get("prompt") or "").strip(),
                  "negative_prompt": (form.get("negative_prompt") or "").strip() or None,
                  "width": width, "height": height, "steps": int_field(form, "steps", 30, 1, 100),
                  "seed": int_field(form, "seed", None, 0, 2**53 - 1), "use": form.get("use") or "ecommerce",
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
    twins_ = core_of(request).twin_views.for_tenant(viewer.principal.tenant_id)
    conditioning = "garments" in GenerateRequest.model_fields and "pose" in GenerateRequest.model_fields
    return {"twins": twins_, "sizes": GENERATE_SIZES, "poses": POSE_PRESETS, "garment_categories": GARMENT_CATEGORIES,
            "conditioning": conditioning}


@router.get("/generate", response_class=HTMLResponse)
def generate_page(request: Request, viewer: GenerateViewer):
    return page(request, "generate.html", viewer, active="generate", **_generate_context(request, viewer))


@router.post("/generate", response_class=HTMLResponse)
async def generate_submit(request: Request, viewer: GenerateViewer):
    """Without JavaScript: the form posts here and the page comes back with the image."""
    form = await form_of(request, viewer)
    body = generate_request(form)
    result = await anyio.to_thread.run_sync(lambda: live.generate(core_of(request), viewer.principal, body, client_ip(request)))
    html = await anyio.to_thread.run_sync(render_result, request, result)
    return page(request, "generate.html", viewer, active="generate", result_html=html, form=dict(form),
                **_generate_context(request, viewer))


@router.post("/generate/stream")
async def generate_stream(request: Request, viewer: GenerateViewer):
    """Server-sent events: `progress` {step, steps} as the renderer denoises, then `result` or `error`."""
    form = await form_of(request, viewer)
    body = generate_request(form)
    events = live.generation_events(core_of(request), viewer.principal, body, client_ip(request),
                                    lambda result: render_result(request, result))
    return StreamingResponse(events, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})
