"""What passes between the gateway and the renderer: admitted render requests and their results.

Owns: the internal wire models (`RenderBatch` in, `RenderBatchResult` out), the in-process
result types (`GenerationResult`, `GeneratedImage`), and the conversions between them; the
typed answers of the renderer's cache calls (`CacheState`, `Evicted`, `Prefetched`); and the
`RenderClient` interface the gateway calls a renderer through. A batch holds requests the
gateway has already admitted (key, scope, limits, consent, prompt policy) and sealed one by
one; the renderer checks the seals and never sees keys. Every image in a result is already
watermarked and signed. Must never import torch, bentoml, or anything that does work.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.errors import AtelierError
from service.schemas import MAX_SEED, GenerateRequest

MAX_BATCH_ITEMS = 16
# The longest a render call may wait at a renderer's door, e.g. in the platform's queue while a
# replica starts from zero: the gateway's client timeout (the renderer's own traffic timeout of
# 600 s, plus a minute). An admission seal outlives the gateway's wait for a renderer by this.
RENDER_CALL_TIMEOUT_S = 660.0


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
    components: dict[str, str] = field(default_factory=dict)  # conditioning model -> fingerprint


class RenderEdit(BaseModel):
    """An edit: repaint the mask's white area of the source (or, inverted, everything else)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_asset_id: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    mask_asset_id: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    invert: bool = False
    source_generation_id: str | None = None  # named in the C2PA manifest's ingredient when known
    # "generation": the source is an Atelier generation of the same twin and tenant (checked by
    # the gateway); "upload": an uploaded photo, or an edit of one, whose ingredient the manifest
    # marks as not an Atelier generation. The default claims nothing.
    origin: Literal["generation", "upload"] = "upload"


class RenderLicence(BaseModel):
    """What licensed an admitted request, as its images' C2PA manifests name it (the
    `com.atelier.licence` assertion, `service.provenance.c2pa`): a licence the person signed
    (`signed`: its id and the sha256 of its accepted terms) or an operator's paper consent
    record (`paper`: its id and version). Opaque ids only: never a name or any personal data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    basis: Literal["signed", "paper"]
    licence_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    licence_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    consent_id: int | None = Field(None, ge=0)
    consent_version: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_form(self) -> "RenderLicence":
        signed = (self.licence_id, self.licence_sha256)
        paper = (self.consent_id, self.consent_version)
        if self.basis == "signed" and (None in signed or paper != (None, None)):
            raise ValueError("a signed licence names licence_id and licence_sha256, and nothing else")
        if self.basis == "paper" and (None in paper or signed != (None, None)):
            raise ValueError("a paper consent names consent_id and consent_version, and nothing else")
        return self

    @classmethod
    def of_grant(cls, fields: dict | None) -> "RenderLicence | None":
        """From a consent grant's audit fields (`Grant.audit_fields()`); None for the base model."""
        if not fields:
            return None
        if fields.get("basis") == "signed":
            return cls(basis="signed", licence_id=fields["licence_id"], licence_sha256=fields["licence_sha256"])
        return cls(basis="paper", consent_id=fields["consent_id"], consent_version=fields["version"])

    def assertion(self) -> dict:
        """The manifest assertion's data: the basis and its two ids."""
        return self.model_dump(exclude_none=True)


