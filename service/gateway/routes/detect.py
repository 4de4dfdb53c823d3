"""`POST /v1/detect`: the free public check (EU AI Act Article 50). Does this image carry
Atelier's watermark and a valid Atelier C2PA manifest, and is it AI-generated?

Owns: reading the image (the raw body, or the multipart file field `image`, as `/v1/verify`
reads it) for the public check (`service.provenance.detect.Detector.check`, which Studio's
Detect page calls too: the source's budget, the slots, verify's decoding bounds, the answer
and the compact record of refusals). No key is asked for, and none is looked at. The body's
size is capped at the edge before it is read. Must never hold detection logic.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.gateway.deps import ClientIp, Core
from service.gateway.errors import answers
from service.gateway.routes.verify import IMAGE_BODY, read_image
from service.schemas import DetectResponse

router = APIRouter(tags=["detect"])


@router.post("/detect", operation_id="detectImage", response_model=DetectResponse, openapi_extra=IMAGE_BODY,
             responses=answers("unreadable_image", "image_too_large", "image_too_complex", "too_many_concurrent",
                               "detect_busy", "length_required"))
async def detect(request: Request, core: Core, ip: ClientIp) -> dict:
    """Public, no key: whether the image carries Atelier's invisible watermark and a valid
    C2PA manifest signed by Atelier, and whether it is AI-generated, with the manifest's
    digital source type, training-mining assertion and licence assertion (opaque ids of what
    licensed it). Never a tenant, twin, person, generation or watermark id. Each address may check `ATELIER_DETECT_REQUESTS_PER_MINUTE`
    images a minute (429 before the body is read)."""
    return await core.detector.check(ip, lambda max_bytes: read_image(request, max_bytes))
