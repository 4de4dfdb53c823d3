"""What a renderer process holds and does: the engine, the adapter cache and slot, revocations.

Owns: loading the pipeline once (with the provenance marker, so no unmarked image ever
leaves), the revocation watcher that evicts revoked twins' adapters and cancels their
in-flight generations between denoising steps (only the revoked twin's rows of a mixed
batch: the others finish), the same for the rows admitted under a licence the person ended
(stopped at the next step, or, when they share their twin's lane with another tenant's
rows, failed when the batch ends: never answered), and turning one `RenderBatch` of already admitted requests into
results: items that share a shape and their conditioning run as one pipeline batch across up
to ATELIER_SLOT_LANES twins (`service.renderer.batching`; one twin per batch under TensorRT),
and each item gets its images or the typed error that stopped it;
`render_stream` does the same while it reports each denoising step (a line per step, then
the result). Before any of that, every item of a call must carry a gateway's valid
admission seal (`service.admission_seal`), whichever way the call came in (HTTP or
in-process): one unsigned, forged, altered or expired item refuses the whole call. It turns
a request's conditioning (asset ids of the tenant, a pose preset or keypoints, an edit's
source and mask) into decoded images for the engine, reading assets from the store by id
with their sha256 checked: only the ids and the tenant a seal covers. Must never
authenticate a client, decide consent, fetch a URL, write the audit log or answer a client:
the gateway does.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator

from PIL import Image

from service.admission_seal import InternalCredential
from service.assets import AssetStore, open_asset_store
from service.config import Settings
from service.engine import Engine
from service.engine.stops import PartialBatch, StopTwins
from service.errors import AdmissionRefused, AtelierError
from service.imaging import SourceImage
from service.provenance.marking import ProvenanceMarker
from service.registry import Registry, TwinInfo, open_registry
from service.rendering import (
    RenderBatch,
    RenderBatchResult,
    RenderError,
    RenderItem,
    RenderOutcome,
    outcome_of,
    progress_line,
    result_line,
)
from service.renderer.batching import plan_batches
from service.tenancy.revocation import RevocationWatcher, licence_ended
from service.twins.metrics import PrometheusCacheEvents

log = logging.getLogger("atelier.renderer")


class RendererRuntime:
    def __init__(self, settings: Settings, registry: Registry, engine: Engine, watcher: RevocationWatcher,
                 assets: AssetStore | None = None):
        self.settings = settings
        self.registry = registry
        self.engine = engine
        self.watcher = watcher
        self.assets = assets or open_asset_store(settings)
        self.worker = f"{socket.gethostname()[:32]}-{os.getpid()}"
        self.credential = InternalCredential.from_settings(settings)  # checks the gateway's seals

    @classmethod
    def from_settings(cls, settings: Settings) -> "RendererRuntime":
        registry = open_registry(settings.db_url, migrate=settings.db_migrate)
        marker = ProvenanceMarker.from_settings(settings)  # every image is watermarked and signed
        engine = Engine.from_settings(settings, registry, events=PrometheusCacheEvents(), marker=marker)
        runtime = cls(settings, registry, engine, None)  # type: ignore[arg-type]
        runtime.watcher = RevocationWatcher(registry, runtime._drop_revoked, settings.registry_poll_ms / 1000)
        runtime.watcher.start()
        log.info("ready", extra={"fields": {"base_model": engine.base_model_id, "device": str(engine.device),
                                            "backend": engine.backend.name, "backend_status": engine.backend.status(),
                                            "startup_ms": engine.startup_ms, "worker": runtime.worker}})
        return runtime

    @property
    def ready(self) -> bool:
        return self.engine.ready

    def render(self, batch: RenderBatch, progress: Callable[[int, int], None] | None = None) -> RenderBatchResult:
        """Render every item; an error fails only the items of its group. `progress(step,
        steps)` runs after every denoising step (steps counted over the batch's groups).
        Raises AdmissionRefused, before any work, unless every item carries a valid seal."""
        self.admit(batch)
        return self._render(batch, progress)

    def admit(self, batch: RenderBatch) -> None:
        """Refuse the whole call (AdmissionRefused) unless each item is sealed by a gateway,
        over exactly this content, and unexpired: so it renders the twin, for the tenant and
        from the assets that gateway admitted, and nothing else."""
        try:
            self.credential.verify_all(batch.items)
        except AdmissionRefused as exc:
            log.warning("render call refused", extra={"fields": {"reason": exc.code, "detail": exc.message,
                                                                 "items": len(batch.items), "worker": self.worker}})
            raise

    def plan(self, batch: RenderBatch) -> list[list[RenderItem]]:
        """The call's pipeline batches (`service.renderer.batching`): items of one shape across
        up to ATELIER_SLOT_LANES twins on the slot's backends, one twin each under TensorRT."""
        backend, slot = self.engine.backend, self.engine.twins.slot
        lanes = slot.lanes if slot.mixed and not backend.handles_adapters else 1
        return plan_batches(batch.items, lanes=lanes,
                            cap_of=lambda r: backend.max_images(r.width, r.height, r.guidance_scale))

    def _render(self, batch: RenderBatch, progress: Callable[[int, int], None] | None = None) -> RenderBatchResult:
        batches = self.plan(batch)
        steps = StepCounter(progress, sum(items[0].request.steps for items in batches))
        outcomes: dict[str, RenderOutcome] = {}

        def failed(item: RenderItem, exc: BaseException) -> RenderOutcome:
            return RenderOutcome(generation_id=item.generation_id, twin_id=item.request.twin_id, seed=item.seed,
                                 error=_render_error(exc))

        for items in batches:
            for item in items:  # revoked since the gateway admitted them: those items fail, the others render
                refusal = self._refusal(item)
                if refusal is not None:
                    outcomes[item.generation_id] = failed(item, refusal)
            live = [i for i in items if i.generation_id not in outcomes]
            if not live:
                continue
            twins = list(dict.fromkeys(i.request.twin_id for i in live if i.request.twin_id is not None))
            try:
                conditioning, source = self.conditioning(live[0])
                results = self.engine.generate_batch([(i.request, i.seed, i.generation_id) for i in live],
                                                     between_steps=steps.after(self._guard(live)),
                                                     conditioning=conditioning, source=source,
                                                     licences={i.generation_id: i.licence.assertion()
                                                               for i in live if i.licence is not None})
                outcomes.update((r.generation_id, outcome_of(r)) for r in results)
            except PartialBatch as partial:  # some twins stopped (revoked meanwhile, or a failed load)
                for item in live:
                    outcome = partial.outcome(item.generation_id)
                    outcomes[item.generation_id] = (failed(item, outcome) if isinstance(outcome, BaseException)
                                                    else outcome_of(outcome))
            except Exception as exc:
                error = _render_error(exc)
                if error.status >= 500:
                    log.exception("render failed", extra={"fields": {"twins": twins, "items": len(live)}})
                for item in live:
                    outcomes[item.generation_id] = failed(item, exc)
            for item in live:  # a licence ended while its rows shared a twin's lane with others': never answered
                if self._licence_ended(item) and outcomes[item.generation_id].error is None:
                    outcomes[item.generation_id] = failed(item, licence_ended())
        return RenderBatchResult(outcomes=[outcomes[i.generation_id] for i in batch.items], worker=self.worker,
                                 base_model=self.engine.base_model_id,
                                 batch_rows=max(sum(i.request.num_images for i in b) for b in batches))

    def _revoked(self, twin_ids) -> dict[str, BaseException]:
        """The twins of `twin_ids` revoked now, each with the error its items fail with."""
        errors: dict[str, BaseException] = {}
        for twin_id in twin_ids:
            if twin_id in self.watcher.revoked:
                try:
                    self.watcher.guard(twin_id)()
                except Exception as exc:  # noqa: BLE001 - the guard's typed refusal (403 revoked)
                    errors[twin_id] = exc
        return errors

    def _refusal(self, item: RenderItem) -> BaseException | None:
        """Why `item` may no longer render: its twin revoked, or the licence it was admitted
        under ended by the person (None: it may)."""
        revoked = self._revoked([item.request.twin_id] if item.request.twin_id else [])
        if revoked:
            return revoked[item.request.twin_id]
        if self._licence_ended(item):
            return licence_ended()
        return None

    def _licence_ended(self, item: RenderItem) -> bool:
        """Whether the person ended the licence `item` was admitted under."""
        return item.licence is not None and self.watcher.licence_revoked(item.licence.licence_id)

    def _guard(self, items: list[RenderItem]) -> Callable[[], None] | None:
        """The between-steps check of a batch: `StopTwins` naming each twin revoked since it
        started, and each twin whose every row here is under a licence the person ended since
        (the engine stops only their rows, or the batch if that is all of it). Rows under an
        ended licence that share their twin's lane with another tenant's rows render on and
        are failed when the batch ends (`_render`), never answered."""
        twin_ids = list(dict.fromkeys(i.request.twin_id for i in items if i.request.twin_id is not None))
        if not twin_ids:
            return None

        def check() -> None:
            stopped = self._revoked(twin_ids)
            for twin_id in twin_ids:
                rows = [i for i in items if i.request.twin_id == twin_id]
                if twin_id not in stopped and all(self._licence_ended(i) for i in rows):
                    stopped[twin_id] = licence_ended()
            if stopped:
                raise StopTwins(stopped)

        return check

    def render_stream(self, batch: RenderBatch) -> Iterator[str]:
        """`render`, reporting as it goes: a progress line now and after every denoising step,
        then the result line (`service.rendering`'s stream format). If the caller stops reading
        (the generator is closed), the render stops at its next step. The seals are checked
        before the first line (AdmissionRefused)."""
        self.admit(batch)
        lines: queue.Queue = queue.Queue()
        gone = threading.Event()
        total = sum(items[0].request.steps for items in self.plan(batch))

        def report(step: int, steps: int) -> None:
            if gone.is_set():
                raise RenderAbandoned("the caller stopped reading the render's progress")
            lines.put(progress_line(step, steps))

        def work() -> None:
            try:
                lines.put(result_line(self._render(batch, progress=report)))
            except BaseException as exc:  # noqa: BLE001 - handed to the reading side
                lines.put(exc)
            finally:
                lines.put(None)

        threading.Thread(target=work, name="atelier-render-stream", daemon=True).start()
        try:
            yield progress_line(0, total)
            while (line := lines.get()) is not None:
                if isinstance(line, BaseException):
                    raise line
                yield line
        finally:
            gone.set()

    def conditioning(self, item: RenderItem):
        """The item's conditioning with decoded images (None for text only), and an edit's
        source as a SourceImage for the C2PA ingredient (a generation only when the gateway
        found it to be the same twin's)."""
        request = item.request
        if not request.garments and request.pose is None and item.edit is None:
            return None, None
        from service.conditioning import Conditioning, Edit, Garment, Pose, preset, render_pose, validate_keypoints

        def image(asset_id: str, mode: str = "RGB"):
            _, data = self.assets.read(item.tenant_id, asset_id)
            with Image.open(io.BytesIO(data)) as opened:
                return opened.convert(mode)

        garments = tuple(Garment(g.asset_id, (lambda a=g.asset_id: image(a)), g.category, g.strength)
                         for g in request.garments)
        pose = None
        if request.pose is not None:
            ref = request.pose
            if ref.asset_id is not None:
                pose = Pose(image(ref.asset_id).resize((request.width, request.height)), None, ref.scale)
            else:
                points = preset(ref.preset) if ref.preset else validate_keypoints(ref.keypoints)
                pose = Pose(render_pose(points, request.width, request.height), points, ref.scale)
        edit, source = None, None
        if item.edit is not None:
            info, data = self.assets.read(item.tenant_id, item.edit.source_asset_id)
            size = (request.width, request.height)
            with Image.open(io.BytesIO(data)) as opened:
                source_image = opened.convert("RGB").resize(size)
            edit = Edit(source_image, image(item.edit.mask_asset_id, "L").resize(size), invert=item.edit.invert)
            ours = item.edit.source_generation_id if item.edit.origin == "generation" else None
            if ours:
                title = f"generation {ours}"
            elif item.edit.source_generation_id:
                title = f"generation {item.edit.source_generation_id}, an edit of an uploaded photo"
            else:
                title = f"uploaded photo {info.asset_id[:16]}"
            source = SourceImage(data, info.format, title, ours)
        return Conditioning(garments=garments, pose=pose, edit=edit), source

    def cache_state(self) -> dict:
        """Every twin with the cache tiers holding its adapter here, and the cache's totals."""
        return {"twins": self.engine.twin_states(), "cache": self.engine.twins.cache.stats(), "worker": self.worker}

    def evict(self, twin_id: str) -> list[str]:
        return self.engine.evict(twin_id)

    def prefetch(self, twin_ids: list[str]) -> dict[str, str]:
        return self.engine.prefetch(twin_ids)

    def close(self) -> None:
        self.watcher.stop()

    def _drop_revoked(self, twin: TwinInfo) -> None:
        """A twin was revoked (anywhere): its adapter leaves every tier and the slot here."""
        evicted = self.engine.drop_adapter(twin.adapter_sha256)
        log.info("revocation applied", extra={"fields": {"twin_id": twin.id, "deleted": twin.deleted,
                                                         "evicted_from": evicted, "worker": self.worker}})


class RenderAbandoned(AtelierError):
    status = 409
    code = "render_abandoned"


class StepCounter:
    """Counts denoising steps over a batch's groups and reports them to `progress`."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def after(self, guard: Callable[[], None] | None) -> Callable[[], None] | None:
        """The engine's `between_steps` hook: the revocation guard, then one step reported."""
        if self.progress is None:
            return guard

        def step() -> None:
            try:
                if guard is not None:
                    guard()
            finally:  # a step that stopped some twins' rows (StopTwins) still ran, and is counted
                self.done += 1
                self.total = max(self.total, self.done)  # a scheduler may run a step more than asked
                self.progress(self.done, self.total)

        return step


def _render_error(exc: BaseException) -> RenderError:
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, AtelierError):
        return RenderError(status=exc.status, code=exc.code, message=exc.message, field=exc.field)
    if isinstance(exc, (OperationalError, InterfaceError)):  # the registry is down: retryable, not a bug
        return RenderError(status=503, code="registry_unavailable",
                           message="the registry database cannot be reached right now; retry shortly")
    return RenderError(status=500, code="render_failed", message="the renderer failed on this request; it has been logged")
