"""`POST /v1/verify`: does this image carry Atelier's watermark and credential, and whose is it?

Owns: reading the image (the raw body, or the multipart file field `image`, and nothing
else) for the verify capability (`service.provenance.verifier.Verifier.check`, Studio's too:
one of the key's verify slots held meanwhile, the bounded check off the event loop, the
answer naming a generation only as `service.provenance.disclosure` allows, and its record).
The body's size is capped at the edge before it is read. Must never hold verification logic.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException

from service.errors import InvalidRequest, MalformedRequest
from service.gateway.deps import ClientIp, Core, VerifyCaller
from service.gateway.errors import answers
from service.schemas import VerifyResponse

router = APIRouter(tags=["verify"])
IMAGE_BODY = {"requestBody": {"required": True, "content": {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/webp": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}},
                                       "required": ["image"]}},
}}}


async def read_image(request: Request, max_bytes: int) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        return await request.body()
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes)
    except HTTPException:  # no boundary, too many parts, a torn part
        raise MalformedRequest("the multipart body could not be parsed", field="image") from None
    unknown = sorted(set(form.keys()) - {"image"})
    if unknown:
        raise InvalidRequest(f"unknown multipart field {unknown[0][:64]!r}; send only 'image'", field=unknown[0][:64])
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise MalformedRequest("send the image as the multipart file field 'image'", field="image")
    return await upload.read()


@router.post("/verify", operation_id="verifyImage", response_model=VerifyResponse, openapi_extra=IMAGE_BODY, responses=answers(
    "unreadable_image", "image_too_large", "image_too_complex", "verify_busy", "length_required"))
async def verify(request: Request, core: Core, principal: VerifyCaller, ip: ClientIp) -> dict:
    """The image's watermark id and C2PA state; whether this service made it, and its generation
    id (found through the watermark index); the generation's tenant and twin only for that
    tenant's keys and admin keys."""
    return await core.verifier.check(principal, ip, lambda max_bytes: read_image(request, max_bytes))
