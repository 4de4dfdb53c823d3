"""Prometheus metrics of the adapter cache (served on BentoML's /metrics).

Owns: the metric names. Created lazily on first use so that BentoML's multiprocess
Prometheus set-up (PROMETHEUS_MULTIPROC_DIR) is in place before any metric exists.
"""

from __future__ import annotations

from functools import cached_property

LOAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PrometheusCacheEvents:
    @cached_property
    def _served(self):
        from prometheus_client import Counter

        return Counter("atelier_adapter_lookups", "Adapter lookups by the tier that served them", ["source"])

    @cached_property
    def _seconds(self):
        from prometheus_client import Histogram

        return Histogram("atelier_adapter_load_seconds", "Time to get an adapter onto the device, by source tier", ["source"], buckets=LOAD_BUCKETS)

    @cached_property
    def _evictions(self):
        from prometheus_client import Counter

        return Counter("atelier_adapter_evictions", "Adapters evicted from a cache tier", ["tier"])

    @cached_property
    def _bytes(self):
        from prometheus_client import Gauge

        return Gauge("atelier_adapter_cache_bytes", "Bytes held by a cache tier", ["tier"], multiprocess_mode="livesum")

    def served(self, source: str, seconds: float) -> None:
        self._served.labels(source=source).inc()
        self._seconds.labels(source=source).observe(seconds)

    def evicted(self, tier: str) -> None:
        self._evictions.labels(tier=tier).inc()

    def resident(self, tier: str, nbytes: int) -> None:
        self._bytes.labels(tier=tier).set(nbytes)
