"""What passes between the gateway and the renderer: admitted render requests and their results.

Owns: the internal wire models (`RenderBatch` in, `RenderBatchResult` out), the in-process
result types (`GenerationResult`, `GeneratedImage`), and the conversions between them. A
batch holds requests the gateway has already admitted (key, scope, limits, consent, prompt
policy); the renderer trusts that and never sees keys. Every image in a result is already
watermarked and signed. Must never import torch, bentoml, or anything that does work.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import MAX_SEED, GenerateRequest

MAX_BATCH_ITEMS = 16


@dataclass(frozen=True)
class GeneratedImage:
    index: int
    format: str
    width: int
    height: int
    seed: int
    data: bytes
    sha256: str
    watermark_id: str | None = None
    manifest_sha256: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    generation_id: str
    twin_id: str | None
    seed: int
    images: list[GeneratedImage]
    timings_ms: dict[str, float] = field(default_factory=dict)
    adapter_source: str | None = None  # the cache tier that served the twin's adapter
    adapter_sha256: str | None = None
    worker: str | None = None  # the renderer process that rendered it (host-pid)


class RenderItem(BaseModel):
    """One admitted request, with the generation id and seed the gateway chose for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generation_id: str = Field(..., pattern=r"^[0-9a-f]{32}$")
    seed: int = Field(..., ge=0, le=MAX_SEED)
    request: GenerateRequest


class RenderBatch(BaseModel):
    """Requests rendered together where they share a twin and a shape (one pipeline batch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[RenderItem] = Field(..., min_length=1, max_length=MAX_BATCH_ITEMS)


class RenderedImage(BaseModel):
    index: int
    format: str
    width: int
    height: int
    seed: int
    sha256: str
    watermark_id: str | None = None
    manifest_sha256: str | None = None
    data_base64: str


class RenderError(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None


class RenderOutcome(BaseModel):
    """The result of one item: its images, or the typed error that stopped it."""

    generation_id: str
    twin_id: str | None = None
    seed: int
    images: list[RenderedImage] = []
    timings_ms: dict[str, float] = {}
    adapter_source: str | None = None
    adapter_sha256: str | None = None
    error: RenderError | None = None


class RenderBatchResult(BaseModel):
    outcomes: list[RenderOutcome]
    worker: str = Field("", description="Which renderer process rendered the batch (host-pid).")
    base_model: str | None = Field(None, description="The base model's id and fingerprint, for the audit record.")
    batch_rows: int = Field(0, description="Pipeline rows of the largest group rendered together.")


def outcome_of(result: GenerationResult) -> RenderOutcome:
    return RenderOutcome(
        generation_id=result.generation_id, twin_id=result.twin_id, seed=result.seed,
        images=[RenderedImage(index=i.index, format=i.format, width=i.width, height=i.height, seed=i.seed,
                              sha256=i.sha256, watermark_id=i.watermark_id, manifest_sha256=i.manifest_sha256,
                              data_base64=base64.b64encode(i.data).decode("ascii")) for i in result.images],
        timings_ms=result.timings_ms, adapter_source=result.adapter_source, adapter_sha256=result.adapter_sha256,
    )


def result_of(outcome: RenderOutcome, worker: str | None = None) -> GenerationResult:
    return GenerationResult(
        generation_id=outcome.generation_id, twin_id=outcome.twin_id, seed=outcome.seed,
        images=[GeneratedImage(index=i.index, format=i.format, width=i.width, height=i.height, seed=i.seed,
                               data=base64.b64decode(i.data_base64), sha256=i.sha256, watermark_id=i.watermark_id,
                               manifest_sha256=i.manifest_sha256) for i in outcome.images],
        timings_ms=dict(outcome.timings_ms), adapter_source=outcome.adapter_source, adapter_sha256=outcome.adapter_sha256,
        worker=worker,
    )


def group_key(request: GenerateRequest) -> tuple:
    """Requests with equal keys can share one pipeline batch: same twin, size, steps, guidance."""
    return (request.twin_id, request.width, request.height, request.steps, request.guidance_scale)


class RenderClient(Protocol):
    """How the gateway reaches a renderer (`service.gateway.render_client` implements it)."""

    def render(self, batch: RenderBatch, *, wait_s: float, stop: threading.Event | None = None) -> RenderBatchResult: ...

    def call(self, name: str, payload: dict, *, wait_s: float) -> Any: ...


class Backoff:
    """Exponential delays with a cap: first_s, 2 x first_s, ... up to cap_s."""

    def __init__(self, first_s: float = 0.05, cap_s: float = 2.0):
        self.first_s, self.cap_s, self.attempt = first_s, cap_s, 0

    def next_delay(self) -> float:
        delay = min(self.cap_s, self.first_s * 2**self.attempt)
        self.attempt += 1
        return delay
