"""Per-key rate limits: requests per minute (a token bucket) and concurrent jobs.

Owns: admitting or refusing one request for a key (429 `rate_limited` or
`too_many_concurrent`, with the seconds to wait in `Retry-After`) and releasing its
concurrency slot when it ends. Must never sleep or queue: a refused request is answered at
once so the client can back off.

The counters live in this process: with N replicas a key can reach N times its limit in
the worst case. That bounds load per GPU, which is what the limit protects; a shared
counter (Redis, or the registry) would make it global at the cost of a round trip on
every request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.errors import AtelierError


class RateLimited(AtelierError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass
class _Bucket:
    tokens: float
    updated: float
    in_flight: int = 0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, key_id: str, requests_per_minute: int, max_concurrent: int) -> Iterator[None]:
        """Hold one request slot for `key_id` for the duration of the block, or raise 429."""
        rate = requests_per_minute / 60.0
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(tokens=float(requests_per_minute), updated=now)
            bucket.tokens = min(float(requests_per_minute), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.in_flight >= max_concurrent:
                raise RateLimited(
                    f"this API key already has {bucket.in_flight} requests running (limit {max_concurrent})",
                    retry_after=1, code="too_many_concurrent",
                )
            if bucket.tokens < 1.0:
                wait = math.ceil((1.0 - bucket.tokens) / rate)
                raise RateLimited(f"this API key is limited to {requests_per_minute} requests per minute", retry_after=wait)
            bucket.tokens -= 1.0
            bucket.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                bucket.in_flight -= 1
