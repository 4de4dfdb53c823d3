"""The idempotency repository: stored responses under (tenant, Idempotency-Key).

Owns: the canonical hash of a request body (`request_hash`), finding a stored response
(absent or expired: None; the same key with another body: `IdempotencyConflict`), storing a
first response (the first writer wins; an expired entry is replaced), and purging expired
entries. Keys are 1-255 characters (`check_key`, the column's bound; `check_idempotency_key`
lets an absent header through). Must never return ORM
rows, never overwrite a live entry, and never bump the registry version (no replica caches
these). Timestamps default to the database's clock; entries live 24 h unless told.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from service.errors import InvalidRequest
from service.registry.db import Database
from service.registry.errors import IdempotencyConflict
from service.registry.models import IdempotencyRow

IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_KEY_MAX = 255


def request_hash(body: Any) -> str:
    """SHA-256 of the canonical JSON of a request body (sorted keys, no whitespace)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_key(key: str) -> str:
    """`key` when it can be stored (1-255 characters); else a 422 naming the header."""
    if not isinstance(key, str) or not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidRequest(f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} characters", field="Idempotency-Key")
    return key


def check_idempotency_key(header: str | None) -> str | None:
    """An `Idempotency-Key` header's value when usable (1-255 characters); an absent header
    (None) passes through. (The jobs capability claims keys itself, so this lives here, below
    it, and not in the gateway.)"""
    return None if header is None else check_key(header)


@dataclass(frozen=True)
class IdempotentResponse:
    status_code: int
    response: Any
    created_at: datetime
    expires_at: datetime


def _conflict() -> IdempotencyConflict:
    return IdempotencyConflict("this Idempotency-Key was used with a different request body", field="Idempotency-Key")


class IdempotencyKeys:
    def __init__(self, db: Database | Engine):
        self.db = Database.of(db)

    def get(self, tenant_id: str, key: str, req_hash: str, *, now: datetime | None = None) -> IdempotentResponse | None:
        """The stored response for (tenant, key), None when absent or expired. Raises
        `IdempotencyConflict` when the key was used with a different request hash."""
        check_key(key)
        now = self.db.at(now)
        with self.db.session() as s:
            row = s.scalars(
                select(IdempotencyRow).where(IdempotencyRow.tenant_id == tenant_id, IdempotencyRow.key == key)
            ).first()
            if row is None or row.expires_at <= now:
                return None
            if row.request_hash != req_hash:
                raise _conflict()
            return IdempotentResponse(row.status_code, row.response, row.created_at, row.expires_at)

    def put(
        self,
        tenant_id: str,
        key: str,
        req_hash: str,
        response: Any,
        status_code: int,
        *,
        now: datetime | None = None,
        ttl: timedelta = IDEMPOTENCY_TTL,
    ) -> IdempotentResponse:
        """Store a response under (tenant, key) for `ttl`. An expired entry is replaced; a live
        one with the same hash wins (first writer) and is returned; a different hash conflicts."""
        check_key(key)
        now = self.db.at(now)
        with self.db.session() as s, s.begin():
            s.execute(delete(IdempotencyRow).where(
                IdempotencyRow.tenant_id == tenant_id, IdempotencyRow.key == key, IdempotencyRow.expires_at <= now))
            row = IdempotencyRow(tenant_id=tenant_id, key=key, request_hash=req_hash, response=response,
                                 status_code=status_code, created_at=now, expires_at=now + ttl)
            try:
                with s.begin_nested():
                    s.add(row)
            except IntegrityError:
                existing = s.scalars(
                    select(IdempotencyRow).where(IdempotencyRow.tenant_id == tenant_id, IdempotencyRow.key == key)
                ).one()
                if existing.request_hash != req_hash:
                    raise _conflict() from None
                row = existing
            return IdempotentResponse(row.status_code, row.response, row.created_at, row.expires_at)

    def release(self, tenant_id: str, key: str, req_hash: str) -> None:
        """Forget a claim whose work was then refused (the key may be used again)."""
        with self.db.session() as s, s.begin():
            s.execute(delete(IdempotencyRow).where(IdempotencyRow.tenant_id == tenant_id, IdempotencyRow.key == key,
                                                   IdempotencyRow.request_hash == req_hash))

    def purge_expired(self, *, now: datetime | None = None) -> int:
        """Delete every expired entry; returns how many."""
        with self.db.session() as s, s.begin():
            result = s.execute(delete(IdempotencyRow).where(IdempotencyRow.expires_at <= self.db.at(now)))
            return result.rowcount or 0


@dataclass
class Idempotency:
    """An Idempotency-Key, checked and claimed: the one helper of every idempotent submission.
    Finds a stored response for (tenant, key, body) (a different body under the same key is a
    409) and stores a first response (of two concurrent requests with one key, the first to
    store wins: compare what is stored with yours). Callers decide what to run and whether a
    replay may still be served (a revoked twin's images are not); this never runs a
    generation, creates a job or builds an HTTP response."""

    keys: IdempotencyKeys
    tenant_id: str
    key: str | None
    digest: str

    @classmethod
    def of(cls, registry: Any, tenant_id: str, header: str | None, body: Any) -> "Idempotency":
        """For `registry`'s idempotency keys (anything with `.idempotency`), the caller's
        `Idempotency-Key` header and its request `body` (a pydantic model)."""
        return cls(registry.idempotency, tenant_id, check_idempotency_key(header),
                   request_hash(body.model_dump(mode="json")))

    def stored(self) -> IdempotentResponse | None:
        """The response stored for this key and body, or None (409 for another body)."""
        if self.key is None:
            return None
        return self.keys.get(self.tenant_id, self.key, self.digest)

    def store(self, response: dict, status: int) -> IdempotentResponse:
        """Store `response` unless another request with this key stored one first; returns
        what is stored now (compare it with yours to know which request won)."""
        return self.keys.put(self.tenant_id, self.key, self.digest, response, status)

    def release(self) -> None:
        """Forget this request's claim: what it claimed for was refused after all."""
        if self.key is not None:
            self.keys.release(self.tenant_id, self.key, self.digest)
