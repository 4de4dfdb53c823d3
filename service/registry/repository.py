"""The `Registry` repository: every read and write of the registry tables goes through it.

Owns: tenants, API keys (mint, authenticate, revoke), twins (put, get, revoke), consent
records (append-only versions, current record, history, the consent decision), idempotency
keys (24 h replay window with request-hash comparison) and the registry version that
replicas poll to drop their caches. Must never import bentoml or anything above the
registry, never return ORM rows (callers get frozen dataclasses), never log or store a
plaintext API-key secret, and never issue an UPDATE on a signed consent record.

Rules it enforces:
- Consent is append-only. `add_consent_version` writes version = previous + 1; a signed
  record is immutable: `amend_consent` refuses it (`ConsentImmutable`), and a session
  `before_flush` guard refuses any ORM change to a row whose stored `signed_at` is set, so
  no code path in this module can emit that UPDATE. Drafts (`signed=False`) may be amended,
  then `sign_consent` seals them; only signed records ever govern a decision.
- The governing record at time `at` is the highest signed version with `signed_at <= at`;
  a newer version supersedes older ones entirely.
- Revocation is final and applies to the likeness: `revoke_twin` sets `revoked_at` (and
  `deleted` on request) on the twin and on every other twin serving the same adapter bytes
  (sha256), bumps their `revision`, and none of them takes new consent or an adapter again;
  `service.registry.likeness` adds, in the same transaction, every twin whose fingerprint is
  near or that an admin linked as the same person.
- One likeness, one set of bytes: `put_twin` refuses (409 `adapter_in_use`) adapter bytes
  already bound to another twin, live or revoked.
- The consent decision reads its facts with the same four statements whatever the answer
  (unknown twin, another tenant's, revoked, allowed), so its timing tells no tenant which
  twin ids exist; a repeat check at the same registry version costs one statement, again
  whatever the answer.
- The watermark index (`index_watermarks`, `find_watermark`) maps a delivered image's
  watermark id to its generation, tenant and twin; rows are only ever added.
- Every change to a tenant, key, twin or consent bumps `registry_state.version` in the same
  transaction (`UPDATE ... SET version = version + 1`, atomic on SQLite and PostgreSQL), so a
  replica that sees a higher version knows its cached keys/twins/consent may be stale.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, delete, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import InvalidRequest, TwinNotFound
from service.registry import keys
from service.registry.db import Database, utcnow
from service.registry.errors import (
    AdapterInUse,
    AlreadyExists,
    ConsentImmutable,
    ConsentNotFound,
    IdempotencyConflict,
    TenantNotFound,
    TwinRevoked,
)
from service.registry.models import (
    ApiKeyRow,
    ConsentRow,
    ConsentTenantRow,
    IdempotencyRow,
    RegistryStateRow,
    TenantRow,
    TwinRow,
    WatermarkRow,
)

SCOPES = frozenset({"generate", "verify", "admin", "talent"})
# A talent key reads one person's likeness usage: it names its twins and holds no scope that acts.
TALENT_COMPATIBLE = frozenset({"talent", "verify"})
IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_KEY_MAX = 255
LAST_USED_RESOLUTION = timedelta(seconds=60)  # authenticate writes last_used_at at most this often
_DUMMY_SALT = b"\0" * keys.SALT_BYTES
_DUMMY_HASH = keys.hash_secret(_DUMMY_SALT, "x")


def request_hash(body: Any) -> str:
    """SHA-256 of the canonical JSON of a request body (sorted keys, no whitespace)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    requests_per_minute: int
    max_concurrent_jobs: int
    twin_ids: frozenset[str] | None = None  # a talent key's twins; None: not restricted


@dataclass(frozen=True)
class TenantInfo:
    id: str
    name: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class KeyListing:
    """An API key as operators see it: never its secret or hash."""

    key_id: str
    tenant_id: str
    name: str
    scopes: tuple[str, ...]
    requests_per_minute: int
    max_concurrent_jobs: int
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    twin_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TwinInfo:
    id: str
    display_name: str
    adapter_key: str
    adapter_sha256: str
    rank: int
    deleted: bool
    revision: int
    revoked_at: datetime | None


@dataclass(frozen=True)
class ConsentRecord:
    id: int
    twin_id: str
    version: int
    tenants: frozenset[str]
    uses: tuple[str, ...]
    territories: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime | None
    pay_rate_ref: str | None
    excluded_categories: tuple[str, ...]
    included_categories: tuple[str, ...]
    deny_terms: tuple[str, ...]
    recorded_by: str
    signed_at: datetime | None
    review_unverified_garments: bool = False


