"""Generation, edit and asset bodies: what `/v1/generate`, `/v1/edit` and `/v1/assets` take and answer.

Owns: `GenerateRequest` (also what a render item carries to the renderer), its conditioning
references (garments, pose), `EditRequest`, and the image, timing and asset answers. Must never
import bentoml, torch, or anything that does work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.schemas.common import ASSET_ID_PATTERN, MAX_PROMPT_CHARS, MAX_SEED, TWIN_ID_PATTERN, OutputFormat

AssetKind = Literal["garment", "pose", "mask", "source"]
# The garment categories a request declares. Swimwear and lingerie go through the twin's
# consent (excluded unless the consent record includes them).
GarmentCategory = Literal["tops", "bottoms", "one-pieces", "outerwear", "shoes", "accessories", "swimwear", "lingerie"]
PosePreset = Literal["front", "three-quarter", "walking", "back", "seated"]


class GarmentRef(BaseModel):
    """The brand's own garment image (an asset id, or an https URL fetched through the SSRF guard)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    asset_id: str | None = Field(None, pattern=ASSET_ID_PATTERN, description="A garment asset of this tenant.")
    url: str | None = Field(None, min_length=8, max_length=2048, description="An https URL of the garment image.")
    category: GarmentCategory
    strength: float = Field(0.8, ge=0.0, le=1.0, description="How strongly the garment image steers the picture.")

    @model_validator(mode="after")
    def _one_source(self) -> "GarmentRef":
        if (self.asset_id is None) == (self.url is None):
            raise ValueError("give exactly one of asset_id and url")
        return self


class PoseRef(BaseModel):
    """A pose: a built-in preset, OpenPose COCO-18 keypoints, or a pose image (asset or URL)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    preset: PosePreset | None = None
    keypoints: list[list[float] | None] | None = Field(
        None, min_length=18, max_length=18,
        description="18 OpenPose COCO points, each [x, y] in 0..1 of the image, or null when not visible.")
    asset_id: str | None = Field(None, pattern=ASSET_ID_PATTERN)
    url: str | None = Field(None, min_length=8, max_length=2048)
    scale: float = Field(1.0, ge=0.0, le=2.0, description="ControlNet conditioning scale.")

    @model_validator(mode="after")
    def _one_source(self) -> "PoseRef":
        given = [name for name in ("preset", "keypoints", "asset_id", "url") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of preset, keypoints, asset_id and url")
        return self


class GenerateRequest(BaseModel):
    """Body of `POST /v1/generate` and `POST /v1/generate/image`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    twin_id: str | None = Field(
        ...,
        pattern=TWIN_ID_PATTERN,
        description="The twin to render; null renders the base model without any twin (admin only).",
        examples=["demo-ava"],
    )
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT_CHARS, examples=["studio photo, linen summer dress"])
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    # At least 256 px: every image must carry a watermark that reads back, and below 256 px the
    # mark cannot be guaranteed on busy content (docs/BENCHMARKS.md). SDXL-class models are not
    # useful that small anyway.
    width: int = Field(1024, ge=256, le=2048, multiple_of=8)
    height: int = Field(1024, ge=256, le=2048, multiple_of=8)
    steps: int = Field(30, ge=1, le=100)
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Same seed, twin and parameters give the same image.")
    num_images: int = Field(1, ge=1, le=4)
    output_format: OutputFormat = "png"
    use: str = Field("ecommerce", pattern=r"^[a-z][a-z_]{0,31}$", description="Declared use, checked against consent.")
    territory: str | None = Field(
        None, pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country where the image will be used; required when the consent lists territories.",
    )
    garments: list[GarmentRef] = Field([], max_length=4, description="The brand's garments to put on the twin.")
    pose: PoseRef | None = None


class EditSource(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    generation_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="An earlier Atelier generation of this tenant.")
    asset_id: str | None = Field(None, pattern=ASSET_ID_PATTERN, description="An uploaded photo of the twin (kind source).")

    @model_validator(mode="after")
    def _one_source(self) -> "EditSource":
        if (self.generation_id is None) == (self.asset_id is None):
            raise ValueError("give exactly one of generation_id and asset_id")
        return self


class EditRequest(BaseModel):
    """Body of `POST /v1/edit`: repaint the mask's area of a photo of the twin (re-dress), or,
    with `invert_mask`, everything outside a person mask (a background swap)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN, description="The twin the source photo shows.")
    source: EditSource
    mask_asset_id: str = Field(..., pattern=ASSET_ID_PATTERN, description="A mask asset: white is repainted.")
    invert_mask: bool = Field(False, description="Repaint outside the mask instead (background swap).")
    prompt: str = Field(..., min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    garments: list[GarmentRef] = Field([], max_length=4)
    steps: int = Field(30, ge=1, le=100)
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    num_images: int = Field(1, ge=1, le=4)
    output_format: OutputFormat = "png"
    use: str = Field("ecommerce", pattern=r"^[a-z][a-z_]{0,31}$")
    territory: str | None = Field(None, pattern=r"^[A-Z]{2}$")


class AssetOut(BaseModel):
    asset_id: str = Field(..., description="The sha256 of the image bytes.")
    kind: AssetKind
    format: str
    media_type: str
    width: int
    height: int
    bytes: int
    created_at: str
    source_url: str | None = None


class ImageOut(BaseModel):
    index: int
    format: OutputFormat
    width: int
    height: int
    seed: int
    sha256: str
    watermark_id: str | None = None
    data_base64: str | None = None
    url: str | None = None


class Timings(BaseModel):
    """Milliseconds spent in each stage of one generation."""

    queue: float
    adapter: float
    # of `adapter`: waiting for a load that had not finished when the batch was ready to denoise
    adapter_wait: float | None = None
    encode: float
    denoise: float
    decode: float
    postprocess: float
    mark: float | None = None
    total: float


class GenerateResponse(BaseModel):
    generation_id: str
    twin_id: str | None
    seed: int
    images: list[ImageOut]
    timings_ms: Timings
