"""Per-key rate limits: requests per minute (fleet-wide, in the registry) and concurrent requests.

Owns: admitting or refusing one request for a key (429 `rate_limited` or
`too_many_concurrent`, with the seconds to wait in `Retry-After`), releasing its concurrency
slot when it ends, and failing safe: when the shared store cannot be asked, 503
`limits_unavailable` (Retry-After), never an admission without a limit. Must never sleep or
queue: a refused request is answered at once so the client can back off.

Requests per minute hold across every gateway that shares the registry: each admission is
one atomic upsert of the key's GCRA row (`service.registry.limits`, `rpm:<key id>`), with a
burst of `1 + rpm // 10`, so any 60 s window admits at most `rpm + rpm // 10` requests of a
key over the whole fleet (within 10% of its rate; exactly its rate below 10/min). A refused
key is remembered here until the moment the store named (no request of it can conform before
then, whatever other gateways do), so a spent key's flood is refused without database work.
Each gateway's clock is `now` in the upsert: clocks that disagree by d seconds let a key
send about d / (60 / rpm) more at once (NTP keeps d in milliseconds). A limiter
built without a store (`RateLimiter()`: unit tests, a registry-less tool) keeps the
per-process token bucket of before.

Concurrent requests (`max_concurrent_jobs` slots held for the admitted block) are counted
in this process: they bound the work one gateway holds open for a key, and a crashed
gateway must not leave slots taken in a shared table. A key's queued or running catalogue
jobs are counted from the jobs table (`service.registry.jobs.open_jobs`), which every
gateway reads, so that limit is already fleet-wide.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from service.errors import AtelierError, LimitsUnavailable
from service.registry.limits import Spent

log = logging.getLogger("atelier.ratelimit")
RETRY_WHEN_UNAVAILABLE_S = 5


class RateLimited(AtelierError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class LimitStore(Protocol):
    def spend(self, bucket: str, per_minute: int, burst: int = 1) -> Spent: ...

    def now_us(self) -> int: ...


def burst_of(requests_per_minute: int) -> int:
    """How many requests a key may send at once: 1 + 10% of its rate per minute."""
    return 1 + requests_per_minute // 10


@dataclass
class _Bucket:
    tokens: float
    updated: float
    in_flight: int = 0
    refused_until_us: int = 0  # the store said no request of this key conforms before then


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, store: LimitStore | None = None):
        self._clock = clock
        self._store = store  # None: the per-process token bucket (no registry)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @contextmanager
    def admit(self, key_id: str, requests_per_minute: int, max_concurrent: int) -> Iterator[None]:
        """Hold one request slot for `key_id` for the duration of the block, or raise 429 (503
        when the shared store cannot be reached)."""
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(tokens=float(requests_per_minute), updated=self._clock())
            if bucket.in_flight >= max_concurrent:
                raise RateLimited(
                    f"this API key already has {bucket.in_flight} requests running (limit {max_concurrent})",
                    retry_after=1, code="too_many_concurrent",
                )
            if self._store is None:
                self._spend_locally(bucket, requests_per_minute)
            else:
                self._refuse_while_spent(bucket, requests_per_minute)
            bucket.in_flight += 1  # held while the store is asked, so concurrency holds meanwhile
        try:
            if self._store is not None:
                self._spend_in_store(key_id, bucket, requests_per_minute)
        except BaseException:
            with self._lock:
                bucket.in_flight -= 1
            raise
        try:
            yield
        finally:
            with self._lock:
                bucket.in_flight -= 1

    def _spend_locally(self, bucket: _Bucket, requests_per_minute: int) -> None:
        rate = requests_per_minute / 60.0
        now = self._clock()
        bucket.tokens = min(float(requests_per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            wait = math.ceil((1.0 - bucket.tokens) / rate)
            raise RateLimited(f"this API key is limited to {requests_per_minute} requests per minute", retry_after=wait)
        bucket.tokens -= 1.0

    def _refuse_while_spent(self, bucket: _Bucket, requests_per_minute: int) -> None:
        """A key the store refused stays refused here until the moment the store named, with no
        database work: other gateways' admissions only move that moment later, so asking again
        before it could only be refused (a flood from a spent key costs the registry nothing)."""
        if not bucket.refused_until_us:
            return
        wait_us = bucket.refused_until_us - self._store.now_us()
        if wait_us > 0:
            raise RateLimited(f"this API key is limited to {requests_per_minute} requests per minute",
                              retry_after=math.ceil(wait_us / 1_000_000))
        bucket.refused_until_us = 0

    def _spend_in_store(self, key_id: str, bucket: _Bucket, requests_per_minute: int) -> None:
        try:
            spent = self._store.spend(f"rpm:{key_id}", requests_per_minute, burst_of(requests_per_minute))
        except (SQLAlchemyError, OSError) as exc:
            # Fail safe: a limiter that cannot count refuses, it never admits unlimited traffic.
            log.warning("rate limits unavailable; refusing", extra={"fields": {"error": type(exc).__name__}})
            raise LimitsUnavailable("the rate-limit store cannot be reached right now; retry shortly",
                                    retry_after=RETRY_WHEN_UNAVAILABLE_S) from None
        if not spent.admitted:
            with self._lock:
                bucket.refused_until_us = max(bucket.refused_until_us, spent.retry_at_us)
            raise RateLimited(f"this API key is limited to {requests_per_minute} requests per minute",
                              retry_after=spent.retry_after_s)
