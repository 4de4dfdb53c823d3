"""Studio's Twins and Generate pages: the twins a key may see, and one live generation.

Owns: the twins each kind of key sees (a brand: the twins its tenant may use; an operator:
every twin with its consent and a renderer's cache; a talent key: its own twins), the
Generate form (twin, prompt, named sizes, images, the tenant's garments as a picker of
thumbnails, pose presets as pictures) turned into a `GenerateRequest`, its prefill from a
link (`?twin=&prompt=&garment=&pose=&size=&steps=&seed=`: "new seed" and the gallery), the
pose presets' pictures (drawn from the presets' own keypoints), and the answer: the page
again (without JavaScript; a refusal shown at its field, the input kept) or a stream of
denoising steps (`live.py`), then the image with its provenance and what to do next (edit
this, new seed, use in a job). Every read is the twins capability's (`TwinViews`; the signed
licences beside each twin's paper consent are `licences.signed_licences`'), every
generation the guarded one's. Must never hold consent or generation logic.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError

from service.assets.store import ASSET_ID
from service.conditioning import PRESETS
from service.errors import AtelierError, InvalidRequest
from service.schemas import GenerateRequest
from service.studio import garments, live
from service.studio.garments import category_of, garments_context
from service.studio.licences import signed_licences
from service.studio.pages import (GENERATE_SIZES, Viewer, client_ip, core_of, first_error, form_of, int_field, log, page,
                                  signed_in, size_field, templates)
from service.studio.security import BASE

router = APIRouter(include_in_schema=False)
POSE_PRESETS = tuple(PRESETS)
POSE_WORDS = {"front": "standing, facing the camera", "three-quarter": "standing, turned three-quarters",
              "walking": "walking towards the camera", "back": "standing, seen from behind", "seated": "seated"}
SIZE_LABELS = {"preview_256": "Preview", "square_512": "Square", "square_1024": "Square", "portrait_4_5": "Portrait 4:5",
               "square_2048": "Square, large"}
MAX_IMAGES = 4
PREFILL = ("twin", "prompt", "garment", "garment_category", "pose", "size", "steps", "seed", "use", "territory",
           "num_images")
TwinsViewer = Annotated[Viewer, Depends(signed_in("generate", "admin", "talent"))]
GenerateViewer = Annotated[Viewer, Depends(signed_in("generate"))]


def size_label(name: str) -> str:
    """`Portrait 4:5 (896×1120)`: a size's words and pixels, never its identifier."""
    width, height = GENERATE_SIZES[name]
    return f"{SIZE_LABELS.get(name, name.replace('_', ' ').capitalize())} ({width}×{height})"


def images_label(count: int) -> str:
    return "1 image" if count == 1 else f"{count} images"


def size_name(width: int | None, height: int | None) -> str | None:
    return next((name for name, wh in GENERATE_SIZES.items() if wh == (width, height)), None)


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


def generate_request(form, category_of_garment=lambda asset_id: None) -> GenerateRequest:
    """The form as a `GenerateRequest`. The garment is one of the tenant's listed garments
    (its category the list's), or, from a link, an asset id with the category it was used with."""
    width, height = size_field(form)
    body: dict = {"twin_id": form.get("twin_id") or None, "prompt": (form.get("prompt") or "").strip(),
                  "negative_prompt": (form.get("negative_prompt") or "").strip() or None,
                  "width": width, "height": height, "steps": int_field(form, "steps", 30, 1, 100),
                  "seed": int_field(form, "seed", None, 0, 2**53 - 1), "use": form.get("use") or "ecommerce",
                  "num_images": int_field(form, "num_images", 1, 1, MAX_IMAGES),
                  "territory": (form.get("territory") or "").strip().upper() or None}
    if body["twin_id"] is None:
        raise InvalidRequest("choose a twin", field="twin_id")
    if form.get("pose"):
        if form.get("pose") not in PRESETS:
            raise InvalidRequest(f"choose one of the poses: {', '.join(PRESETS)}", field="pose")
        body["pose"] = {"preset": form.get("pose")}
    garment = (form.get("garment") or "").strip()
    if garment:
        if not ASSET_ID.fullmatch(garment):
            raise InvalidRequest("choose a garment from your garments", field="garment")
        category = category_of_garment(garment) or form.get("garment_category") or None
        if category is None:
            raise InvalidRequest("this garment is not on your list: upload it again to give it a category",
                                 field="garment")
        body["garments"] = [{"asset_id": garment, "category": category}]
    if not body["prompt"]:
        raise InvalidRequest("write a prompt: what should the picture show?", field="prompt")
    try:
        return GenerateRequest.model_validate(body)
    except ValidationError as exc:
        raise first_error(exc) from None


