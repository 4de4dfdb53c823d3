"""`POST /v1/verify`: does this image carry Atelier's watermark and credential, and whose is it?

Owns: reading the image (the raw body, or the multipart file field `image`), running the
provenance check off the event loop, and the audited answer. The body's size is capped at the
edge before it is read. Must never hold verification logic (`service.provenance.verify`).
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request

from service.audit.events import verify_event
from service.errors import MalformedRequest
from service.gateway.deps import ClientIp, Core, VerifyCaller, audited_action
from service.gateway.errors import ERROR_RESPONSES
from service.provenance.verify import verify_image

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
    form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes)
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise MalformedRequest("send the image as the multipart file field 'image'", field="image")
    return await upload.read()


@router.post("/verify", responses=ERROR_RESPONSES, openapi_extra=IMAGE_BODY)
async def verify(request: Request, core: Core, principal: VerifyCaller, ip: ClientIp) -> dict:
    """The image's watermark id, C2PA state and generation (with its audit summary)."""
    details = {"upload": b"", "client_ip": ip, **principal.audit_fields()}
    with audited_action(core, verify_event, **details) as details:
        data = details["upload"] = await read_image(request, core.settings.max_verify_bytes)
        report = await anyio.to_thread.run_sync(verify_image, data, core.settings.max_verify_pixels,
                                                core.settings.c2pa_trust_anchors)
        details["report"] = report
        body = report.as_dict()
        body["audit"] = await anyio.to_thread.run_sync(core.audit.generation_summary, report.generation_id)
    return body
