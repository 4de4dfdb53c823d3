"""Fleet-wide rate limits in the registry database: one GCRA row per limited bucket.

Owns: `RateLimits.spend(bucket, per_minute, burst)`, one atomic statement that admits one
request of `bucket` or refuses it, for every gateway that shares this database (SQLite
embedded, PostgreSQL in production), and `RateLimits.state(bucket)` for tests and the bench.

The Generic Cell Rate Algorithm keeps one number per bucket, its theoretical arrival time
(`tat_us`, microseconds since the epoch, from the one clock `Database.now`). With an emission
interval `T = 60 s / per_minute` and a tolerance `tau = (burst - 1) * T`, a request at `now`
conforms when `tat <= now + tau`; it then moves `tat` to `max(tat, now) + T`. That test and
that move are one upsert:

    INSERT INTO rate_limits (bucket, tat_us) VALUES (:b, :now + :t)
    ON CONFLICT (bucket) DO UPDATE
        SET tat_us = CASE WHEN rate_limits.tat_us > :now THEN rate_limits.tat_us ELSE :now END + :t
        WHERE rate_limits.tat_us <= :now + :tau
    RETURNING tat_us

(the same text on SQLite >= 3.35 and PostgreSQL): a row comes back when the request is
admitted, none when it is refused. The row lock (PostgreSQL) or the write lock (SQLite's
`BEGIN IMMEDIATE`) serialises two gateways spending the same bucket, so no interleaving
admits more than the algorithm allows. The commit does not wait for the disk
(`Database.ephemeral`): an operating-system crash or power loss may forget the last moments'
spending, which lets a key burst once more, and never admits more than that. Any window of
60 s then admits at most
`per_minute + burst - 1` requests. A refusal reads the row once more to say when the next
request would conform (`Retry-After`).

Must never decide what a bucket is limited to (the caller passes it), catch a database error
(the caller fails safe: `service.tenancy.ratelimit`), or hold any state in the process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text

from service.registry.db import Database
from service.registry.models import RateLimitRow

MINUTE_US = 60_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_US = timedelta(microseconds=1)

_SPEND = text(
    "INSERT INTO rate_limits (bucket, tat_us) VALUES (:bucket, :now + :t) "
    "ON CONFLICT (bucket) DO UPDATE "
    "SET tat_us = CASE WHEN rate_limits.tat_us > :now THEN rate_limits.tat_us ELSE :now END + :t "
    "WHERE rate_limits.tat_us <= :now + :tau "
    "RETURNING tat_us"
)


@dataclass(frozen=True)
class Spent:
    """One admission's answer: admitted, or refused with the seconds until one would conform
    (`retry_at_us`: that moment on the store's clock; no request of the bucket conforms before
    it, whatever other gateways do, since they only ever move it later)."""

    admitted: bool
    retry_after_s: int = 0
    retry_at_us: int = 0


class RateLimits:
    def __init__(self, db: Database):
        self.db = db

    def now_us(self) -> int:
        """The registry clock's now in whole microseconds since the epoch (exact: no float)."""
        return (self.db.now() - EPOCH) // ONE_US

    def spend(self, bucket: str, per_minute: int, burst: int = 1) -> Spent:
        """Spend one request of `bucket`, limited to `per_minute` with up to `burst` at once."""
        if per_minute < 1 or burst < 1:
            raise ValueError("a limit needs per_minute >= 1 and burst >= 1")
        interval = max(1, MINUTE_US // per_minute)
        tau = (burst - 1) * interval
        now = self.now_us()
        with self.db.ephemeral() as conn:  # no fsync wait: a lost update only lets a key burst once more
            tat = conn.execute(_SPEND, {"bucket": bucket, "now": now, "t": interval, "tau": tau}).scalar()
            if tat is not None:
                return Spent(True)
            current = conn.scalar(select(RateLimitRow.tat_us).where(RateLimitRow.bucket == bucket))
        retry_at = (current if current is not None else now) - tau
        return Spent(False, max(1, math.ceil((retry_at - now) / 1_000_000)), retry_at)

    def state(self, bucket: str) -> int | None:
        """The bucket's theoretical arrival time (microseconds since the epoch), or None."""
        with self.db.session() as s:
            return s.scalar(select(RateLimitRow.tat_us).where(RateLimitRow.bucket == bucket))
