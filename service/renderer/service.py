"""The Renderer service (GPU): one internal API over the engine, and no public route.

Owns: the BentoML declaration of the renderer (one GPU, scale to zero, concurrency with the
external queue), its door (every route but the probes needs the gateways' internal
credential, and render calls the gateway's admission seal on each item:
`service.renderer.internal_auth`) and loading its runtime once per worker. Takes batches of
requests the gateway has already admitted; every image it returns is watermarked and signed. Must never
hold logic (that is `service.renderer.runtime`) and never import torch at module level, so
the gateway can depend on this class without loading torch.
"""

from __future__ import annotations

from collections.abc import Generator

import bentoml
from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware  # private: its skip list

from service import __version__
from service.config import get_settings
from service.logs import configure_logging
from service.admission_seal import InternalCredential
from service.renderer.accept_gate import AcceptGate, SlotMiddleware
from service.renderer.internal_auth import InternalAuth
from service.rendering import RenderBatch, RenderBatchResult

_settings = get_settings()


@bentoml.service(
    name="atelier-renderer",
    # One GPU per replica, owned by one worker: the pipeline, the adapter slot and the caches
    # are per process. ATELIER_RENDERER_WORKERS > 1 is for CPU tests and benches only.
    resources={"gpu": 1, "gpu_type": "nvidia-h100-80gb"},
    workers=_settings.renderer_workers,
    threads=_settings.renderer_concurrency + 2,
    traffic={
        # The slowest allowed batch: 4 images of 2048x2048 at 100 steps is about 100 s on an
        # H100 and about 6x that on an L4-class GPU: 600 s covers both.
        "timeout": 600,
        # Calls beyond this per worker get a 429 at once, and the gateway retries them on a
        # free worker or replica; queueing behind a busy GPU would hide the load.
        "max_concurrency": _settings.renderer_concurrency,
        # The platform scales renderer replicas on in-flight calls, i.e. the gateway's window.
        "concurrency": _settings.renderer_concurrency,
        # Calls wait in the platform's queue while replicas start from zero.
        "external_queue": True,
    },
    labels={"owner": "atelier", "version": __version__, "role": "renderer"},
)
class Renderer:
    """The GPU side: a loaded pipeline that renders admitted batches."""

    def __init__(self) -> None:
        from service.renderer.runtime import RendererRuntime  # torch loads here, in the renderer's process

        settings = get_settings()
        configure_logging(settings.log_level)
        self.runtime = RendererRuntime.from_settings(settings)
        # Where no platform queue admits calls (several workers on one socket, or a CPU renderer),
        # a busy worker stops accepting and calls wait in the listen backlog (service.renderer.accept_gate).
        self.gate = AcceptGate.for_worker(settings.renderer_concurrency, settings.renderer_workers,
                                          on_cpu=self.runtime.engine.device.type == "cpu")

    def __is_ready__(self) -> bool:
        return self.runtime.ready

    @bentoml.api(route="/internal/render")
    def render(self, batch: RenderBatch, /) -> RenderBatchResult:
        """Render a batch of admitted requests (internal: called by the gateway only)."""
        return self.runtime.render(batch)

    @bentoml.api(route="/internal/render_stream")
    def render_stream(self, batch: RenderBatch, /) -> Generator[str, None, None]:
        """Render a batch while streaming its denoising steps: JSON lines of progress, then the
        result (internal: called by the gateway only, for live progress)."""
        yield from self.runtime.render_stream(batch)

    @bentoml.api(route="/internal/cache")
    def cache_state(self) -> dict:
        """Twins and the cache tiers holding their adapters on this worker."""
        return self.runtime.cache_state()

    @bentoml.api(route="/internal/evict")
    def evict(self, twin_id: str) -> list[str]:
        """Drop a twin's adapter from every tier and the slot of this worker."""
        return self.runtime.evict(twin_id)

    @bentoml.api(route="/internal/prefetch")
    def prefetch(self, twin_ids: list[str]) -> dict[str, str]:
        """Warm twins' adapters into this worker's device tier (answered beside a running
        render: it takes no render slot)."""
        return self.runtime.prefetch(twin_ids)

    @bentoml.on_shutdown
    def close(self) -> None:
        if self.gate is not None:
            self.gate.close()
        self.runtime.close()


# The paths BentoML's concurrency limit skips: its probes, /metrics and the default livez path.
PROBES = MaxConcurrencyMiddleware.BYPASS_PATHS | {"/health"}
# Prefetch calls (a gateway's hint that a twin comes next, and the admin's warm-up) are answered
# beside a running render and take no render slot: a cold twin's adapter loads through the
# tiers while the call before it denoises (the cache is thread-safe; the pipeline lock is not
# taken). They still need the internal credential. BentoML has no per-route setting for its
# limit, so its skip list (a class attribute read when the middleware is built) gains the path;
# the gateway, which imports this module, has no such route. Behind the accept gate (a CPU
# renderer, or several workers) a busy worker does not accept any connection, so there a hint
# waits in the backlog like any call.
UNCOUNTED = frozenset({"/internal/prefetch"})
MaxConcurrencyMiddleware.BYPASS_PATHS = MaxConcurrencyMiddleware.BYPASS_PATHS | UNCOUNTED
# Only gateways get past this (the internal credential; on render calls, every item's admission
# seal), and a refused call never takes a render slot: this middleware runs outside the next.
Renderer.add_asgi_middleware(InternalAuth, credential=lambda: InternalCredential.from_settings(get_settings()),
                             open_paths=PROBES)
# Each call holds its worker's accept-gate slot until answered (a pass-through without a gate);
# the probes and prefetch calls hold none.
Renderer.add_asgi_middleware(SlotMiddleware, skip_paths=PROBES | UNCOUNTED)