def follow_ups(*, twin_id: str | None, prompt: str | None, width: int | None, height: int | None,
               steps: int | None = None, seed: int | None = None, garment: str | None = None,
               garment_category: str | None = None, pose: str | None = None, use: str | None = None,
               territory: str | None = None, generation_id: str | None = None, editable: bool = False) -> dict:
    """The links after a result or beside a gallery item: new seed (Generate prefilled, no
    seed), use in a job (the job builder with a first row: `twin` (and `twin_id`, the
    builder's own name for it), `garment`, `prompt`, `pose`, `seed`), edit this."""
    def query(values: dict) -> str:
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})

    again = {"twin": twin_id, "prompt": prompt, "garment": garment, "garment_category": garment_category, "pose": pose,
             "size": size_name(width, height), "steps": steps, "use": use, "territory": territory}
    links = {"new_seed": f"{BASE}/generate?{query(again)}" if twin_id else None,
             "job": f"{BASE}/jobs/new?" + query({"twin_id": twin_id, "twin": twin_id, "garment": garment, "prompt": prompt,
                                                  "pose": pose, "seed": seed}) if twin_id else None,
             "edit": f"{BASE}/edit?{query({'generation': generation_id})}" if editable and twin_id and generation_id
             else None}
    return links


def result_links(request: Request, body: GenerateRequest, result) -> dict:
    garment = body.garments[0] if body.garments else None
    return follow_ups(twin_id=result.twin_id, prompt=body.prompt, width=body.width, height=body.height, steps=body.steps,
                      seed=result.seed, garment=garment.asset_id if garment else None,
                      garment_category=garment.category if garment else None,
                      pose=body.pose.preset if body.pose is not None else None, use=body.use, territory=body.territory,
                      generation_id=result.generation_id, editable=core_of(request).settings.keep_outputs)


def render_result(request: Request, result, links: dict | None = None) -> str:
    """The result fragment: the images with their provenance (watermark id, C2PA state,
    generation id), and what to do next."""
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
    return templates.get_template("_generate_result.html").render(result=result, images=images, links=links or {},
                                                                  count=images_label(len(images)), base=BASE)


def _twin_choices(request: Request, viewer: Viewer) -> list[dict]:
    return core_of(request).twin_views.for_tenant(viewer.principal.tenant_id)


def _generate_context(request: Request, viewer: Viewer, form: dict | None = None) -> dict:
    context = garments_context(request, viewer)
    garment = (form or {}).get("garment")
    listed_ids = {g.asset_id for g in context["garments"]}
    # A garment named by a link (a gallery item's) but no longer on the list: offered as it was used.
    context["linked_garment"] = garment if garment and ASSET_ID.fullmatch(garment) and garment not in listed_ids else None
    return {**context, "twins": _twin_choices(request, viewer), "sizes": {n: size_label(n) for n in GENERATE_SIZES},
            "poses": POSE_PRESETS, "pose_words": POSE_WORDS, "image_counts": [(n, images_label(n)) for n in
                                                                                range(1, MAX_IMAGES + 1)],
            "conditioning": "garments" in GenerateRequest.model_fields and "pose" in GenerateRequest.model_fields,
            "can_license": viewer.can("licensing"), "form": form or {}}