class RenderItem(BaseModel):
    """One admitted request, with the generation id and seed the gateway chose for it. Its
    conditioning names assets by id only (URLs were fetched by the gateway); `tenant_id`
    says whose assets they are; `licence` what licensed it (None for the base model), named in
    every image's manifest. `seal` is the gateway's admission seal over all of it
    (`service.admission_seal`): the renderer renders no item without a valid one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generation_id: str = Field(..., pattern=r"^[0-9a-f]{32}$")
    seed: int = Field(..., ge=0, le=MAX_SEED)
    request: GenerateRequest
    tenant_id: str | None = None
    edit: RenderEdit | None = None
    licence: RenderLicence | None = None
    seal: str | None = Field(None, max_length=64)


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
    components: dict[str, str] = {}
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
        components=result.components,
    )


def result_of(outcome: RenderOutcome, worker: str | None = None) -> GenerationResult:
    return GenerationResult(
        generation_id=outcome.generation_id, twin_id=outcome.twin_id, seed=outcome.seed,
        images=[GeneratedImage(index=i.index, format=i.format, width=i.width, height=i.height, seed=i.seed,
                               data=base64.b64decode(i.data_base64), sha256=i.sha256, watermark_id=i.watermark_id,
                               manifest_sha256=i.manifest_sha256) for i in outcome.images],
        timings_ms=dict(outcome.timings_ms), adapter_source=outcome.adapter_source, adapter_sha256=outcome.adapter_sha256,
        worker=worker, components=dict(outcome.components),
    )


def group_key(request: GenerateRequest, edit: "RenderEdit | None" = None) -> tuple:
    """Requests with equal keys can share one pipeline batch: same twin, size, steps, guidance
    and conditioning (garments, pose, edit), so one pipeline call renders them all."""
    conditioning = (request.model_dump_json(include={"garments", "pose"}), edit.model_dump_json() if edit else None)
    return (request.twin_id, request.width, request.height, request.steps, request.guidance_scale, conditioning)


# -- the renderer's cache calls (the admin routes: list with cache state, evict, prefetch) -----
# On the wire the renderer answers `cache_state` with a JSON object, `evict` with the list of
# places the adapter left and `prefetch` with a map of twin id to tier; clients return these
# models. An answer of another shape is the renderer's fault: `answer_of` raises a 500.


class TwinCacheState(BaseModel):
    """One twin on the renderer worker that answered: the cache tiers holding its adapter
    (device, host, disk) and whether its adapter is the one in the slot."""

    id: str
    tiers: list[str]
    in_slot: bool


class CacheState(BaseModel):
    """`cache_state`: every twin on one renderer worker, the cache's totals (per tier: entries,
    bytes and budget; `loads`: adapter loads per source) and which worker answered."""

    twins: list[TwinCacheState]
    cache: dict[str, dict[str, int]]
    worker: str | None = None

    def of(self, twin_id: str) -> TwinCacheState | None:
        return next((twin for twin in self.twins if twin.id == twin_id), None)


class Evicted(BaseModel):
    """`evict`: where the twin's adapter was dropped from (cache tiers, and `slot`)."""

    twin_id: str
    evicted_from: list[str]


class Prefetched(BaseModel):
    """`prefetch`: per twin id, the tier its adapter was served from, or `error:<code>`."""

    results: dict[str, str]


def answer_of(call: str, build: Callable[[], BaseModel]):
    """The typed answer `build()` makes of a renderer's reply to `call`; a reply of another shape
    is an AtelierError (500), never passed on."""
    try:
        return build()
    except ValidationError as exc:
        raise AtelierError(f"the renderer's answer to {call} is malformed ({exc.error_count()} "
                           "problem(s))") from None


def cache_state_of(raw: object) -> CacheState:
    return answer_of("cache_state", lambda: CacheState.model_validate(raw))


def evicted_of(twin_id: str, raw: object) -> Evicted:
    return answer_of("evict", lambda: Evicted.model_validate({"twin_id": twin_id, "evicted_from": raw}))


def prefetched_of(raw: object) -> Prefetched:
    return answer_of("prefetch", lambda: Prefetched.model_validate({"results": raw}))


class RenderClient(Protocol):
    """How the gateway reaches a renderer (`service.gateway.render_client` implements it)."""

    def render(self, batch: RenderBatch, *, wait_s: float, stop: threading.Event | None = None) -> RenderBatchResult: ...

    def render_streaming(self, batch: RenderBatch, *, wait_s: float, on_progress: Callable[[int, int], None],
                         stop: threading.Event | None = None) -> RenderBatchResult: ...

    def cache_state(self, *, wait_s: float) -> CacheState:
        """Every twin with the cache tiers holding its adapter on the worker that answers."""
        ...

    def evict(self, twin_id: str, *, wait_s: float) -> Evicted:
        """Drop a twin's adapter from every tier and the slot of the worker that answers."""
        ...

    def prefetch(self, twin_ids: list[str], *, wait_s: float) -> Prefetched:
        """Warm twins' adapters into the device tier of the worker that answers."""
        ...


class Backoff:
    """Exponential delays with a cap: first_s, 2 x first_s, ... up to cap_s."""

    def __init__(self, first_s: float = 0.05, cap_s: float = 2.0):
        self.first_s, self.cap_s, self.attempt = first_s, cap_s, 0

    def next_delay(self) -> float:
        delay = min(self.cap_s, self.first_s * 2**self.attempt)
        self.attempt += 1
        return delay


# -- the streamed render call: one JSON object per line ----------------------------------------
# `{"progress": {"step": k, "steps": n}}` after each denoising step of the batch, then exactly
# one `{"result": RenderBatchResult}`. A stream that ends without its result line failed.


def progress_line(step: int, steps: int) -> str:
    return json.dumps({"progress": {"step": step, "steps": steps}}) + "\n"


def result_line(result: RenderBatchResult) -> str:
    return '{"result": ' + result.model_dump_json() + "}\n"


def read_stream(lines, on_progress: Callable[[int, int], None]) -> RenderBatchResult | None:
    """Feed progress lines to `on_progress` and return the result (None if the stream ended without one)."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        message = json.loads(line)
        if "progress" in message:
            on_progress(int(message["progress"]["step"]), int(message["progress"]["steps"]))
        elif "result" in message:
            return RenderBatchResult.model_validate(message["result"])
    return None
