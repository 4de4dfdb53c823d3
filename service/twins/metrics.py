"""Prometheus metrics of the adapter cache and of renders waiting for it (served on BentoML's /metrics).

Owns: the metric names. Each metric is created once per process, lazily on first use, so
BentoML's multiprocess Prometheus set-up (PROMETHEUS_MULTIPROC_DIR) is in place before any
metric exists and a second engine in the same process reuses them.
"""

from __future__ import annotations

from functools import cache

LOAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@cache
def _metrics():
    from prometheus_client import Counter, Gauge, Histogram

    return {
        "served": Counter("atelier_adapter_lookups", "Adapter lookups by the tier that served them", ["source"]),
        "seconds": Histogram(
            "atelier_adapter_load_seconds", "Time to get an adapter onto the device, by source tier", ["source"], buckets=LOAD_BUCKETS
        ),
        "evictions": Counter("atelier_adapter_evictions", "Adapters evicted from a cache tier", ["tier"]),
        "bytes": Gauge("atelier_adapter_cache_bytes", "Bytes held by a cache tier", ["tier"], multiprocess_mode="livesum"),
        # Per pipeline batch with twins: how long it waited, ready to denoise, for its adapters'
        # loads (0 when they were on the device in time), and how many batches waited at all.
        "wait": Histogram("atelier_adapter_wait_seconds", "Time a pipeline batch waited for its twins' adapter loads "
                          "before its first denoising step (0: none to wait for)", buckets=(0.0,) + LOAD_BUCKETS),
        "waits": Counter("atelier_adapter_waits", "Pipeline batches that waited for an adapter load before denoising"),
    }


class PrometheusCacheEvents:
    def served(self, source: str, seconds: float) -> None:
        _metrics()["served"].labels(source=source).inc()
        _metrics()["seconds"].labels(source=source).observe(seconds)

    def evicted(self, tier: str) -> None:
        _metrics()["evictions"].labels(tier=tier).inc()

    def resident(self, tier: str, nbytes: int) -> None:
        _metrics()["bytes"].labels(tier=tier).set(nbytes)

    def waited(self, seconds: float) -> None:
        _metrics()["wait"].observe(seconds)
        if seconds > 0:
            _metrics()["waits"].inc()