def generate_page_response(request: Request, viewer: Viewer, *, status: int = 200, form: dict | None = None,
                           **context) -> HTMLResponse:
    return page(request, "generate.html", viewer, status=status, active="generate",
                **{**_generate_context(request, viewer, form), **context})


garments.picker_error_page = generate_page_response  # a refused upload from Generate's picker comes back here


@router.get("/generate", response_class=HTMLResponse)
def generate_page(request: Request, viewer: GenerateViewer):
    """The form, prefilled from a link's query (new seed, a gallery item): only known fields."""
    prefill = {name: request.query_params[name][:2000] for name in PREFILL if request.query_params.get(name)}
    if "twin" in prefill:
        prefill["twin_id"] = prefill.pop("twin")
    return generate_page_response(request, viewer, form=prefill)


def _category_lookup(request: Request, viewer: Viewer):
    return lambda asset_id: category_of(request, viewer.principal.tenant_id, asset_id)


@router.post("/generate", response_class=HTMLResponse)
async def generate_submit(request: Request, viewer: GenerateViewer):
    """Without JavaScript: the form posts here and the page comes back with the image, or with
    the refusal at its field and the input as typed."""
    form = await form_of(request, viewer)
    typed = {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    try:
        body = generate_request(form, _category_lookup(request, viewer))
        result = await anyio.to_thread.run_sync(
            lambda: live.generate(core_of(request), viewer.principal, body, client_ip(request)))
    except AtelierError as exc:
        return generate_page_response(request, viewer, status=exc.status, form=typed, error=exc)
    html = await anyio.to_thread.run_sync(lambda: render_result(request, result, result_links(request, body, result)))
    return generate_page_response(request, viewer, form=typed, result_html=html)


@router.post("/generate/stream")
async def generate_stream(request: Request, viewer: GenerateViewer):
    """Server-sent events: `progress` {step, steps} as the renderer denoises, then `result` or `error`."""
    form = await form_of(request, viewer)
    body = generate_request(form, _category_lookup(request, viewer))
    events = live.generation_events(core_of(request), viewer.principal, body, client_ip(request),
                                    lambda result: render_result(request, result, result_links(request, body, result)))
    return StreamingResponse(events, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


# -- pose presets as pictures -------------------------------------------------------------------

POSE_PICTURE = (96, 128)
POSE_BACKGROUND = (29, 27, 24)  # the page's ink colour: the skeleton's colours read on it


@lru_cache(maxsize=len(PRESETS))
def pose_picture(name: str) -> bytes:
    """A small picture of a pose preset, drawn from its keypoints (limbs in OpenPose's colours),
    at twice the size and scaled down for smooth lines."""
    from PIL import Image, ImageDraw

    from service.conditioning.pose import COLORS, LIMBS

    scale = 2
    width, height = POSE_PICTURE[0] * scale, POSE_PICTURE[1] * scale
    canvas = Image.new("RGB", (width, height), POSE_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    points = [None if p is None else (p[0] * width, p[1] * height) for p in PRESETS[name]]
    for (a, b), colour in zip(LIMBS, COLORS):
        if points[a] is not None and points[b] is not None:
            draw.line([points[a], points[b]], fill=colour, width=4 * scale)
    radius = 3 * scale
    for point, colour in zip(points, COLORS):
        if point is not None:
            draw.ellipse((point[0] - radius, point[1] - radius, point[0] + radius, point[1] + radius), fill=colour)
    out = io.BytesIO()
    canvas.resize(POSE_PICTURE, Image.Resampling.LANCZOS).save(out, "PNG")
    return out.getvalue()


@router.get("/poses/{name}.png")
def pose_image(name: str):
    """A pose preset's picture (public: it shows a preset's keypoints, nothing of any tenant)."""
    if name not in PRESETS:
        error = AtelierError(f"there is no pose preset {name!r}")
        error.status, error.code = 404, "not_found"
        raise error
    return Response(pose_picture(name), media_type="image/png")
