"""What a renderer process holds and does: the engine, the adapter cache and slot, revocations.

Owns: loading the pipeline once (with the provenance marker, so no unmarked image ever
leaves), the revocation watcher that evicts revoked twins' adapters and cancels their
in-flight generations between denoising steps, and turning one `RenderBatch` of already
admitted requests into results: items that share a twin and a shape run as one pipeline
batch, and each item gets its images or the typed error that stopped it. Must never
authenticate, decide consent, write the audit log or answer a client: the gateway does.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import OrderedDict

from service.config import Settings
from service.engine import Engine
from service.errors import AtelierError
from service.provenance.marking import ProvenanceMarker
from service.registry import Registry, TwinInfo, open_registry
from service.rendering import RenderBatch, RenderBatchResult, RenderError, RenderItem, RenderOutcome, group_key, outcome_of
from service.tenancy.revocation import RevocationWatcher
from service.twins.metrics import PrometheusCacheEvents

log = logging.getLogger("atelier.renderer")


class RendererRuntime:
    def __init__(self, settings: Settings, registry: Registry, engine: Engine, watcher: RevocationWatcher):
        self.settings = settings
        self.registry = registry
        self.engine = engine
        self.watcher = watcher
        self.worker = f"{socket.gethostname()[:32]}-{os.getpid()}"

    @classmethod
    def from_settings(cls, settings: Settings) -> "RendererRuntime":
        registry = open_registry(settings.db_url, migrate=settings.db_migrate)
        marker = ProvenanceMarker.from_settings(settings)  # every image is watermarked and signed
        engine = Engine.from_settings(settings, registry, events=PrometheusCacheEvents(), marker=marker)
        runtime = cls(settings, registry, engine, None)  # type: ignore[arg-type]
        runtime.watcher = RevocationWatcher(registry, runtime._drop_revoked, settings.registry_poll_ms / 1000)
        runtime.watcher.start()
        log.info("ready", extra={"fields": {"base_model": engine.base_model_id, "device": str(engine.device),
                                            "backend": engine.backend.name, "startup_ms": engine.startup_ms,
                                            "worker": runtime.worker}})
        return runtime

    @property
    def ready(self) -> bool:
        return self.engine.ready

    def render(self, batch: RenderBatch) -> RenderBatchResult:
        """Render every item; an error fails only the items of its group."""
        groups: OrderedDict[tuple, list[RenderItem]] = OrderedDict()
        for item in batch.items:
            groups.setdefault(group_key(item.request), []).append(item)
        outcomes: dict[str, RenderOutcome] = {}
        for items in groups.values():
            twin_id = items[0].request.twin_id
            try:
                if twin_id is not None and twin_id in self.watcher.revoked:
                    self.watcher.guard(twin_id)()  # raises: revoked since the gateway admitted it
                results = self.engine.generate_batch([(i.request, i.seed, i.generation_id) for i in items],
                                                     between_steps=self.watcher.guard(twin_id))
                outcomes.update((r.generation_id, outcome_of(r)) for r in results)
            except Exception as exc:
                error = _render_error(exc)
                if error.status >= 500:
                    log.exception("render failed", extra={"fields": {"twin_id": twin_id, "items": len(items)}})
                for item in items:
                    outcomes[item.generation_id] = RenderOutcome(generation_id=item.generation_id, twin_id=twin_id,
                                                                 seed=item.seed, error=error)
        return RenderBatchResult(outcomes=[outcomes[i.generation_id] for i in batch.items], worker=self.worker,
                                 base_model=self.engine.base_model_id,
                                 batch_rows=max(sum(i.request.num_images for i in g) for g in groups.values()))

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


def _render_error(exc: BaseException) -> RenderError:
    if isinstance(exc, AtelierError):
        return RenderError(status=exc.status, code=exc.code, message=exc.message, field=exc.field)
    return RenderError(status=500, code="render_failed", message="the renderer failed on this request; it has been logged")