@dataclass(frozen=True)
class ConsentDecision:
    ok: bool
    reason: str | None  # None when ok; else consent_missing | use_not_allowed | consent_expired | revoked
    consent_id: int | None = None
    version: int | None = None
    deny_terms: tuple[str, ...] = ()
    excluded_categories: tuple[str, ...] = ()
    included_categories: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()  # empty: worldwide
    tenant_named: bool = False  # some version of the twin's consent ever named this tenant
    review_unverified_garments: bool = False


CONSENT_FACTS_CACHED = 4096  # (twin, tenant) snapshots kept per process


@dataclass(frozen=True)
class _ConsentFacts:
    """What the consent decision reads about one twin for one tenant, valid while the registry
    version it was read at holds: the twin's state and every signed version, newest first."""

    exists: bool
    deleted: bool
    revoked_at: datetime | None
    signed: tuple[ConsentRecord, ...]
    tenant_named: bool  # some version (drafts included) ever named this tenant

    def decide(self, tenant_id: str, use: str, at: datetime) -> ConsentDecision:
        named = self.tenant_named
        signed = [r for r in self.signed if r.signed_at is not None and r.signed_at <= at]
        record = next((r for r in signed if r.valid_from <= at), signed[0] if signed else None)
        if not self.exists:
            return ConsentDecision(False, "consent_missing", tenant_named=named)
        if self.deleted or (self.revoked_at is not None and self.revoked_at <= at):
            return ConsentDecision(False, "revoked", tenant_named=named)
        if record is None or tenant_id not in record.tenants:
            return ConsentDecision(False, "consent_missing", tenant_named=named)
        ids = {"consent_id": record.id, "version": record.version, "tenant_named": named}
        if at < record.valid_from or (record.valid_until is not None and at >= record.valid_until):
            return ConsentDecision(False, "consent_expired", **ids)
        if use not in record.uses:
            return ConsentDecision(False, "use_not_allowed", **ids)
        return ConsentDecision(True, None, deny_terms=record.deny_terms, excluded_categories=record.excluded_categories,
                               included_categories=record.included_categories, territories=record.territories,
                               review_unverified_garments=record.review_unverified_garments, **ids)


@dataclass(frozen=True)
class WatermarkInfo:
    """A delivered image, found by its watermark id."""

    watermark_id: str
    generation_id: str
    tenant_id: str
    twin_id: str | None
    image_index: int
    created_at: datetime


@dataclass(frozen=True)
class IdempotentResponse:
    status_code: int
    response: Any
    created_at: datetime
    expires_at: datetime


def _refuse_signed_consent_updates(session: Session, _ctx, _instances) -> None:
    for obj in session.dirty:
        if isinstance(obj, ConsentRow) and session.is_modified(obj):
            stored = inspect(obj).attrs.signed_at.history
            before = stored.unchanged or stored.deleted
            if before and before[0] is not None:
                raise ConsentImmutable(f"consent record {obj.id} is signed and cannot change")
    for obj in session.deleted:
        if isinstance(obj, ConsentRow):
            raise ConsentImmutable("consent records are never deleted")


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    if at.tzinfo is None:
        raise InvalidRequest("timestamps must be timezone-aware", field="at")
    return at.astimezone(timezone.utc)


