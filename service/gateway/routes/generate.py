"""`POST /v1/generate` (JSON with base64 images), `POST /v1/generate/image` (the first image's
bytes) and `POST /v1/edit` (re-dress or re-stage a photo of the twin).

Owns: turning a generate request into one guarded generation for the authenticated caller,
the Idempotency-Key replay on `/v1/generate` (a replay of a twin revoked since is refused),
and the response shapes. Must never hold generation logic (`service.gateway.generation`).
"""

from __future__ import annotations

import base64
import logging
from contextlib import contextmanager, nullcontext

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from service.audit.actions import audited
from service.audit.events import generation_event, replay_event
from service.errors import AtelierError, InvalidRequest
from service.gateway.deps import ClientIp, Core, GenerateCaller
from service.gateway.errors import GENERATION, answers
from service.gateway.openapi import binary_image
from service.gateway.idempotency import Idempotency, replayed
from service.rendering import GenerationResult
from service.schemas import MEDIA_TYPES, EditRequest, GenerateRequest, GenerateResponse, ImageOut, Timings

log = logging.getLogger("atelier.generate")
router = APIRouter(tags=["generate"])


def to_response(result: GenerationResult) -> GenerateResponse:
    return GenerateResponse(
        generation_id=result.generation_id, twin_id=result.twin_id, seed=result.seed,
        images=[ImageOut(index=img.index, format=img.format, width=img.width, height=img.height, seed=img.seed,
                         sha256=img.sha256, watermark_id=img.watermark_id,
                         data_base64=base64.b64encode(img.data).decode("ascii")) for img in result.images],
        timings_ms=Timings(**result.timings_ms),
    )


def answered(response: GenerateResponse) -> Response:
    """The response's JSON, serialised here in the route's worker thread. Returning the model
    would have FastAPI validate it again and serialise it in one more thread-pool hop (for a
    body that is mostly base64 image bytes); the `response_model` still documents it."""
    return Response(content=response.model_dump_json(by_alias=True), media_type="application/json")


def render(core, body: GenerateRequest, principal, route: str, ip: str | None, edit=None) -> GenerationResult:
    result = core.generation.run(body, admit=lambda: nullcontext(principal), route=route, client_ip=ip, edit=edit)
    log.info("generation", extra={"fields": {"generation_id": result.generation_id, "twin_id": result.twin_id,
                                             "size": f"{body.width}x{body.height}", "steps": body.steps,
                                             "num_images": body.num_images, "timings_ms": result.timings_ms}})
    return result


@contextmanager
def refusals_audited(core, body: GenerateRequest, principal, ip: str | None, route: str = "/v1/generate"):
    """A refusal before the generation runs (the Idempotency-Key, the replay's consent, an
    edit's consent and source) is audited like any refusal of a generation: a `generation`
    record with tenant, key and twin."""
    try:
        yield
    except AtelierError as exc:
        core.audit.record(generation_event(route=route, request=body, error=exc, client_ip=ip,
                                           base_model_id=core.generation.base_model_id, prompts=core.audit.prompts,
                                           **principal.audit_fields()))
        raise audited(exc) from None


@router.post("/generate", operation_id="generate", response_model=GenerateResponse,
             responses=answers("idempotency_key_reused", *GENERATION))
def generate(body: GenerateRequest, core: Core, principal: GenerateCaller, ip: ClientIp,
             idempotency_key: str | None = Header(None)):
    """Generate images of a twin; JSON with base64 images, seeds and timings. With an
    `Idempotency-Key`, a retry with the same body within 24 h replays the first successful
    response instead of generating again."""
    with refusals_audited(core, body, principal, ip):  # a bad key, another body, a twin revoked since
        once = Idempotency.of(core.registry, principal.tenant_id, idempotency_key, body)
        stored = once.stored()
        if stored is not None and body.twin_id is not None:
            core.tenancy.gate.decide(principal, body)  # a twin revoked since: no replay either
    if stored is None:
        response = to_response(render(core, body, principal, "/v1/generate", ip))
        if once.key is None:
            return answered(response)
        stored = once.store(response.model_dump(mode="json"), 200)
        if stored.response["generation_id"] == response.generation_id:
            return answered(response)
    # a retry, or a concurrent twin of this request that stored its response first
    core.audit.record(replay_event(route="/v1/generate", client_ip=ip, generation_id=stored.response.get("generation_id"),
                                   **principal.audit_fields()))
    return replayed(stored)


@router.post("/generate/image", operation_id="generateImage", response_class=Response,
             responses={**answers(*GENERATION), 200: binary_image("The first image's bytes, with X-Generation-Id, X-Seed "
                                                                  "and X-Image-Sha256 headers.")})
def generate_image(body: GenerateRequest, request: Request, core: Core, principal: GenerateCaller, ip: ClientIp) -> Response:
    """Generate and return the first image's bytes, with its Content-Type."""
    if request.headers.get("idempotency-key") is not None:
        raise InvalidRequest("Idempotency-Key is supported on /v1/generate and /v1/jobs/submit, not on "
                             "/v1/generate/image", field="Idempotency-Key")
    result = render(core, body, principal, "/v1/generate/image", ip)
    first = result.images[0]
    return Response(content=first.data, media_type=MEDIA_TYPES[first.format], headers={
        "X-Generation-Id": result.generation_id, "X-Seed": str(first.seed), "X-Image-Sha256": first.sha256,
        "Content-Disposition": f'inline; filename="{result.generation_id}.{first.format}"',
    })



@router.post("/edit", operation_id="edit", response_model=GenerateResponse, responses=answers(
    "edit_source_mismatch", "edit_upload_not_allowed", "edit_source_unverifiable", *GENERATION))
def edit(body: EditRequest, core: Core, principal: GenerateCaller, ip: ClientIp):
    """Repaint the mask's white area of a photo of the twin (re-dress it with garments and/or a
    prompt), or with `invert_mask` everything outside a person mask (a background swap). The
    source is an earlier generation of this tenant or an uploaded photo (`kind: source`); the
    pixels outside the repainted area are kept. The C2PA manifest names the source as an
    ingredient; the watermark is embedded afresh. The twin's consent is checked before any
    asset is read; the source must be this tenant's generation of the same twin (an uploaded
    photo only where an operator allows the tenant)."""
    draft = edit_request(body)  # the source's size is not known before its asset is read
    with refusals_audited(core, draft, principal, ip, route="/v1/edit"):
        core.tenancy.gate.admit(principal, draft)  # consent, categories, prompt policy: before any asset
        render_edit, width, height = core.inputs.edit_source(principal, body.twin_id, body.source, body.mask_asset_id,
                                                             body.invert_mask)
    request = edit_request(body, width, height)
    return answered(to_response(render(core, request, principal, "/v1/edit", ip, edit=render_edit)))


def edit_request(body: EditRequest, width: int | None = None, height: int | None = None) -> GenerateRequest:
    size = {} if width is None else {"width": width, "height": height}
    return GenerateRequest(
        twin_id=body.twin_id, prompt=body.prompt, negative_prompt=body.negative_prompt, **size,
        steps=body.steps, guidance_scale=body.guidance_scale, seed=body.seed, num_images=body.num_images,
        output_format=body.output_format, use=body.use, territory=body.territory, garments=body.garments,
    )
