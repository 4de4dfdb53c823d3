"""The registry's tables as SQLAlchemy 2.x typed declarative models.

Owns: table and column definitions, constraint names (one naming convention, so migrations
are deterministic on SQLite and PostgreSQL) and the UTC timestamp column type. Must never
hold query logic (that is the repositories') nor be used to create tables outside a migration.

Every timestamp is timezone-aware UTC in Python; SQLite stores it as naive UTC text, and
PostgreSQL as `timestamptz`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("registry timestamps must be timezone-aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public key id
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[str] = mapped_column(String(200))  # sorted comma list
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    max_concurrent_jobs: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    twin_ids: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)  # a talent key's twins (0005)


class PersonRow(Base):
    """The person a twin shows (migration 0011): who owns the likeness and signs its licences.
    `public_key` (raw Ed25519, base64) checks the person's acceptances; a representative
    (agency or counsel) may act for them, recorded as such; a minor's licences also need the
    guardian's acceptance (`guardian_public_key`)."""

    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    representative: Mapped[str | None] = mapped_column(String(200), nullable=True)
    minor: Mapped[bool] = mapped_column(Boolean, default=False)
    guardian: Mapped[str | None] = mapped_column(String(200), nullable=True)
    estate_contact: Mapped[str | None] = mapped_column(String(500), nullable=True)
    public_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    representative_public_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    guardian_public_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TwinRow(Base):
    __tablename__ = "twins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # 0011: the twin's person (service.registry.persons keeps it pointing at a person: a plain
    # column, so that SQLite adds it without copying the table)
    person_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    adapter_key: Mapped[str] = mapped_column(String(1024))
    adapter_sha256: Mapped[str] = mapped_column(String(64), index=True)  # indexed in 0004: one likeness, one set of bytes
    rank: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentRow(Base):
    __tablename__ = "consent_records"
    __table_args__ = (UniqueConstraint("twin_id", "version", name="uq_consent_records_twin_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    twin_id: Mapped[str] = mapped_column(ForeignKey("twins.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    uses: Mapped[list[str]] = mapped_column(JSON)
    territories: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pay_rate_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    excluded_categories: Mapped[list[str]] = mapped_column(JSON)
    included_categories: Mapped[list[str]] = mapped_column(JSON)
    deny_terms: Mapped[list[str]] = mapped_column(JSON)
    recorded_by: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # None = draft
    # 0007: items whose garment images cannot be verified are held for a person's review.
    review_unverified_garments: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LicenceRow(Base):
    """A brand's licence to use a person's twin (migration 0011): requested by a tenant key with
    the `licensing` scope, accepted or declined by the person (or their representative, and a
    minor's guardian) with an Ed25519 signature over its canonical terms (`sha256` is their
    hash), revoked by the person at any time. Terms never change after the request: a wider
    scope is a new request."""

    __tablename__ = "licences"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    twin_id: Mapped[str] = mapped_column(ForeignKey("twins.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    terms: Mapped[dict] = mapped_column(JSON)  # the canonical licence, as signed
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # requested | accepted | declined | revoked
    requested_by: Mapped[str] = mapped_column(String(64))  # the brand key's id
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LicenceSignatureRow(Base):
    """One signature over a licence's canonical terms: the person's, their representative's or
    a minor's guardian's (`role`), with the public key it verifies under."""

    __tablename__ = "licence_signatures"

    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)  # person | representative | guardian
    decision: Mapped[str] = mapped_column(String(16))  # accept | decline
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentTenantRow(Base):
    """Association: which tenants a consent record allows."""

    __tablename__ = "consent_tenants"

    consent_id: Mapped[int] = mapped_column(ForeignKey("consent_records.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_idempotency_keys_tenant_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict | list | None] = mapped_column(JSON, nullable=True)
    status_code: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class TenantSettingsRow(Base):
    """Per-tenant delivery: where job images go and where job events are posted."""

    __tablename__ = "tenant_settings"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    output_target: Mapped[str] = mapped_column(String(1024), default="inline")  # "inline" | "s3://bucket/prefix"
    url_expiry_s: Mapped[int] = mapped_column(Integer, default=3600)
    webhook_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)  # needed to sign: not hashable
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScenePresetRow(Base):
    """A tenant's own scene preset (the built-in ones live in code)."""

    __tablename__ = "scene_presets"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_scene_presets_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(String(500))
    negative_prompt: Mapped[str | None] = mapped_column(String(500), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued|running|completed|failed|canceled
    priority: Mapped[int] = mapped_column(Integer)
    items_total: Mapped[int] = mapped_column(Integer)
    items_done: Mapped[int] = mapped_column(Integer, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, default=0)
    output_target: Mapped[str] = mapped_column(String(1024))
    url_expiry_s: Mapped[int] = mapped_column(Integer)
    webhook_per_item: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Review (0005): items are held as `awaiting_review` until approved (delivered) or rejected.
    review: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    items_rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The job's title (0012): what Studio and the status name it by; null names it by its id.
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)


class JobItemRow(Base):
    __tablename__ = "job_items"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    spec: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|running|done|failed|canceled
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The item's lease (service.registry.leases.lease_items): who renders it, until when, and the
    # fencing token that only goes up; a holder whose token is no longer current lost it.
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_token: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Delivery retries (0009): an item whose S3 delivery failed is `delivering` until it is
    # delivered or its deadline passes; `staged` is the delivery waiting to be made.
    deliver_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    deliver_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deliver_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    deliver_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    staged: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class WebhookDeliveryRow(Base):
    """One webhook message and its delivery state; `id` is the stable `webhook-id`."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    log: Mapped[list] = mapped_column(JSON)  # every attempt: {at, status_code, error, ms}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StudioSessionRow(Base):
    """A signed-in Studio browser (service.registry.sessions): the session id's sha256, never
    the id, and the API key's id, never the key."""

    __tablename__ = "studio_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WatermarkRow(Base):
    """One delivered image's watermark id and the generation it belongs to (0004): how
    /v1/verify resolves an image whose C2PA manifest was stripped."""

    __tablename__ = "watermarks"

    watermark_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    generation_id: Mapped[str] = mapped_column(String(32), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    twin_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image_index: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TwinLikenessRow(Base):
    """A twin's likeness fingerprint (0006, `service.twins.likeness`) and its likeness group:
    the twins an admin declared to be one person share `likeness_id` (a twin alone: its own id;
    issue 28's person id can replace it). Kept after the twin is revoked: near copies stay refused."""

    __tablename__ = "twin_likeness"

    twin_id: Mapped[str] = mapped_column(ForeignKey("twins.id", ondelete="CASCADE"), primary_key=True)
    likeness_id: Mapped[str] = mapped_column(String(64), index=True)
    scheme: Mapped[str] = mapped_column(String(32))  # the fingerprint's parameters; another scheme is recomputed
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)  # little-endian float32, unit length (or all zero)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegistryStateRow(Base):
    """One row (id 1): `version` goes up on every tenant, key, twin or consent change."""

    __tablename__ = "registry_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class RateLimitRow(Base):
    """One fleet-wide limit's GCRA state: `tat_us`, the theoretical arrival time of its next
    conforming request (microseconds since the Unix epoch). Derived state (migration 0008)."""

    __tablename__ = "rate_limits"

    bucket: Mapped[str] = mapped_column(String(96), primary_key=True)  # e.g. "rpm:<key id>"
    tat_us: Mapped[int] = mapped_column(BigInteger)


class AuditChainRow(Base):
    """One writer's hash chain of audit records (a gateway process from start to stop): the
    fleet's audit log is the set of chains (migration 0010). `size` and `last_hash` follow the
    last committed record; `heartbeat_at` says the writer is alive; `ended_at` is set by the
    writer at close, or by the gateway that adopts a chain whose writer died. `archived` is how
    many records sealed segments hold; `archiver`/`archiver_until` lease a dead writer's chain."""

    __tablename__ = "audit_chains"

    log_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    writer: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    archived: Mapped[int] = mapped_column(BigInteger, default=0)
    archiver: Mapped[str | None] = mapped_column(String(200), nullable=True)
    archiver_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditRecordRow(Base):
    """One audit record, committed before the gateway answers: `line` is its canonical JSON
    (hashed, signed and shipped exactly as stored); the other columns are copies of its fields
    that reports filter and count on (usage: `outcome`, `images`, `day`, `twin_id`, `tenant`,
    `use`, `consent_version`). Never updated, never deleted."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_tenant_ts", "tenant", "ts"),)  # one tenant's, newest first (0013)

    log_id: Mapped[str] = mapped_column(String(32), ForeignKey("audit_chains.log_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(32))
    day: Mapped[str] = mapped_column(String(10), index=True)
    event: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str | None] = mapped_column(String(128), nullable=True)
    twin_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    generation_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    images: Mapped[int | None] = mapped_column(Integer, nullable=True)
    use: Mapped[str | None] = mapped_column(String(64), nullable=True)
    consent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    licence_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # 0011: a signed licence's
    line: Mapped[str] = mapped_column(Text)


class AuditCheckpointRow(Base):
    """A signed tree head of one chain (canonical JSON in `body`), as shipped beside its segments."""

    __tablename__ = "audit_checkpoints"

    log_id: Mapped[str] = mapped_column(String(32), ForeignKey("audit_chains.log_id"), primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    body: Mapped[str] = mapped_column(Text)


__all__ = [
    "AuditChainRow",
    "AuditCheckpointRow",
    "AuditRecordRow",
    "LicenceRow",
    "LicenceSignatureRow",
    "PersonRow",
    "ApiKeyRow",
    "Base",
    "ConsentRow",
    "ConsentTenantRow",
    "IdempotencyRow",
    "JobItemRow",
    "JobRow",
    "RateLimitRow",
    "RegistryStateRow",
    "ScenePresetRow",
    "StudioSessionRow",
    "TenantRow",
    "TenantSettingsRow",
    "TwinLikenessRow",
    "TwinRow",
    "WatermarkRow",
    "WebhookDeliveryRow",
    "UTCDateTime",
]
