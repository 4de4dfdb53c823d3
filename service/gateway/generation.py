"""One guarded, audited generation: the path every image takes, from HTTP or from a job.

Owns: the order admit (key, scope, limits) -> consent and prompt policy -> one render call
to the renderer, each item sealed with its admission (tenant, twin, the whole request, and the
licence or paper consent that admitted it, which its images' manifests name: the renderer
renders nothing else), which cancels between denoising steps if the twin is revoked
meanwhile -> consent re-check before delivery, and the one audit record of each outcome,
written before the caller answers. Several admitted requests may share one render call (a job's items of
one shape, across up to ATELIER_SLOT_LANES twins; and synchronous requests that arrive within
ATELIER_COALESCE_MS, through `coalescer`), each keeping its own checks, record and outcome; an
admitted request's twin is hinted to a renderer for prefetch (`hints`). Must never parse HTTP
or talk to a client: callers pass in how to admit the caller and get a result or a typed
error per request. Never imports torch.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.admission_seal import InternalCredential
from service.audit.actions import audited
from service.audit.events import generation_event
from service.audit.recorder import Recorder
from service.errors import AtelierError, InvalidRequest, RemoteError, RendererUnavailable
from service.rendering import (RENDER_CALL_TIMEOUT_S, GenerationResult, RenderBatch, RenderClient, RenderEdit,
                               RenderItem, RenderLicence, result_of)
from service.schemas import MAX_SEED, GenerateRequest
from service.tenancy import Principal, Tenancy

if TYPE_CHECKING:
    from service.jobs.prefetch import PrefetchHints

log = logging.getLogger("atelier.generation")
Admit = Callable[[], AbstractContextManager[Principal]]
# Resolves a request's conditioning inputs for the caller (URLs fetched into assets, garment
# categories checked against consent); returns the request naming assets by id only.
Prepare = Callable[[Principal, GenerateRequest], GenerateRequest]
Keep = Callable[[Principal, GenerationResult, RenderEdit | None], None]  # the edit it was, if any
Progress = Callable[[int, int], None]  # (denoising steps done, steps in all), as the renderer reports them


@dataclass
class Pending:
    """A request on its way to the renderer, with the id and seed chosen for it here."""

    request: GenerateRequest
    admit: Admit
    route: str
    client_ip: str | None = None
    job: dict | None = None
    generation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seed: int = -1
    edit: RenderEdit | None = None
    review: bool = False  # set at admission: its garments need a person's review before delivery (a job holds it)

    def __post_init__(self) -> None:
        if self.seed < 0:
            self.seed = self.request.seed if self.request.seed is not None else secrets.randbelow(MAX_SEED + 1)


class GuardedGeneration:
    # (longest side, steps, images) a deployment allows, below the API's own bounds (config:
    # ATELIER_MAX_IMAGE_SIDE, _STEPS, _IMAGES); checked at admission, before any GPU work.
    bounds: tuple[int, int, int] | None = None
    # Synchronous requests' render calls go through it (service.jobs.coalescer), merged with
    # others arriving within ATELIER_COALESCE_MS; None: each call alone.
    coalescer: RenderClient | None = None
    hints: "PrefetchHints | None" = None  # prefetch hints to a renderer (service.jobs.prefetch)

    def __init__(self, renderer: RenderClient, tenancy: Tenancy, audit: Recorder, wait_s: float = 120.0,
                 prepare: Prepare | None = None, keep: Keep | None = None, credential: InternalCredential | None = None):
        self.renderer = renderer
        self.credential = credential  # seals each admitted item; renderers render no unsealed one
        self.tenancy = tenancy
        self.audit = audit
        self.wait_s = wait_s
        self.prepare = prepare or (lambda principal, request: request)
        self.keep = keep  # e.g. keep delivered images as this tenant's edit sources
        self.stopping = threading.Event()  # set at shutdown: waiting for a renderer ends at once
        self.base_model_id: str | None = None  # as the renderer last reported it

    def run(self, request: GenerateRequest, *, admit: Admit, route: str, client_ip: str | None,
            job: dict | None = None, edit: RenderEdit | None = None, progress: Progress | None = None) -> GenerationResult:
        """Render `request` for the caller `admit` yields; audited whatever the outcome. With
        `progress`, the renderer streams its denoising steps to it while it renders."""
        [outcome] = self.run_batch([Pending(request, admit, route, client_ip, job, edit=edit)], progress=progress,
                                   coalesce=True)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run_batch(self, pending: list[Pending], *, wait_s: float | None = None, stop: threading.Event | None = None,
                  retry_later: bool = False, progress: Progress | None = None,
                  coalesce: bool = False) -> list[GenerationResult | BaseException]:
        """Admit each request, render the admitted ones in one call, re-check and audit each.

        With `retry_later` (the job dispatcher), a renderer that stays unavailable raises
        RendererUnavailable for the whole batch, unrecorded: the items go back to the queue.
        With `coalesce` (a synchronous request), the call may be merged with others arriving
        at the same time (`coalescer`)."""
        if not self.audit.available():  # nothing could be recorded: no GPU work, 503 (items stay queued)
            raise self.audit.refused()
        outcomes: list[GenerationResult | BaseException | None] = [None] * len(pending)
        def event_of(p: Pending):
            edit = p.edit.model_dump(include={"source_asset_id", "mask_asset_id", "invert", "origin",
                                              "source_generation_id"}) if p.edit else None
            return functools.partial(generation_event, route=p.route, request=p.request, client_ip=p.client_ip,
                                     prompts=self.audit.prompts, job=p.job, edit=edit)

        events = [event_of(p) for p in pending]
        who: list[dict] = [{} for _ in pending]
        principals: dict[int, Principal] = {}
        licences: dict[int, RenderLicence | None] = {}
        with ExitStack() as stack:
            for i, p in enumerate(pending):
                try:
                    principal = stack.enter_context(p.admit())
                    who[i] = principal.audit_fields()
                    self._check_bounds(p.request)
                    grant = self.tenancy.gate.admit(principal, p.request)  # consent and prompt policy, before any GPU work
                    who[i]["consent"] = grant.audit_fields()
                    licences[i] = RenderLicence.of_grant(who[i]["consent"])  # named in every image's manifest
                    p.request = self.prepare(principal, p.request)  # conditioning inputs as this tenant's assets
                    # garment images classified (where a classifier runs); unverified ones held or refused
                    p.review = self.tenancy.gate.admit_garments(principal, grant, p.request, can_hold=p.job is not None)
                    events[i] = event_of(p)  # the record names the inputs' sha256s
                    principals[i] = principal
                except Exception as exc:
                    self._record(events[i](error=exc, base_model_id=self.base_model_id, **who[i]))
                    outcomes[i] = audited(exc)
            admitted = sorted(principals)
            if admitted:
                self.prefetch_hint([pending[i].request.twin_id for i in admitted])
                waited = self.wait_s if wait_s is None else wait_s
                batch = RenderBatch(items=[self._sealed(RenderItem(
                    generation_id=pending[i].generation_id, seed=pending[i].seed, request=pending[i].request,
                    edit=pending[i].edit, tenant_id=principals[i].tenant_id, licence=licences.get(i)), waited)
                    for i in admitted])
                client = self.coalescer if coalesce and self.coalescer is not None else self.renderer
                try:
                    stop = stop or self.stopping
                    with self.hints.calling() if self.hints is not None else nullcontext():
                        rendered = (client.render(batch, wait_s=waited, stop=stop) if progress is None else
                                    client.render_streaming(batch, wait_s=waited, stop=stop, on_progress=progress))
                except RendererUnavailable:
                    if retry_later:
                        raise
                    rendered = None
                    failure: BaseException = RendererUnavailable("no renderer could take the request in time; retry later")
                except Exception as exc:
                    rendered, failure = None, exc
                if rendered is None:
                    for i in admitted:
                        self._record(events[i](error=failure, base_model_id=self.base_model_id, **who[i]))
                        outcomes[i] = audited(failure)
                else:
                    self.base_model_id = rendered.base_model or self.base_model_id
                    for i, outcome in zip(admitted, rendered.outcomes):
                        if outcome.components:
                            who[i]["components"] = outcome.components
                        outcomes[i] = self._deliverable(pending[i], principals[i], outcome, events[i], who[i], rendered.worker)
        return outcomes  # type: ignore[return-value]

    def prefetch_hint(self, twin_ids: list[str | None]) -> None:
        """Hint these twins' adapters to a renderer while earlier work runs (never blocks or fails)."""
        if self.hints is not None:
            try:
                self.hints.hint(twin_ids)
            except Exception:  # an optimisation: never fail a request for it
                log.exception("prefetch hint failed")

    def _deliverable(self, p: Pending, principal: Principal, outcome, event, who: dict, worker: str):
        """The result if it may go out (consent still holds), audited either way."""
        result = None
        try:
            if outcome.error is not None:
                e = outcome.error
                raise RemoteError(e.status, e.code, e.message, e.field)
            result = result_of(outcome, worker)
            if p.request.twin_id is not None:  # revoked while rendering: made, recorded, never delivered
                self.tenancy.gate.decide(principal, p.request)
            marks = self._marks(principal, result)  # indexed with the record: no image goes out that verify cannot trace
        except Exception as exc:
            self._record(event(error=exc, result=result, base_model_id=self.base_model_id, **who))
            return audited(exc)
        self._record(event(result=result, base_model_id=self.base_model_id, **who), watermarks=marks)
        if self.keep is not None:
            try:
                self.keep(principal, result, p.edit)
            except Exception:  # keeping an edit source is a convenience: never fail a delivery for it
                log.exception("could not keep the generation as an edit source",
                              extra={"fields": {"generation_id": result.generation_id}})
        return result

    def _sealed(self, item: RenderItem, waited: float) -> RenderItem:
        """The item with this gateway's admission seal (service.admission_seal): it binds the
        generation id, tenant, twin and the whole request (every asset id) to this admission,
        and lasts while the call may wait for a renderer and then at its door."""
        if self.credential is None:
            return item  # renderers refuse it: only a gateway built without its credential sends one
        return self.credential.sealed(item, ttl_s=waited + RENDER_CALL_TIMEOUT_S)

    def _record(self, event: dict, watermarks=()) -> None:
        self.audit.record(event, watermarks)

    def _check_bounds(self, request) -> None:
        if self.bounds is None:
            return
        side, steps, images = self.bounds
        for name, value, limit in (("width", getattr(request, "width", 0), side), ("height", getattr(request, "height", 0), side),
                                   ("steps", request.steps, steps), ("num_images", request.num_images, images)):
            if value > limit:
                raise InvalidRequest(f"{name} is {value}; this deployment allows at most {limit}", field=name)

    def _marks(self, principal: Principal, result: GenerationResult) -> list[tuple]:
        """Each image's watermark index row (watermark id -> generation, tenant, twin), written
        with the generation's audit record; an id already indexed is refused here, before the
        record (ids are random 64-bit values: a repeat means a bug, not a collision to hide)."""
        from service.registry.errors import registry_call

        marks = [(image.watermark_id, result.generation_id, principal.tenant_id, result.twin_id, image.index)
                 for image in result.images if image.watermark_id]
        with registry_call():
            taken = self.tenancy.registry.twins.taken_watermarks([m[0] for m in marks]) if marks else set()
        if taken:
            raise AtelierError(f"watermark id {sorted(taken)[0]} is indexed already", code="marking_failed")
        return marks
