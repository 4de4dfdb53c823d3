"""A request's conditioning inputs, made ready for the renderer: every image an asset of the tenant.

Owns: fetching garment and pose URLs into the tenant's assets (through the SSRF guard, once
per URL), checking that every asset id the request names is this tenant's (another tenant's
id reads exactly like a missing one), checking pose keypoints, an edit's source and mask
(the source's size and the mask's; what the source is, and whether it may be edited as the
named twin, is `service.assets.edit_source`'s), and keeping delivered images so a later edit
can name their generation. Must never decide consent (`service.tenancy`: the caller checks
the twin's consent before any asset is read) or decode images beyond their bounds check.
"""

from __future__ import annotations

from service.assets import AssetService
from service.assets.edit_source import EditSources
from service.conditioning import validate_keypoints
from service.errors import InvalidRequest
from service.rendering import GenerationResult, RenderEdit
from service.schemas import GenerateRequest

MIN_SIDE, MAX_SIDE = 256, 2048


class ConditioningInputs:
    def __init__(self, assets: AssetService, keep_outputs: bool = True, sources: EditSources | None = None):
        self.assets = assets
        self.keep_outputs = keep_outputs
        # Without a watermark index, nothing resolves to a generation: every source is an upload.
        self.sources = sources or EditSources(assets.store)
        if self.sources.store is not assets.store:  # `keep` writes the image and its records in one batch
            raise ValueError("the edit sources' records must live in the asset store they name")

    def prepare(self, principal, request: GenerateRequest) -> GenerateRequest:
        """The request with URLs replaced by asset ids, every asset checked as the tenant's."""
        tenant = principal.tenant_id
        garments = []
        for index, garment in enumerate(request.garments):
            field = f"garments.{index}"
            if garment.url is not None:
                info = self.assets.add_url(tenant, "garment", garment.url, field=f"{field}.url")
                garment = garment.model_copy(update={"asset_id": info.asset_id, "url": None})
            else:
                self.assets.info(tenant, garment.asset_id, field=f"{field}.asset_id")
            garments.append(garment)
        pose = request.pose
        if pose is not None:
            if pose.url is not None:
                info = self.assets.add_url(tenant, "pose", pose.url, field="pose.url")
                pose = pose.model_copy(update={"asset_id": info.asset_id, "url": None})
            elif pose.asset_id is not None:
                self.assets.info(tenant, pose.asset_id, field="pose.asset_id")
            elif pose.keypoints is not None:
                validate_keypoints(pose.keypoints)
        if garments == list(request.garments) and pose is request.pose:
            return request
        return request.model_copy(update={"garments": garments, "pose": pose})

    def edit_source(self, principal, twin_id: str, source, mask_asset_id: str, invert: bool) -> tuple[RenderEdit, int, int]:
        """The edit's source and mask as this tenant's assets, and the size to render at (the
        source's, rounded down to a multiple of 8 within 256..2048). The source must be a
        generation of `twin_id` for this tenant, or an upload the tenant may edit
        (`EditSources.resolve`); call it only once the twin's consent holds."""
        tenant = principal.tenant_id
        generation_id = source.generation_id
        if generation_id is not None:
            field = "source.generation_id"
            asset_id = self.sources.kept_asset(tenant, generation_id, field=field)
        else:
            asset_id, field = source.asset_id, "source.asset_id"
        info = self.assets.info(tenant, asset_id, field=field)
        mask = self.assets.info(tenant, mask_asset_id, field="mask_asset_id")
        if (mask.width, mask.height) != (info.width, info.height):
            raise InvalidRequest(f"the mask is {mask.width}x{mask.height} but the source is {info.width}x{info.height}",
                                 field="mask_asset_id")
        resolved = self.sources.resolve(tenant, twin_id, asset_id, field=field)
        width, height = (max(MIN_SIDE, min(MAX_SIDE, side // 8 * 8)) for side in (info.width, info.height))
        return RenderEdit(source_asset_id=asset_id, mask_asset_id=mask_asset_id, invert=invert,
                          source_generation_id=resolved.generation_id, origin=resolved.origin), width, height

    def keep(self, principal, result: GenerationResult, edit: RenderEdit | None = None) -> None:
        """Keep a delivered generation's first image as an edit source of the tenant, with its
        watermark id and origin (an edit of an upload stays an upload): the image, its asset
        record and the two edit-source records, written together (on S3, four PUTs at once: one
        round trip on the request path, not five with the existence check the image never
        needs), without an fsync (a convenience copy), and all written before it returns, so
        an edit sent the moment the answer arrives finds them."""
        if not self.keep_outputs or not result.images:
            return
        image = result.images[0]
        info = self.assets.output_info(principal.tenant_id, image)  # our own image: its facts are known, no decode
        origin = "upload" if edit is not None and edit.origin == "upload" else "generation"
        writes = self.assets.store.writes(info, image.data) + self.sources.writes(
            principal.tenant_id, result.generation_id, info.asset_id, image.watermark_id, origin)
        self.assets.store.blobs.put_many(writes, durable=False)
