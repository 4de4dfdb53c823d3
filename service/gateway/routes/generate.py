"""`POST /v1/generate` (JSON with base64 images) and `POST /v1/generate/image` (the first image's bytes).

Owns: turning a generate request into one guarded generation for the authenticated caller,
the Idempotency-Key replay on `/v1/generate` (a replay of a twin revoked since is refused),
and the response shapes. Must never hold generation logic (`service.generation`).
"""

from __future__ import annotations

import base64
import logging
from contextlib import nullcontext

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from service.audit.events import replay_event
from service.errors import InvalidRequest
from service.gateway.deps import ClientIp, Core, GenerateCaller
from service.gateway.errors import ERROR_RESPONSES
from service.gateway.idempotency import Idempotency, replayed
from service.rendering import GenerationResult
from service.schemas import MEDIA_TYPES, GenerateRequest, GenerateResponse, ImageOut, Timings

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


def render(core, body: GenerateRequest, principal, route: str, ip: str | None) -> GenerationResult:
    result = core.generation.run(body, admit=lambda: nullcontext(principal), route=route, client_ip=ip)
    log.info("generation", extra={"fields": {"generation_id": result.generation_id, "twin_id": result.twin_id,
                                             "size": f"{body.width}x{body.height}", "steps": body.steps,
                                             "num_images": body.num_images, "timings_ms": result.timings_ms}})
    return result


@router.post("/generate", response_model=GenerateResponse, responses=ERROR_RESPONSES)
def generate(body: GenerateRequest, core: Core, principal: GenerateCaller, ip: ClientIp,
             idempotency_key: str | None = Header(None)):
    """Generate images of a twin; JSON with base64 images, seeds and timings. With an
    `Idempotency-Key`, a retry with the same body within 24 h replays the first successful
    response instead of generating again."""
    once = Idempotency.of(core.registry, principal, idempotency_key, body)
    stored = once.stored()
    if stored is None:
        response = to_response(render(core, body, principal, "/v1/generate", ip))
        if once.key is None:
            return response
        stored = once.store(response.model_dump(mode="json"), 200)
        if stored.response["generation_id"] == response.generation_id:
            return response
    elif body.twin_id is not None:
        core.tenancy.gate.decide(principal, body)  # a twin revoked since: no replay either
    # a retry, or a concurrent twin of this request that stored its response first
    core.audit.record(replay_event(route="/v1/generate", client_ip=ip, generation_id=stored.response.get("generation_id"),
                                   **principal.audit_fields()))
    return replayed(stored)


@router.post("/generate/image", responses={**ERROR_RESPONSES, 200: {"content": {t: {} for t in MEDIA_TYPES.values()},
                                                                    "description": "The first image's bytes."}},
             response_class=Response)
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

