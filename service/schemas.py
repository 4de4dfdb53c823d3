"""Request and response models of the HTTP API (pydantic), their bounds, and the error body.

Owns: the shape of every JSON body the API accepts or returns, and the limits on each field.
Must never import bentoml, torch, or anything that does work: these are plain data models.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

TWIN_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**53 - 1  # the largest integer a JavaScript client can send exactly

OutputFormat = Literal["png", "jpeg", "webp"]
ASSET_ID_PATTERN = r"^[0-9a-f]{64}$"
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


class ErrorDetail(BaseModel):
    code: str = Field(..., examples=["invalid_field"])
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


# -- admin ---------------------------------------------------------------------------------


class TwinIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)


class PrefetchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_ids: list[str] = Field(..., min_length=1, max_length=100)


class TwinState(BaseModel):
    """A twin as the admin routes show it: one representation for register, list and revoke."""

    id: str
    display_name: str
    adapter_key: str = Field(..., description="The adapter file's key in the adapter store.")
    adapter_sha256: str = Field(..., description="The sha256 of the adapter's bytes (one likeness, one twin).")
    rank: int | None
    revoked_at: str | None = Field(None, description="When the twin was revoked (ISO 8601); null while it may serve.")
    deleted: bool = Field(False, description="Revoked with `delete: true`: its adapter bytes left the store.")
    tiers: list[str] | None = Field(None, description="Cache tiers holding the adapter on the renderer worker asked "
                                                      "(device, host, disk); null unless asked for.")
    in_slot: bool | None = Field(None, description="The adapter is the one in that worker's slot; null unless asked for.")


class TwinListResponse(BaseModel):
    twins: list[TwinState]
    cache: dict


class RegisterByKeyBody(BaseModel):
    """`POST /v1/admin/twins` as JSON: a twin from an adapter already in the store."""

    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = ""
    display_name: str = ""
    adapter_key: str = ""


class RegisterResponse(BaseModel):
    twin: TwinState
    created: bool
    replaced_sha256: str | None = None


class EvictResponse(BaseModel):
    twin_id: str
    evicted_from: list[str]


class PrefetchResponse(BaseModel):
    results: dict[str, str]


# -- admin: tenants, keys, consent ------------------------------------------------------------

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
Scope = Literal["generate", "verify", "admin", "talent"]


class TenantCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN, examples=["maison-lumen"])
    name: str = Field(..., min_length=1, max_length=200)


class TenantDisableBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    disabled: bool = True


class KeyCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    scopes: list[Scope] = Field(..., min_length=1, max_length=4)
    name: str = Field("", max_length=200)
    twin_ids: list[str] | None = Field(None, min_length=1, max_length=32,
                                       description="A `talent` key's twins (one person's); only talent keys take them.")
    requests_per_minute: int = Field(60, ge=1, le=100_000)
    max_concurrent_jobs: int = Field(4, ge=1, le=1000)


class KeyListBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str | None = Field(None, pattern=TENANT_ID_PATTERN)


class KeyIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    key_id: str = Field(..., pattern=r"^[0-9a-f]{12}$")


class TwinRevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)
    delete: bool = Field(False, description="Also delete the adapter file from the store.")


_LABEL = (r"^[a-z][a-z_]{0,31}$", "a lowercase label")
_CONSENT_ITEMS = {
    "tenants": (TENANT_ID_PATTERN, "a tenant id"),
    "uses": _LABEL,
    "excluded_categories": _LABEL,
    "included_categories": _LABEL,
    "territories": (r"^[A-Z]{2}$", "an ISO 3166-1 alpha-2 code"),
}


class ConsentBody(BaseModel):
    """A new consent version for a twin; it is signed (immutable) when recorded."""

    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)
    tenants: list[str] = Field(..., min_length=1, max_length=1000)
    uses: list[str] = Field(..., min_length=1, max_length=32, examples=[["ecommerce", "lookbook"]])
    territories: list[str] = Field([], max_length=250, description="ISO 3166-1 alpha-2 codes; empty means worldwide.")
    # Not strict: JSON carries datetimes as ISO 8601 strings (checked for a time zone).
    valid_from: AwareDatetime | None = Field(None, description="Default: now.", strict=False)
    valid_until: AwareDatetime | None = Field(None, strict=False)
    pay_rate_ref: str | None = Field(None, max_length=200)
    excluded_categories: list[str] = Field([], max_length=32)
    included_categories: list[str] = Field([], max_length=32)
    deny_terms: list[str] = Field([], max_length=500)
    review_unverified_garments: bool = Field(
        False, description="Hold catalogue items whose garment images cannot be verified (no garment classifier "
                           "runs) for a person's review before delivery; synchronous generations and edits with "
                           "such garments are refused (403 garment_review_required).")
    recorded_by: str = Field(..., min_length=1, max_length=200)

    @field_validator("tenants", "uses", "excluded_categories", "included_categories", "territories")
    @classmethod
    def _items(cls, values: list[str], info: ValidationInfo) -> list[str]:
        pattern, what = _CONSENT_ITEMS[info.field_name]
        for value in values:
            if not re.fullmatch(pattern, value):
                raise ValueError(f"{value!r} is not {what}")
        return values

    @field_validator("deny_terms")
    @classmethod
    def _terms(cls, values: list[str]) -> list[str]:
        if any(not v.strip() or len(v) > 100 for v in values):
            raise ValueError("deny terms are 1-100 characters each")
        return values


# -- catalogue jobs ----------------------------------------------------------------------------

MAX_JOB_ITEMS = 500
SizeName = Literal["square_2048", "portrait_4_5", "square_1024"]


class JobItemSpec(BaseModel):
    """One catalogue item: a twin wearing a garment in a scene, `count` images of it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)
    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    garment_description: str | None = Field(None, min_length=1, max_length=500, examples=["a red wool coat"])
    scene: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["studio_white"])
    sku: str | None = Field(None, min_length=1, max_length=100)
    metadata: dict[str, str] = Field({}, max_length=20, description="Passed through to results and sidecars.")
    size: SizeName | None = Field(None, description="A named size; or give width and height.")
    width: int | None = Field(None, ge=256, le=2048, multiple_of=8)
    height: int | None = Field(None, ge=256, le=2048, multiple_of=8)
    steps: int = Field(30, ge=1, le=100)
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    count: int = Field(1, ge=1, le=4)
    output_format: OutputFormat = "png"
    use: str = Field("ecommerce", pattern=r"^[a-z][a-z_]{0,31}$")
    territory: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    garments: list[GarmentRef] = Field([], max_length=4, description="Garment images (asset ids or https URLs).")
    pose: PoseRef | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, values: dict[str, str]) -> dict[str, str]:
        if any(len(k) > 64 or len(v) > 500 for k, v in values.items()):
            raise ValueError("metadata keys are up to 64 characters, values up to 500")
        return values

    @model_validator(mode="after")
    def _one_size(self) -> "JobItemSpec":
        if self.size is not None and (self.width is not None or self.height is not None):
            raise ValueError("give a named size or width and height, not both")
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height")
        if not (self.prompt or self.garment_description or self.scene):
            raise ValueError("an item needs a prompt, a garment_description or a scene")
        return self


class JobSubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[JobItemSpec] = Field(..., min_length=1, max_length=MAX_JOB_ITEMS)
    priority: int = Field(5, ge=0, le=9, description="Higher runs first; equal priorities run oldest first.")
    webhook_per_item: bool = Field(False, description="Also post a job.item.completed event per item.")
    review: bool = Field(False, description="Hold each item's images until it is approved or rejected (Studio, or "
                                            "POST /v1/jobs/approve and /v1/jobs/reject); only approved images are "
                                            "delivered and announced in the webhook.")


class JobReviewBody(BaseModel):
    """Approve or reject items of a job submitted with `review: true`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    job_id: str = Field(..., pattern=r"^[0-9a-f]{32}$")
    items: list[int] = Field(..., min_length=1, max_length=100, description="Item indexes, each awaiting review.")

    @field_validator("items")
    @classmethod
    def _indexes(cls, values: list[int]) -> list[int]:
        if any(v < 0 or v >= MAX_JOB_ITEMS for v in values) or len(set(values)) != len(values):
            raise ValueError(f"item indexes are distinct, 0-{MAX_JOB_ITEMS - 1}")
        return values


class TenantDeliveryBody(BaseModel):
    """Where a tenant's job images go and where its job events are posted."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    output_target: str | None = Field(None, max_length=1024, examples=["inline", "s3://brand-bucket/atelier"])
    url_expiry_s: int | None = Field(None, ge=60, le=7 * 24 * 3600, description="Presigned URL lifetime.")
    webhook_url: str | None = Field(None, max_length=2048, description="https URL; empty string removes it.")
    rotate_webhook_secret: bool = Field(False, description="Mint a new signing secret (shown once).")


class PresetBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]{0,63}$")
    prompt: str = Field(..., min_length=1, max_length=500)
    negative_prompt: str | None = Field(None, max_length=500)


class DeliveryIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    delivery_id: str = Field(..., pattern=r"^msg_[0-9a-f]{32}$")


# -- responses (each /v1 operation answers one of these; docs.json names them) --------------
# Timestamps are ISO 8601 strings with a time zone. Objects marked `extra="allow"` may carry
# more keys in later versions; clients must ignore keys they do not know.


class JobSummary(BaseModel):
    """A catalogue job's state and counts (`GET /v1/jobs/status`, and the head of every job answer)."""

    job_id: str
    task_id: str = Field(..., description="The same id (BentoML's task naming).")
    status: str = Field(..., description="queued, running, completed, failed or canceled.")
    priority: int
    items_total: int
    items_done: int
    items_failed: int
    output: Literal["inline", "s3"]
    cancel_requested: bool
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    review: bool = Field(False, description="Present (true) on jobs submitted with `review: true`.")
    items_rejected: int | None = Field(None, description="Review jobs only.")
    items_awaiting_review: int | None = Field(None, description="Review jobs only.")


class JobAccepted(BaseModel):
    """`POST /v1/jobs/submit` (202): the new job and where to poll it."""

    job_id: str
    task_id: str
    status: str
    items_total: int
    status_url: str
    result_url: str


class JobList(BaseModel):
    jobs: list[JobSummary]


class JobImage(BaseModel):
    """One image of a job item: its URL (presigned S3, or `/v1/jobs/image` for inline delivery)."""

    model_config = ConfigDict(extra="allow")

    n: int
    format: OutputFormat
    width: int
    height: int
    seed: int
    sha256: str
    watermark_id: str | None = None
    url: str | None = None
    sidecar_url: str | None = Field(None, description="S3 delivery: the sidecar JSON's presigned URL.")
    key: str | None = Field(None, description="S3 delivery: the image's object key.")
    sidecar_key: str | None = None


class JobItemResult(BaseModel):
    """One item of a job page: its state, and once rendered its generation and images."""

    model_config = ConfigDict(extra="allow")

    index: int
    sku: str | None = None
    status: str = Field(..., description="pending, running, awaiting_review, done, rejected, failed or canceled.")
    error: ErrorDetail | None = None
    generation_id: str | None = None
    twin_id: str | None = None
    metadata: dict[str, str] | None = None
    alt_text: str | None = None
    prompt: str | None = None
    seed: int | None = None
    images: list[JobImage] | None = None
    rendered_by: str | None = None
    withheld: str | None = Field(None, description="`revoked`: the twin was revoked since; no image is given.")


class JobPage(JobSummary):
    """`GET /v1/jobs/get`: one page of a job's items; `next_offset` is null on the last page."""

    offset: int
    limit: int
    items: list[JobItemResult]
    next_offset: int | None


class JobDecision(JobSummary):
    """`POST /v1/jobs/approve` and `/v1/jobs/reject`: the job after the decision."""

    decided: list[int]


class ConsentTerms(BaseModel):
    state: Literal["active", "not_yet_valid", "expired"]
    version: int
    uses: list[str]
    territories: list[str]
    valid_from: str
    valid_until: str | None
    excluded_categories: list[str]
    included_categories: list[str]
    review_unverified_garments: bool = False


class TenantTwin(BaseModel):
    id: str
    display_name: str
    consent: ConsentTerms


