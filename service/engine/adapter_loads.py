"""A batch's twin adapters on their way to the device, loaded while the batch waits and encodes.

Owns: starting each twin's adapter load through the cache tiers as soon as a call arrives
(`AdapterLoads.start`): an adapter already in the device tier is taken at once; one below it
(host, disk or the store) loads on a loader thread, so the load overlaps the call's wait for
the pipeline (the previous call's steps) and its prompt encoding instead of preceding them;
and collecting them when the pipeline is ready to denoise (`PendingLoads.collect`): each
twin's adapter and the tier that served it, or the error that stopped its load, and how long
the pipeline waited for them (0 when they were ready), reported to the cache's events
(`atelier_adapter_wait_seconds`, `atelier_adapter_waits_total`) and in the generation's
timings (`adapter_wait`). Must never touch the slot, and never let a row start denoising
without its twin: a batch waits for its loads, it does not hide them by changing an image.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from service.twins.adapters import TwinAdapters
from service.twins.slot import PreparedAdapter

LOADERS = 2  # loads of different twins at once (one twin's concurrent loads are single-flight in the cache)


@dataclass
class Loaded:
    """What `PendingLoads.collect` found: each twin's (adapter, tier), the twins whose load
    failed with their error, and the milliseconds the pipeline waited for them."""

    adapters: dict[str, tuple[PreparedAdapter, str]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    waited_ms: float = 0.0


class PendingLoads:
    """The loads of one batch's twins, started; `collect` once, when the pipeline needs them."""

    def __init__(self, futures: dict[str, Future], events):
        self.futures = futures
        self.events = events

    def collect(self) -> Loaded:
        loaded = Loaded()
        if not self.futures:
            return loaded
        ready = all(future.done() for future in self.futures.values())
        start = time.perf_counter()
        for twin_id, future in self.futures.items():
            try:
                loaded.adapters[twin_id] = future.result()
            except Exception as exc:  # noqa: BLE001 - that twin's items fail with it; the others render
                loaded.errors[twin_id] = exc
        loaded.waited_ms = 0.0 if ready else (time.perf_counter() - start) * 1000.0
        self.events.waited(loaded.waited_ms / 1000.0)
        return loaded


class AdapterLoads:
    """Starts twins' adapter loads for the engine (see the module docstring)."""

    def __init__(self, twins: TwinAdapters, workers: int = LOADERS):
        self.twins = twins
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="atelier-adapter-load")

    def start(self, twin_ids: list[str]) -> PendingLoads:
        """Begin loading each twin's adapter; a twin unknown or revoked in the registry fails
        here already (its future holds the error)."""
        futures: dict[str, Future] = {}
        for twin_id in twin_ids:
            try:
                record = self.twins.catalog.get(twin_id)
            except Exception as exc:  # noqa: BLE001 - reported by collect, for this twin's items only
                futures[twin_id] = failed(exc)
                continue
            if self.twins.cache.in_device_tier(record.sha256):
                futures[twin_id] = self._now(record)
            else:
                futures[twin_id] = self._pool.submit(self.twins.cache.acquire, record)
        return PendingLoads(futures, self.twins.cache.events)

    def _now(self, record) -> Future:
        """A device-tier hit, taken on this thread (no hop to a loader for a copy-free lookup)."""
        future: Future = Future()
        try:
            future.set_result(self.twins.cache.acquire(record))
        except Exception as exc:  # noqa: BLE001 - evicted meanwhile and its reload failed
            future.set_exception(exc)
        return future


def failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future
