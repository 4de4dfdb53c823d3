"""The tenants repository: tenants and their API keys.

Owns: creating, listing and disabling tenants; minting API keys (scopes, limits, a talent
key's twins), authenticating a bearer token, finding a key still usable for earlier work,
listing and revoking keys, and `key_verifiers` (what the in-memory key index holds). Must
never return ORM rows (callers get frozen dataclasses), never log or store a plaintext
secret (only `create_api_key` returns the token, once), and never change a tenant or key
without bumping the registry version in the same transaction.

Authentication costs the same whatever the answer: an unknown key id still costs one HMAC,
so timing does not tell which ids exist. `last_used_at` is written at most once a minute
(bookkeeping, not a version change). Timestamps default to the database's clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from service.errors import InvalidRequest, TwinNotFound
from service.registry import keys
from service.registry.db import Database, strings
from service.registry.errors import AlreadyExists, TenantNotFound
from service.registry.models import ApiKeyRow, TenantRow, TwinRow

SCOPES = frozenset({"generate", "verify", "admin", "talent", "licensing", "representative", "guardian", "usage"})
# A talent key is one person's: it names their twins, reads their usage and decides their
# licences, as the person, or as their recorded representative or a minor's guardian (the
# `representative` and `guardian` scopes say which); it holds no scope that renders.
TALENT_COMPATIBLE = frozenset({"talent", "verify", "representative", "guardian"})
LAST_USED_RESOLUTION = timedelta(seconds=60)  # authenticate writes last_used_at at most this often
_DUMMY_SALT = b"\0" * keys.SALT_BYTES
_DUMMY_HASH = keys.hash_secret(_DUMMY_SALT, "x")


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    requests_per_minute: int
    max_concurrent_jobs: int
    twin_ids: frozenset[str] | None = None  # a talent key's twins; None: not restricted

    @classmethod
    def of(cls, row: ApiKeyRow) -> "ApiKeyInfo":
        return cls(row.id, row.tenant_id, frozenset(row.scopes.split(",")), row.requests_per_minute,
                   row.max_concurrent_jobs, None if row.twin_ids is None else frozenset(row.twin_ids))


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


class Tenants:
    def __init__(self, db: Database | Engine):
        self.db = Database.of(db)

    # -- tenants --------------------------------------------------------------------------

    def create_tenant(self, tenant_id: str, name: str, *, now: datetime | None = None) -> None:
        if not tenant_id or len(tenant_id) > 64 or not all(c.isalnum() or c in "-_" for c in tenant_id):
            raise InvalidRequest("tenant id must be 1-64 letters, digits, '-' or '_'", field="tenant_id")
        with self.db.session() as s, s.begin():
            if s.get(TenantRow, tenant_id) is not None:
                raise AlreadyExists(f"tenant {tenant_id!r} already exists", code="tenant_exists")
            s.add(TenantRow(id=tenant_id, name=name, created_at=self.db.at(now), disabled=False))
            self.db.bump_version(s)

    def get_tenant(self, tenant_id: str) -> TenantInfo | None:
        with self.db.session() as s:
            row = s.get(TenantRow, tenant_id)
            return None if row is None else TenantInfo(row.id, row.name, row.disabled, row.created_at)

    def list_tenants(self) -> list[TenantInfo]:
        with self.db.session() as s:
            rows = s.scalars(select(TenantRow).order_by(TenantRow.id)).all()
            return [TenantInfo(r.id, r.name, r.disabled, r.created_at) for r in rows]

    def set_tenant_disabled(self, tenant_id: str, disabled: bool) -> None:
        with self.db.session() as s, s.begin():
            row = s.get(TenantRow, tenant_id)
            if row is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            row.disabled = disabled
            self.db.bump_version(s)

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
        twins = None if twin_ids is None else strings(twin_ids, "twin_ids")
        if ("talent" in wanted) != bool(twins):
            raise InvalidRequest("a 'talent' key needs twin_ids, and only a talent key takes them", field="twin_ids")
        if twins and not wanted <= TALENT_COMPATIBLE:
            raise InvalidRequest("a talent key may hold only the 'talent', 'verify', 'representative' and 'guardian' "
                                 "scopes", field="scopes")
        if wanted & {"representative", "guardian"} and "talent" not in wanted:
            raise InvalidRequest("'representative' and 'guardian' mark a talent key", field="scopes")
        if {"representative", "guardian"} <= wanted:
            raise InvalidRequest("a key acts as the representative or as the guardian, not both", field="scopes")
        if requests_per_minute < 1 or max_concurrent_jobs < 1:
            raise InvalidRequest("rate limits must be positive", field="requests_per_minute")
        minted = keys.mint()
        with self.db.session() as s, s.begin():
            if s.get(TenantRow, tenant_id) is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            for twin_id in twins or ():
                if s.get(TwinRow, twin_id) is None:
                    raise TwinNotFound(f"no twin {twin_id!r}", field="twin_ids")
            s.add(ApiKeyRow(id=minted.key_id, tenant_id=tenant_id, name=name, salt=minted.salt,
                            secret_hash=minted.secret_hash, scopes=",".join(sorted(wanted)),
                            requests_per_minute=requests_per_minute, max_concurrent_jobs=max_concurrent_jobs,
                            created_at=self.db.at(now), twin_ids=twins))
            self.db.bump_version(s)
        return minted.key_id, minted.token

    def authenticate(self, token: str, *, now: datetime | None = None) -> ApiKeyInfo | None:
        """The key a bearer token names, or None (malformed, unknown, wrong secret, revoked,
        tenant disabled). The secret comparison is constant-time; an unknown key id still
        costs one HMAC so timing does not tell which ids exist."""
        parsed = keys.parse(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = self.db.at(now)
        with self.db.reading() as conn:  # every request's lookup: one statement, never queued behind a write
            row = conn.execute(select(ApiKeyRow.__table__, TenantRow.disabled.label("tenant_disabled"))
                               .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id, isouter=True)
                               .where(ApiKeyRow.id == key_id)).first()
        if row is None:
            keys.verify(_DUMMY_SALT, _DUMMY_HASH, secret)
            return None
        if not keys.verify(row.salt, row.secret_hash, secret):
            return None
        if row.revoked_at is not None and row.revoked_at <= now:
            return None
        if row.tenant_disabled is None or row.tenant_disabled:  # no tenant row, or disabled
            return None
        info = ApiKeyInfo.of(row)
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            self._touch(key_id, now)
        return info

    def _touch(self, key_id: str, now: datetime) -> None:
        """Usage bookkeeping (not a registry version change), at most once a resolution: a
        lost update on a power loss costs nothing but a minute of `last_used_at`."""
        with self.db.ephemeral() as conn:
            conn.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).where(
                (ApiKeyRow.last_used_at.is_(None)) | (ApiKeyRow.last_used_at <= now - LAST_USED_RESOLUTION))
                .values(last_used_at=now))

    def active_key(self, key_id: str, *, now: datetime | None = None) -> ApiKeyInfo | None:
        """A key by id while it is usable (not revoked, tenant enabled): for work a key
        submitted earlier, such as a job's items, which must stop when the key does."""
        now = self.db.at(now)
        with self.db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None or (row.revoked_at is not None and row.revoked_at <= now):
                return None
            tenant = s.get(TenantRow, row.tenant_id)
            if tenant is None or tenant.disabled:
                return None
            return ApiKeyInfo.of(row)

    def key_verifiers(self, *, now: datetime | None = None) -> dict[str, tuple[bytes, bytes]]:
        """key id -> (salt, secret hash) of every usable key (not revoked, tenant enabled): what
        an in-memory check needs to tell a valid token from a forged one without a query."""
        now = self.db.at(now)
        with self.db.session() as s:
            rows = s.execute(select(ApiKeyRow.id, ApiKeyRow.salt, ApiKeyRow.secret_hash, ApiKeyRow.revoked_at)
                             .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
                             .where(TenantRow.disabled.is_(False)))
            return {key_id: (bytes(salt), bytes(hashed)) for key_id, salt, hashed, revoked in rows
                    if revoked is None or revoked > now}

    def list_keys(self, tenant_id: str | None = None) -> list[KeyListing]:
        """Keys (all, or one tenant's), oldest first; ids, scopes and limits only."""
        with self.db.session() as s:
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
        with self.db.session() as s, s.begin():
            row = s.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = self.db.at(now)
            self.db.bump_version(s)
            return True