class TenantTwinList(BaseModel):
    """`GET /v1/twins`: the twins this tenant may generate, with the consent terms of each."""

    tenant_id: str
    twins: list[TenantTwin]


class WatermarkReport(BaseModel):
    found: bool
    watermark_id: str | None
    bit_errors_corrected: int | None


class C2paReport(BaseModel):
    state: str = Field(..., description="The C2PA manifest's validation state (Trusted, Valid, Invalid, none).")
    reasons: list[str]


class VerifyAudit(BaseModel):
    generation_id: str
    tenant: str
    twin_id: str | None
    image_index: int
    ts: str
    outcome: str


class VerifyResponse(BaseModel):
    """`POST /v1/verify`: what the image carries, and whether (and what) this service made it."""

    format: str
    width: int
    height: int
    watermark: WatermarkReport
    c2pa: C2paReport
    generation_id: str | None
    digital_source_type: str | None
    audit: VerifyAudit | None = Field(None, description="The generation's summary: for its own tenant and admins.")
    made_by_this_service: bool
    found_by: Literal["watermark", "manifest"] | None


class UsageRow(BaseModel):
    day: str = Field(..., description="YYYY-MM-DD, or YYYY-MM with `period=month`.")
    tenant: str
    twin_id: str | None
    generations: int
    images: int


class UsageReport(BaseModel):
    rows: list[UsageRow]


class Tenant(BaseModel):
    id: str
    name: str
    disabled: bool
    created_at: str


class TenantAnswer(BaseModel):
    tenant: Tenant


class TenantList(BaseModel):
    tenants: list[Tenant]


class ApiKey(BaseModel):
    """An API key as operators see it: never its secret."""

    key_id: str
    tenant_id: str
    name: str
    scopes: list[str]
    requests_per_minute: int
    max_concurrent_jobs: int
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    twin_ids: list[str] | None = None


class KeyCreated(BaseModel):
    key: ApiKey
    token: str = Field(..., description="The key's secret: shown once, never stored in clear.")
    note: str


class KeyList(BaseModel):
    keys: list[ApiKey]


class KeyRevoked(BaseModel):
    key_id: str
    revoked: bool
    already_revoked: bool


class ConsentRecordOut(BaseModel):
    id: int
    twin_id: str
    version: int
    tenants: list[str]
    uses: list[str]
    territories: list[str]
    valid_from: str
    valid_until: str | None
    pay_rate_ref: str | None
    excluded_categories: list[str]
    included_categories: list[str]
    deny_terms: list[str]
    recorded_by: str
    signed_at: str | None
    review_unverified_garments: bool = False


class ConsentAnswer(BaseModel):
    consent: ConsentRecordOut


class ConsentHistory(BaseModel):
    twin_id: str
    versions: list[ConsentRecordOut]


class TwinRevokeResponse(BaseModel):
    twin: TwinState


class DeliverySettings(BaseModel):
    tenant_id: str
    output_target: str
    url_expiry_s: int
    webhook_url: str | None
    has_webhook_secret: bool


class DeliveryAnswer(BaseModel):
    delivery: DeliverySettings
    webhook_secret: str | None = Field(None, description="A new signing secret: present only when one was minted.")
    note: str | None = None


class Preset(BaseModel):
    prompt: str
    negative_prompt: str | None
    builtin: bool


class PresetList(BaseModel):
    tenant_id: str
    presets: dict[str, Preset]


class WebhookDelivery(BaseModel):
    """One webhook event's delivery: its payload, attempts and log."""

    id: str
    tenant_id: str
    job_id: str | None
    event_type: str
    url: str
    payload: dict
    status: str
    attempts: int
    next_attempt_at: str
    last_status_code: int | None
    last_error: str | None
    log: list[dict]
    created_at: str
    delivered_at: str | None


class WebhookDeliveryList(BaseModel):
    deliveries: list[WebhookDelivery]


class WebhookDeliveryAnswer(BaseModel):
    delivery: WebhookDelivery


class AuditRecords(BaseModel):
    """A generation's audit records in sequence order (each a JSON object with its chain hash)."""

    generation_id: str
    records: list[dict]
