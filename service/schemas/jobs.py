"""Catalogue job bodies and answers: submit, review, status and paged results.

Owns: `JobItemSpec` (one catalogue item and its bounds), the submit and review bodies (a
rejection's reasons among them: bounded, no control characters), and the job summaries, pages
and images `/v1/jobs/*` answer. Objects marked `extra="allow"` may carry
more keys in later versions; clients must ignore keys they do not know. Must never import
bentoml, torch, or anything that does work.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from service.schemas.common import MAX_PROMPT_CHARS, MAX_SEED, TWIN_ID_PATTERN, ErrorDetail, OutputFormat
from service.schemas.generate import GarmentRef, PoseRef
from service.schemas.delivery import ItemDeliveryState

MAX_JOB_ITEMS = 500
MAX_TITLE_CHARS = 200
MAX_ALT_TEXT_CHARS = 250
MAX_REASON_CHARS = 500
SizeName = Literal["square_2048", "portrait_4_5", "square_1024"]
# Text a person reads back (a job's title, an image's alt text, a rejection reason): no control
# characters (C0, DEL, C1) and no bidirectional overrides, which could disguise what it says.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain_text(value: str) -> str:
    """`value` stripped; refused if blank or holding a control character or a bidi override."""
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in value):
        raise PydanticCustomError("control_characters", "must not contain control characters (line breaks, tabs, "
                                  "NUL, ...) or direction overrides")
    value = value.strip()
    if not value:
        raise PydanticCustomError("blank", "must not be blank")
    return value


Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS), AfterValidator(plain_text)]
AltText = Annotated[str, Field(min_length=1, max_length=MAX_ALT_TEXT_CHARS), AfterValidator(plain_text)]
Reason = Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS), AfterValidator(plain_text)]


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
    alt_text: AltText | None = Field(None, description="The image's alt text for the shop page (up to 250 "
                                     "characters); default: made from the twin, the garment and the scene.")

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

    title: Title | None = Field(None, description="A name for the job (up to 200 characters), shown in its status "
                                "and in Studio.", examples=["AW26 knitwear, product pages"])
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


class JobRejectBody(JobReviewBody):
    """Reject items awaiting review, optionally saying why: `reason` for every item of the call,
    `reasons` for some items (by index, as a string key); an item's own reason wins."""

    reason: Reason | None = Field(None, description="Why these items were rejected (up to 500 characters, no "
                                  "control characters).", examples=["the sleeve length is wrong"])
    reasons: dict[str, Reason] = Field({}, max_length=100, description="Why each item was rejected, by item index "
                                       "(a key of `items`, written as a string).", examples=[{"3": "logo cut off"}])

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, values: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        items = set(info.data.get("items") or ())
        for key in values:
            if not (key.isascii() and key.isdigit() and len(key) <= 3) or int(key) not in items:
                raise PydanticCustomError("unknown_item", "{key} is not an index of `items`", {"key": repr(key[:8])})
        return values

    def reason_of(self) -> dict[int, str]:
        """Each rejected item's reason (its own, else the call's), by index; items without one are absent."""
        return {index: self.reasons.get(str(index)) or self.reason for index in self.items
                if self.reasons.get(str(index)) or self.reason}


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
    title: str | None = Field(None, description="The job's title, when it was submitted with one.")
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
    status: str = Field(..., description="pending, running, awaiting_review, delivering (rendered; its S3 "
                        "delivery is being retried), done, rejected, failed or canceled.")
    error: ErrorDetail | None = None
    delivery: ItemDeliveryState | None = Field(None, description="Items whose S3 delivery failed at first: tries, "
                                                "next try and deadline.")
    generation_id: str | None = None
    twin_id: str | None = None
    metadata: dict[str, str] | None = None
    alt_text: str | None = None
    prompt: str | None = None
    seed: int | None = None
    images: list[JobImage] | None = None
    rendered_by: str | None = None
    withheld: str | None = Field(None, description="`revoked`: the twin was revoked since; no image is given.")
    rejection_reason: str | None = Field(None, description="A rejected item: why, when the reviewer said.")


class JobPage(JobSummary):
    """`GET /v1/jobs/get`: one page of a job's items; `next_offset` is null on the last page."""

    offset: int
    limit: int
    items: list[JobItemResult]
    next_offset: int | None


class JobDecision(JobSummary):
    """`POST /v1/jobs/approve` and `/v1/jobs/reject`: the job after the decision."""

    decided: list[int]