def _strings(values: Iterable[str], field: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidRequest(f"{field} must be a list of strings, not one string", field=field)
    out = [str(v).strip() for v in values]
    if any(not v for v in out):
        raise InvalidRequest(f"{field} holds an empty value", field=field)
    return sorted(set(out))


class Registry:
    def __init__(self, db: Database | Engine):
        self.db = Database.of(db)  # the engine, sessions and clock shared with the other repositories
        self.engine = self.db.engine
        self.db.guard_flush(_refuse_signed_consent_updates)
        self._consent_facts: OrderedDict[tuple[str, str], tuple[int, _ConsentFacts]] = OrderedDict()
        self._consent_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------

    def _session(self) -> Session:
        return self.db.session()

    _bump = staticmethod(Database.bump_version)

    def registry_version(self) -> int:
        with self._session() as s:
            return int(s.scalar(select(RegistryStateRow.version).where(RegistryStateRow.id == 1)))

    # -- tenants --------------------------------------------------------------------------

    def create_tenant(self, tenant_id: str, name: str, *, now: datetime | None = None) -> None:
        if not tenant_id or len(tenant_id) > 64 or not all(c.isalnum() or c in "-_" for c in tenant_id):
            raise InvalidRequest("tenant id must be 1-64 letters, digits, '-' or '_'", field="tenant_id")
        with self._session() as s, s.begin():
            if s.get(TenantRow, tenant_id) is not None:
                raise AlreadyExists(f"tenant {tenant_id!r} already exists", code="tenant_exists")
            s.add(TenantRow(id=tenant_id, name=name, created_at=_aware(now), disabled=False))
            self._bump(s)

    def get_tenant(self, tenant_id: str) -> TenantInfo | None:
        with self._session() as s:
            row = s.get(TenantRow, tenant_id)
            return None if row is None else TenantInfo(row.id, row.name, row.disabled, row.created_at)

    def list_tenants(self) -> list[TenantInfo]:
        with self._session() as s:
            rows = s.scalars(select(TenantRow).order_by(TenantRow.id)).all()
            return [TenantInfo(r.id, r.name, r.disabled, r.created_at) for r in rows]

    def set_tenant_disabled(self, tenant_id: str, disabled: bool) -> None:
        with self._session() as s, s.begin():
            row = s.get(TenantRow, tenant_id)
            if row is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            row.disabled = disabled
            self._bump(s)

    # -- API keys -------------------------------------------------------------------------

    def create_api_key(
        self,
        tenant_id: str,
        scopes: Iterable[str],
        *,
        name: str = "",
        requests_per_minute: int = 60,
        max_concurrent_jobs: int = 4,
        now: datetime | None = None,
        twin_ids: Iterable[str] | None = None,
    ) -> tuple[str, str]:
        """Mint a key; returns (key_id, plaintext token). The token is shown once, never stored.
        A `talent` key names the twins it reads (`twin_ids`, one person's) and may add only `verify`."""
        wanted = set(scopes)
        if not wanted or not wanted <= SCOPES:
            raise InvalidRequest(f"scopes must be a non-empty subset of {sorted(SCOPES)}", field="scopes")
        twins = None if twin_ids is None else _strings(twin_ids, "twin_ids")
        if ("talent" in wanted) != bool(twins):
            raise InvalidRequest("a 'talent' key needs twin_ids, and only a talent key takes them", field="twin_ids")
        if twins and not wanted <= TALENT_COMPATIBLE:
            raise InvalidRequest("a talent key may hold only the 'talent' and 'verify' scopes", field="scopes")
        if requests_per_minute < 1 or max_concurrent_jobs < 1:
            raise InvalidRequest("rate limits must be positive", field="requests_per_minute")
        minted = keys.mint()
        with self._session() as s, s.begin():
            if s.get(TenantRow, tenant_id) is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            for twin_id in twins or ():
                if s.get(TwinRow, twin_id) is None:
                    raise TwinNotFound(f"no twin {twin_id!r}", field="twin_ids")
            s.add(
                ApiKeyRow(
                    id=minted.key_id,
                    tenant_id=tenant_id,
                    name=name,
                    salt=minted.salt,
                    secret_hash=minted.secret_hash,
                    scopes=",".join(sorted(wanted)),
                    requests_per_minute=requests_per_minute,
                    max_concurrent_jobs=max_concurrent_jobs,
                    created_at=_aware(now),
                    twin_ids=twins,
                )
            )
            self._bump(s)
        return minted.key_id, minted.token

    def authenticate(self, token: str, *, now: datetime | None = None) -> ApiKeyInfo | None:
        """The key a bearer token names, or None (malformed, unknown, wrong secret, revoked,
        tenant disabled). The secret comparison is constant-time; an unknown key id still
        costs one HMAC so timing does not tell which ids exist."""
        parsed = keys.parse(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = _aware(now)
        with self._session() as s, s.begin():
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                keys.verify(_DUMMY_SALT, _DUMMY_HASH, secret)
                return None
            if not keys.verify(row.salt, row.secret_hash, secret):
                return None
            if row.revoked_at is not None and row.revoked_at <= now:
                return None
            tenant = s.get(TenantRow, row.tenant_id)
            if tenant is None or tenant.disabled:
                return None
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
                row.last_used_at = now  # usage bookkeeping; not a registry version change
            return ApiKeyInfo(
                key_id=row.id,
                tenant_id=row.tenant_id,
                scopes=frozenset(row.scopes.split(",")),
                requests_per_minute=row.requests_per_minute,
                max_concurrent_jobs=row.max_concurrent_jobs,
                twin_ids=None if row.twin_ids is None else frozenset(row.twin_ids),
            )

    def active_key(self, key_id: str, *, now: datetime | None = None) -> ApiKeyInfo | None:
        """A key by id while it is usable (not revoked, tenant enabled): for work a key
        submitted earlier, such as a job's items, which must stop when the key does."""
        now = _aware(now)
        with self._session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None or (row.revoked_at is not None and row.revoked_at <= now):
                return None
            tenant = s.get(TenantRow, row.tenant_id)
            if tenant is None or tenant.disabled:
                return None
            return ApiKeyInfo(row.id, row.tenant_id, frozenset(row.scopes.split(",")), row.requests_per_minute,
                              row.max_concurrent_jobs, None if row.twin_ids is None else frozenset(row.twin_ids))

    def key_verifiers(self, *, now: datetime | None = None) -> dict[str, tuple[bytes, bytes]]:
        """key id -> (salt, secret hash) of every usable key (not revoked, tenant enabled): what
        an in-memory check needs to tell a valid token from a forged one without a query."""
        now = _aware(now)
        with self._session() as s:
            rows = s.execute(select(ApiKeyRow.id, ApiKeyRow.salt, ApiKeyRow.secret_hash, ApiKeyRow.revoked_at)
                             .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
                             .where(TenantRow.disabled.is_(False)))
            return {key_id: (bytes(salt), bytes(hashed)) for key_id, salt, hashed, revoked in rows
                    if revoked is None or revoked > now}

    def list_keys(self, tenant_id: str | None = None) -> list[KeyListing]:
        """Keys (all, or one tenant's), oldest first; ids, scopes and limits only."""
        with self._session() as s:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            if tenant_id is not None:
                query = query.where(ApiKeyRow.tenant_id == tenant_id)
            return [
                KeyListing(r.id, r.tenant_id, r.name, tuple(r.scopes.split(",")), r.requests_per_minute,
                           r.max_concurrent_jobs, r.created_at, r.revoked_at, r.last_used_at,
                           None if r.twin_ids is None else tuple(r.twin_ids))
                for r in s.scalars(query).all()
            ]

    def revoke_key(self, key_id: str, *, now: datetime | None = None) -> bool:
        """Revoke a key; False when it does not exist or was already revoked."""
        with self._session() as s, s.begin():
            row = s.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = _aware(now)
            self._bump(s)
            return True

    # -- twins ----------------------------------------------------------------------------

    def put_twin(
        self,
        twin_id: str,
        *,
        display_name: str,
        adapter_key: str,
        adapter_sha256: str,
        rank: int,
        now: datetime | None = None,
        within: Callable[[Session, TwinRow], None] | None = None,
    ) -> TwinInfo:
        """Create a twin or replace its adapter/metadata; each write bumps its revision.
        `within(session, row)` runs last in the same transaction (`service.registry.likeness`
        checks and records the likeness there); what it raises undoes the write."""
        if len(adapter_sha256) != 64 or any(c not in "0123456789abcdef" for c in adapter_sha256):
            raise InvalidRequest("adapter_sha256 must be 64 lowercase hex characters", field="adapter_sha256")
        if rank < 1:
            raise InvalidRequest("rank must be positive", field="rank")
        now = _aware(now)
        with self._session() as s, s.begin():
            self._bump(s)  # first: on PostgreSQL this row lock orders concurrent registrations
            row = s.get(TwinRow, twin_id, with_for_update=True)
            if row is not None and (row.deleted or row.revoked_at is not None):
                raise TwinRevoked(f"twin {twin_id!r} is revoked")
            other = s.scalars(select(TwinRow).where(TwinRow.adapter_sha256 == adapter_sha256, TwinRow.id != twin_id)
                              .order_by(TwinRow.id).limit(1)).first()
            if other is not None:
                state = "a revoked twin" if other.revoked_at is not None or other.deleted else "another twin"
                raise AdapterInUse(f"these adapter bytes are bound to {state} (one likeness, one twin); "
                                   "a person's twin is registered once", field="adapter")
            if row is None:
                row = TwinRow(id=twin_id, created_at=now, deleted=False, revision=0)
                s.add(row)
            row.display_name = display_name
            row.adapter_key = adapter_key
            row.adapter_sha256 = adapter_sha256
            row.rank = rank
            row.revision = row.revision + 1
            row.updated_at = now
            s.flush()
            if within is not None:
                within(s, row)
            return _twin_info(row)

    def twins_with_adapter(self, adapter_sha256: str) -> list[TwinInfo]:
        """Every twin (revoked and deleted ones too) whose adapter has these bytes."""
        with self._session() as s:
            rows = s.scalars(select(TwinRow).where(TwinRow.adapter_sha256 == adapter_sha256).order_by(TwinRow.id))
            return [_twin_info(r) for r in rows.all()]

    def get_twin(self, twin_id: str, *, include_deleted: bool = False) -> TwinInfo | None:
        with self._session() as s:
            row = s.get(TwinRow, twin_id)
            if row is None or (row.deleted and not include_deleted):
                return None
            return _twin_info(row)

    def list_twins(self, *, include_revoked: bool = False) -> list[TwinInfo]:
        """Twins by id; revoked and deleted ones only when asked for."""
        with self._session() as s:
            query = select(TwinRow).order_by(TwinRow.id)
            if not include_revoked:
                query = query.where(TwinRow.revoked_at.is_(None), TwinRow.deleted.is_(False))
            return [_twin_info(r) for r in s.scalars(query).all()]

    def revoked_twins(self) -> list[TwinInfo]:
        """Every revoked or deleted twin (what a replica must hold no adapter for)."""
        with self._session() as s:
            query = select(TwinRow).where((TwinRow.revoked_at.is_not(None)) | (TwinRow.deleted.is_(True)))
            return [_twin_info(r) for r in s.scalars(query.order_by(TwinRow.id)).all()]

    def revoke_twin(self, twin_id: str, *, delete: bool = False, now: datetime | None = None) -> TwinInfo:
        """Withdraw all consent for a twin (final), and for every twin serving the same
        adapter bytes (`revoke_likeness`). Returns the named twin."""
        return self.revoke_likeness(twin_id, delete=delete, now=now)[0]

    def revoke_likeness(self, twin_id: str, *, delete: bool = False, now: datetime | None = None,
                        related: Callable[[Session, TwinRow], Iterable[str]] | None = None) -> list[TwinInfo]:
        """Revoke a twin and every twin with the same adapter sha256 (one person's likeness,
        whatever id it was registered under), and the twins `related(session, row)` names in the
        same transaction (`service.registry.likeness`: near fingerprints, one likeness group);
        `delete=True` also hides them from `get_twin`.
        Idempotent: repeating it changes nothing (and bumps no version) unless it adds
        `delete`. Returns the named twin first, then the others by id."""
        now = _aware(now)
        with self._session() as s, s.begin():
            row = s.get(TwinRow, twin_id, with_for_update=True)
            if row is None:
                raise TwinNotFound(f"no twin {twin_id!r}")
            rows = [row] + list(s.scalars(select(TwinRow).where(TwinRow.adapter_sha256 == row.adapter_sha256,
                                                                 TwinRow.id != twin_id).order_by(TwinRow.id)
                                          .with_for_update()).all())
            for other in sorted(set(related(s, row) if related is not None else ()) - {t.id for t in rows}):
                if (twin := s.get(TwinRow, other, with_for_update=True)) is not None:
                    rows.append(twin)
            changed = False
            for twin in rows:
                if twin.revoked_at is not None and (twin.deleted or not delete):
                    continue
                if twin.revoked_at is None:
                    twin.revoked_at = now
                twin.deleted = twin.deleted or delete
                twin.revision = twin.revision + 1
                twin.updated_at = now
                changed = True
            if changed:
                self._bump(s)
                s.flush()
            return [_twin_info(t) for t in rows]

    # -- consent --------------------------------------------------------------------------

    def add_consent_version(
        self,
        twin_id: str,
        *,
        tenants: Iterable[str],
        uses: Iterable[str],
        recorded_by: str,
        valid_from: datetime,
        valid_until: datetime | None = None,
        territories: Iterable[str] = (),
        pay_rate_ref: str | None = None,
        excluded_categories: Iterable[str] = (),
        included_categories: Iterable[str] = (),
        deny_terms: Iterable[str] = (),
        signed: bool = True,
        signed_at: datetime | None = None,
        review_unverified_garments: bool = False,
    ) -> ConsentRecord:
        """Append the next consent version for a twin (previous + 1). Signed unless `signed=False`."""
        tenant_ids = _strings(tenants, "tenants")
        use_list = _strings(uses, "uses")
        if not use_list:
            raise InvalidRequest("a consent record allows at least one use", field="uses")
        valid_from = _aware(valid_from)
        if valid_until is not None and _aware(valid_until) <= valid_from:
            raise InvalidRequest("valid_until must be after valid_from", field="valid_until")
        now = self.db.now()
        with self._session() as s, s.begin():
            twin = s.get(TwinRow, twin_id, with_for_update=True)
            if twin is None or twin.deleted:
                raise TwinNotFound(f"no twin {twin_id!r}")
            if twin.revoked_at is not None:
                raise TwinRevoked(f"twin {twin_id!r} is revoked; it takes no new consent")
            known = set(s.scalars(select(TenantRow.id).where(TenantRow.id.in_(tenant_ids))))
            if missing := sorted(set(tenant_ids) - known):
                raise TenantNotFound(f"unknown tenants: {missing}")
            previous = s.scalar(select(func.max(ConsentRow.version)).where(ConsentRow.twin_id == twin_id)) or 0
            row = ConsentRow(
                twin_id=twin_id,
                version=previous + 1,
                uses=use_list,
                territories=_strings(territories, "territories"),
                valid_from=valid_from,
                valid_until=None if valid_until is None else _aware(valid_until),
                pay_rate_ref=pay_rate_ref,
                excluded_categories=_strings(excluded_categories, "excluded_categories"),
                included_categories=_strings(included_categories, "included_categories"),
                deny_terms=_strings(deny_terms, "deny_terms"),
                recorded_by=recorded_by,
                signed_at=(_aware(signed_at) if signed_at else now) if signed else None,
                review_unverified_garments=bool(review_unverified_garments),
                created_at=now,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError as exc:  # a concurrent writer took this version number
                raise AlreadyExists("consent version was taken concurrently; retry", code="consent_conflict") from exc
            s.add_all(ConsentTenantRow(consent_id=row.id, tenant_id=t) for t in tenant_ids)
            self._bump(s)
            return _consent(row, tenant_ids)

    def amend_consent(self, consent_id: int, **changes: Any) -> ConsentRecord:
        """Change fields of an unsigned draft. A signed record raises `ConsentImmutable`."""
        allowed = {"uses", "territories", "valid_from", "valid_until", "pay_rate_ref", "excluded_categories",
                   "included_categories", "deny_terms", "recorded_by", "review_unverified_garments"}  # fmt: skip
        if unknown := set(changes) - allowed:
            raise InvalidRequest(f"cannot amend {sorted(unknown)}", field=sorted(unknown)[0])
        with self._session() as s, s.begin():
            row = s.get(ConsentRow, consent_id, with_for_update=True)
            if row is None:
                raise ConsentNotFound(f"no consent record {consent_id}")
            if row.signed_at is not None:
                raise ConsentImmutable(f"consent record {consent_id} is signed; add a new version instead")
            for name, value in changes.items():
                if name in {"valid_from", "valid_until"} and value is not None:
                    value = _aware(value)
                elif name == "review_unverified_garments":
                    value = bool(value)
                elif name not in {"pay_rate_ref", "recorded_by"}:
                    value = _strings(value, name)
                setattr(row, name, value)
            self._bump(s)
            return _consent(row, self._tenants_of(s, row.id))

    def sign_consent(self, consent_id: int, *, at: datetime | None = None) -> ConsentRecord:
        with self._session() as s, s.begin():
            row = s.get(ConsentRow, consent_id, with_for_update=True)
            if row is None:
                raise ConsentNotFound(f"no consent record {consent_id}")
            if row.signed_at is not None:
                raise ConsentImmutable(f"consent record {consent_id} is already signed")
            row.signed_at = _aware(at)
            self._bump(s)
            return _consent(row, self._tenants_of(s, row.id))

    def consent_history(self, twin_id: str) -> list[ConsentRecord]:
        """Every version of a twin's consent, drafts included, oldest first."""
        with self._session() as s:
            rows = s.scalars(select(ConsentRow).where(ConsentRow.twin_id == twin_id).order_by(ConsentRow.version)).all()
            return [_consent(r, self._tenants_of(s, r.id)) for r in rows]

    def current_consent(self, twin_id: str, at: datetime | None = None) -> ConsentRecord | None:
        """The governing record at `at`: the highest signed version (signed at or before `at`)
        that has started (`valid_from <= at`). A renewal signed today that starts next month
        does not cut off today's use; it governs from its start. When no signed version has
        started yet, the highest signed one is returned (and reads as not yet valid)."""
        at = _aware(at)
        with self._session() as s:
            signed = select(ConsentRow).where(
                ConsentRow.twin_id == twin_id, ConsentRow.signed_at.is_not(None), ConsentRow.signed_at <= at
            ).order_by(ConsentRow.version.desc()).limit(1)
            row = s.scalars(signed.where(ConsentRow.valid_from <= at)).first() or s.scalars(signed).first()
            return None if row is None else _consent(row, self._tenants_of(s, row.id))

    def check_consent(self, twin_id: str, tenant_id: str, use: str, at: datetime | None = None) -> ConsentDecision:
        """May `tenant_id` use `twin_id` for `use` at `at`? Reasons, checked in this order:
        revoked (twin revoked/deleted), consent_missing (no governing record, or it does not
        name this tenant: another tenant's twin looks absent), consent_expired (outside
        valid_from..valid_until, "not yet valid" included), use_not_allowed.

        The decision is a pure function of `at` and a snapshot of the twin's consent facts
        (`_ConsentFacts`). A snapshot is read with the same four statements whatever the
        answer, so an unknown, another tenant's and a revoked twin cost the same; it is kept
        per (twin, tenant) while the registry version it was read at holds (every change to a
        twin or its consent bumps that version), so a repeat check costs one statement
        whatever the answer. A generation checks twice (admission and before delivery)."""
        at = _aware(at)
        version = self.registry_version()
        key = (twin_id, tenant_id)
        with self._consent_lock:
            cached = self._consent_facts.get(key)
            if cached is not None and cached[0] == version:
                self._consent_facts.move_to_end(key)
                facts = cached[1]
            else:
                facts = None
        if facts is None:
            facts = self._read_consent_facts(twin_id, tenant_id)  # read after the version: never older than it
            with self._consent_lock:
                self._consent_facts[key] = (version, facts)
                self._consent_facts.move_to_end(key)
                while len(self._consent_facts) > CONSENT_FACTS_CACHED:
                    self._consent_facts.popitem(last=False)
        return facts.decide(tenant_id, use, at)

    def _read_consent_facts(self, twin_id: str, tenant_id: str) -> "_ConsentFacts":
        with self._session() as s:
            twin = s.execute(select(TwinRow.deleted, TwinRow.revoked_at).where(TwinRow.id == twin_id)).first()
            signed = s.scalars(select(ConsentRow).where(
                ConsentRow.twin_id == twin_id, ConsentRow.signed_at.is_not(None)
            ).order_by(ConsentRow.version.desc())).all()
            tenants: dict[int, set[str]] = {row.id: set() for row in signed}
            for consent_id, tenant in s.execute(select(ConsentTenantRow.consent_id, ConsentTenantRow.tenant_id).where(
                    ConsentTenantRow.consent_id.in_([row.id for row in signed] or [-1]))):
                tenants[consent_id].add(tenant)
            named = s.scalar(select(func.count()).select_from(ConsentTenantRow).join(
                ConsentRow, ConsentRow.id == ConsentTenantRow.consent_id).where(
                ConsentRow.twin_id == twin_id, ConsentTenantRow.tenant_id == tenant_id)) > 0
        return _ConsentFacts(
            exists=twin is not None,
            deleted=bool(twin is not None and twin.deleted),
            revoked_at=None if twin is None or twin.revoked_at is None else _aware(twin.revoked_at),
            signed=tuple(_consent(row, tenants[row.id]) for row in signed),
            tenant_named=named,
        )

    @staticmethod
    def _tenants_of(s: Session, consent_id: int) -> list[str]:
        return list(s.scalars(select(ConsentTenantRow.tenant_id).where(ConsentTenantRow.consent_id == consent_id)))

    # -- watermark index ------------------------------------------------------------------

    def index_watermarks(self, marks: Iterable[tuple[str, str, str, str | None, int]], *,
                         now: datetime | None = None) -> int:
        """Index delivered images: (watermark_id, generation_id, tenant_id, twin_id, image_index)
        each. Rows are only added; a watermark id already indexed is refused (ids are random
        64-bit values: a repeat means a bug, not a collision to paper over)."""
        now = _aware(now)
        rows = [{"watermark_id": w, "generation_id": g, "tenant_id": t, "twin_id": tw, "image_index": i, "created_at": now}
                for w, g, t, tw, i in marks]
        if not rows:
            return 0
        with self._session() as s, s.begin():
            s.execute(insert(WatermarkRow), rows)  # one INSERT, no unit of work: on every delivery's path
        return len(rows)

    def find_watermark(self, watermark_id: str) -> WatermarkInfo | None:
        """The delivered image with this watermark id (one primary-key lookup), or None."""
        if not isinstance(watermark_id, str) or len(watermark_id) != 16:
            return None
        with self._session() as s:
            row = s.get(WatermarkRow, watermark_id.lower())
            if row is None:
                return None
            return WatermarkInfo(row.watermark_id, row.generation_id, row.tenant_id, row.twin_id, row.image_index,
                                 row.created_at)

    # -- idempotency ----------------------------------------------------------------------

    def idempotency_get(
        self, tenant_id: str, key: str, req_hash: str, *, now: datetime | None = None
    ) -> IdempotentResponse | None:
        """The stored response for (tenant, key), None when absent or expired. Raises
        `IdempotencyConflict` when the key was used with a different request hash."""
        _check_key(key)
        now = _aware(now)
        with self._session() as s:
            row = s.scalars(
                select(IdempotencyRow).where(IdempotencyRow.tenant_id == tenant_id, IdempotencyRow.key == key)
            ).first()
            if row is None or row.expires_at <= now:
                return None
            if row.request_hash != req_hash:
                raise IdempotencyConflict("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
            return IdempotentResponse(row.status_code, row.response, row.created_at, row.expires_at)

    def idempotency_put(
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
        _check_key(key)
        now = _aware(now)
        with self._session() as s, s.begin():
            s.execute(
                delete(IdempotencyRow).where(
                    IdempotencyRow.tenant_id == tenant_id, IdempotencyRow.key == key, IdempotencyRow.expires_at <= now
                )
            )
            row = IdempotencyRow(
                tenant_id=tenant_id,
                key=key,
                request_hash=req_hash,
                response=response,
                status_code=status_code,
                created_at=now,
                expires_at=now + ttl,
            )
            try:
                with s.begin_nested():
                    s.add(row)
            except IntegrityError:
                existing = s.scalars(
                    select(IdempotencyRow).where(IdempotencyRow.tenant_id == tenant_id, IdempotencyRow.key == key)
                ).one()
                if existing.request_hash != req_hash:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was used with a different request body", field="Idempotency-Key"
                    ) from None
                row = existing
            return IdempotentResponse(row.status_code, row.response, row.created_at, row.expires_at)

    def purge_expired_idempotency(self, *, now: datetime | None = None) -> int:
        with self._session() as s, s.begin():
            result = s.execute(delete(IdempotencyRow).where(IdempotencyRow.expires_at <= _aware(now)))
            return result.rowcount or 0


def check_idempotency_key(key: str | None) -> str | None:
    """An `Idempotency-Key` header's value when usable (1-255 characters); an absent header
    (None) passes through."""
    return None if key is None else _check_key(key)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidRequest(f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} characters", field="Idempotency-Key")
    return key


def _twin_info(row: TwinRow) -> TwinInfo:
    return TwinInfo(
        id=row.id,
        display_name=row.display_name,
        adapter_key=row.adapter_key,
        adapter_sha256=row.adapter_sha256,
        rank=row.rank,
        deleted=row.deleted,
        revision=row.revision,
        revoked_at=row.revoked_at,
    )


def _consent(row: ConsentRow, tenants: Iterable[str]) -> ConsentRecord:
    return ConsentRecord(
        id=row.id,
        twin_id=row.twin_id,
        version=row.version,
        tenants=frozenset(tenants),
        uses=tuple(row.uses),
        territories=tuple(row.territories),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        pay_rate_ref=row.pay_rate_ref,
        excluded_categories=tuple(row.excluded_categories),
        included_categories=tuple(row.included_categories),
        deny_terms=tuple(row.deny_terms),
        recorded_by=row.recorded_by,
        signed_at=row.signed_at,
        review_unverified_garments=bool(row.review_unverified_garments),
    )


