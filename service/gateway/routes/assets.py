"""`POST /v1/assets` (a multipart upload or an https URL) and `GET /v1/assets/{asset_id}`.

Owns: reading the upload or the URL body, handing it to `service.assets` (bounds before
decoding, SSRF guard, tenant-scoped storage by sha256) and the audited answer. The upload's
key is checked at the edge before its body is read. Must never hold asset logic.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.audit.events import asset_event
from service.errors import InvalidRequest, MalformedRequest
from service.gateway.deps import ClientIp, Core, GenerateCaller, audited_action
from service.gateway.errors import INPUT_IMAGES, answers
from service.schemas import AssetKind, AssetOut

router = APIRouter(tags=["assets"])
FORM_FIELDS = {"file", "kind"}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file", "kind"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "PNG, JPEG or WebP"},
        "kind": {"type": "string", "enum": ["garment", "pose", "mask", "source"]}}}},
    "application/json": {"schema": {"type": "object", "required": ["url", "kind"], "properties": {
        "url": {"type": "string", "description": "https URL of the image (fetched through the SSRF guard)"},
        "kind": {"type": "string", "enum": ["garment", "pose", "mask", "source"]}}}},
}}}


class AssetUrlBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(..., min_length=8, max_length=2048)
    kind: AssetKind


async def _upload(request: Request, max_bytes: int) -> tuple[str, bytes]:
    try:
        form = await request.form(max_files=1, max_fields=2, max_part_size=max_bytes)
    except Exception:  # starlette's MultiPartException and parser errors: the body is not a valid form
        raise MalformedRequest("send a multipart form with the fields 'file' and 'kind'", field="file") from None
    unknown = sorted(set(form.keys()) - FORM_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown form field {unknown[0]!r}; send 'file' and 'kind'", field=unknown[0])
    upload, kind = form.get("file"), form.get("kind")
    if upload is None or isinstance(upload, str):
        raise MalformedRequest("send the image as the multipart file field 'file'", field="file")
    if not isinstance(kind, str):
        raise InvalidRequest("kind is required: garment, pose, mask or source", field="kind")
    return kind, await upload.read()


@router.post("/assets", status_code=201, operation_id="addAsset", response_model=AssetOut, openapi_extra=UPLOAD_BODY,
              responses=answers(*INPUT_IMAGES[1:], "length_required"))
async def add_asset(request: Request, core: Core, principal: GenerateCaller, ip: ClientIp):
    """Add an input image for generations of this tenant: a garment (packshot, flat-lay, ghost
    mannequin), a pose image, a mask or a source photo. Stored once per sha256; its id is the
    sha256. URLs are fetched through the SSRF guard (public https addresses only)."""
    with audited_action(core, asset_event, action="add", client_ip=ip, **principal.audit_fields()) as details:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            kind, data = await _upload(request, core.settings.max_asset_bytes)
            info = await anyio.to_thread.run_sync(lambda: core.assets.add(principal.tenant_id, kind, data))
        else:
            try:
                body = AssetUrlBody.model_validate_json(await request.body())
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first.get("loc", ())) or None
                if first["type"] == "json_invalid" or not field:
                    raise MalformedRequest("send a multipart upload or a JSON object {url, kind}") from None
                raise InvalidRequest(f"{field}: {first['msg']}", field=field) from None
            details["source_url_host"] = body.url.split("/")[2] if body.url.count("/") >= 2 else None
            info = await anyio.to_thread.run_sync(lambda: core.assets.add_url(principal.tenant_id, body.kind, body.url))
        details.update(asset_id=info.asset_id, kind=info.kind, bytes=info.bytes)
    return AssetOut(**info.shown())


@router.get("/assets/{asset_id}", operation_id="getAsset", response_model=AssetOut, responses=answers("asset_not_found"))
def get_asset(core: Core, principal: GenerateCaller, asset_id: str = Path(..., pattern=r"^[0-9a-f]{64}$")):
    """An asset's metadata (this tenant's assets only: another tenant's id reads as missing)."""
    return AssetOut(**core.assets.info(principal.tenant_id, asset_id).shown())

