"""What the gateway holds: the registry, the audit log, tenancy, twins, jobs and a renderer client.

Owns: composing the gateway's capabilities from the settings once, starting the catalogue
dispatcher and webhook sender, and stopping them (leases given back) at shutdown. Routes
reach everything through one `GatewayCore`. Must never import torch, diffusers or bentoml:
the renderer is reached only through the `RenderClient` it is given.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from service.admission_seal import InternalCredential
from service.assets import AssetService
from service.assets.garment_classifier import load_garment_classifier
from service.assets.edit_source import EditSources
from service.assets.inputs import ConditioningInputs
from service.audit.recorder import Recorder
from service.audit.reports import Reports
from service.config import Settings
from service.gateway.trust import GatewayTrust
from service.gateway.generation import GuardedGeneration
from service.jobs.catalog import CatalogJobs
from service.jobs.coalescer import RenderCoalescer
from service.jobs.prefetch import PrefetchHints
from service.provenance.detect import AtelierSigner, Detector
from service.provenance.verifier import Verifier
from service.registry import Registry, open_registry
from service.rendering import RenderClient
from service.tenancy import Tenancy
from service.tenancy.licensing import Licensing
from service.twins import AdapterStore, TwinCatalog, open_adapter_store
from service.twins.views import TwinViews

log = logging.getLogger("atelier.gateway")


def watermark_lookup(registry: Registry):
    """Watermark id -> its generation, from the registry's watermark index (503 while unreachable)."""
    from service.registry.errors import registry_call

    def lookup(watermark_id: str):
        with registry_call():
            return registry.twins.find_watermark(watermark_id)

    return lookup


def edit_sources(settings: Settings, registry: Registry, assets: AssetService) -> EditSources:
    """What an edit's source is, through the watermark index, read as /v1/verify reads it."""
    from service.provenance.disclosure import identify
    from service.provenance.limits import VerifyLimits

    lookup = watermark_lookup(registry)
    limits = VerifyLimits.from_settings(settings)
    return EditSources(assets.store, lookup=lookup, upload_tenants=settings.edit_upload_tenants,
                       identify=lambda data: identify(data, lookup, max_pixels=settings.max_asset_pixels,
                                                      trust_anchors=settings.c2pa_trust_anchors, limits=limits))


@dataclass
class GatewayCore:
    settings: Settings
    registry: Registry
    audit: Recorder
    tenancy: Tenancy
    twins: TwinCatalog
    adapters: AdapterStore
    renderer: RenderClient
    generation: GuardedGeneration
    jobs: CatalogJobs
    assets: AssetService
    inputs: ConditioningInputs
    startup_ms: float = 0.0
    trust: "GatewayTrust | None" = None  # before-auth limits, compact refusals, verify bounds
    # The capabilities the routes and Studio share, each recording its own actions:
    twin_views: TwinViews | None = None  # the twin catalogue as brands, talent and operators read it
    verifier: Verifier | None = None  # /v1/verify and Studio's Verify page
    detector: Detector | None = None  # the public check: /v1/detect and Studio's Detect page (no key)
    reports: Reports | None = None  # usage and a generation's audit records
    licensing: Licensing | None = None  # brands' licence requests, the persons' signed decisions

    @classmethod
    def build(cls, settings: Settings, renderer: RenderClient) -> "GatewayCore":
        started = time.perf_counter()
        registry = open_registry(settings.db_url, migrate=settings.db_migrate)
        audit = Recorder.from_settings(settings, registry.db)
        # The gateway holds no adapters: revocations need no eviction here (the renderers
        # watch for them), and every request checks consent against the database's registry version.
        tenancy = Tenancy.build(registry, on_revoked=lambda twin: None, poll_s=settings.registry_poll_ms / 1000)
        assets = AssetService.from_settings(settings)
        classifier = load_garment_classifier(settings)  # None (the demo): logged; torch only when configured
        if classifier is not None:
            tenancy.gate.use_classifier(classifier, lambda tenant, asset_id: assets.store.read(tenant, asset_id)[1],
                                        threshold=settings.garment_classifier_threshold)
        inputs = ConditioningInputs(assets, keep_outputs=settings.keep_outputs,
                                    sources=edit_sources(settings, registry, assets))
        generation = GuardedGeneration(renderer, tenancy, audit, wait_s=settings.render_wait_s, prepare=inputs.prepare,
                                       keep=inputs.keep, credential=InternalCredential.from_settings(settings))
        # Synchronous requests arriving together share a render call; twins admitted while a call
        # runs are hinted to the renderer for prefetch (service.jobs.coalescer, .prefetch).
        generation.coalescer = RenderCoalescer.from_settings(settings, renderer)
        generation.hints = PrefetchHints(renderer)
        # Images of deliveries being retried wait in the shared object store when the assets
        # live in S3; a local asset directory is a pod's disk, so they wait in the registry then.
        jobs = CatalogJobs.build(settings, registry, generation,
                                 purge_assets=lambda age: assets.store.purge(age),
                                 staging_blobs=assets.store.blobs if settings.asset_store != "local" else None)
        core = cls(settings, registry, audit, tenancy, TwinCatalog(registry), open_adapter_store(settings), renderer,
                   generation, jobs, assets, inputs)
        core.trust = GatewayTrust.build(settings, audit, generation, registry=registry)
        tenancy.refused = core.trust.refused  # admission audits its refusals where the error handler would
        core.twin_views = TwinViews(registry, core.twins, lambda: renderer.cache_state(wait_s=settings.render_wait_s).model_dump(),
                                    audit.record)
        core.verifier = Verifier(watermark_lookup(registry), audit.record, max_bytes=settings.max_verify_bytes,
                                 max_pixels=settings.max_verify_pixels, trust_anchors=settings.c2pa_trust_anchors,
                                 limits=core.trust.verify_limits, slots=core.trust.verify_slots)
        core.detector = Detector(watermark_lookup(registry), admit=core.trust.admit_detect,
                                 refused=core.trust.refused_unauthenticated, slots=core.trust.detect_slots,
                                 max_bytes=settings.max_verify_bytes, max_pixels=settings.max_verify_pixels,
                                 trust_anchors=settings.c2pa_trust_anchors, limits=core.trust.verify_limits,
                                 signer=AtelierSigner.from_chain(settings.c2pa_chain))
        core.reports = Reports(audit, rates=registry.licences.rates)
        core.licensing = Licensing(registry, audit.record)
        if settings.jobs_worker:
            jobs.start()
        core.startup_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info("ready", extra={"fields": {"role": "gateway", "renderer": getattr(renderer, "url", "?"),
                                            "dispatch_window": settings.window, "startup_ms": core.startup_ms}})
        return core

    def close(self) -> None:
        """Stop dispatching (leases go back to the queue) and sending; seal the audit log."""
        self.generation.stopping.set()  # generations waiting for a renderer answer 503 now, not in 120 s
        if self.generation.hints is not None:
            self.generation.hints.close()
        self.jobs.stop()
        if self.trust is not None:
            self.trust.close()
        self.audit.close()
