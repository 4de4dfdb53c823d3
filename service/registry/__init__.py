"""The registry database: tenants, API keys, twins, consent, idempotency keys, registry version,
catalogue jobs, item leases, deliveries and Studio sessions.

Owns: the SQLAlchemy models (`models`), the `Database` (`db`: engine, sessions, the one clock,
the version), the Alembic migrations (`migrations/`, run through `migrate.upgrade` /
`migrate.downgrade`), API-key token format and hashing (`keys`), and the repositories, which
are the only code that reads or writes these tables: `Tenants` (`tenants`: tenants and API
keys), `Twins` (`twins`: twins, likeness-level revocation, the watermark index; the likeness
table's queries are `likeness`), `Consent` (`consent`), `IdempotencyKeys` (`idempotency`),
`RateLimits` (`limits`: fleet-wide rate limits, one GCRA row per key),
`Jobs` (`jobs`), `Leases` (`leases`), `Deliveries` (`deliveries`), `ItemDeliveries`
(`item_deliveries`: S3 deliveries being retried) and `SessionStore`
(`sessions`); `Registry` (`repository`) is one handle on the first five and `JobStore`
(`job_store`) one on the three job repositories. Must never import bentoml, the gateway or
renderer services, or any layer above it (tenancy, jobs, engine); callers get plain frozen
dataclasses, never ORM rows.
"""

from service.registry.consent import Consent, ConsentDecision, ConsentRecord
from service.registry.db import Database, make_engine
from service.registry.deliveries import Deliveries
from service.registry.idempotency import IdempotencyKeys, IdempotentResponse, check_idempotency_key, request_hash
from service.registry.job_records import (
    Delivery,
    DeliveryClaim,
    DeliveryNotFound,
    ItemFinish,
    ItemLease,
    ItemNotFound,
    Job,
    JobItem,
    JobNotFound,
    NotAwaitingReview,
    NotRedeliverable,
    TenantDelivery,
    TooManyOpenJobs,
)
from service.registry.item_deliveries import ItemDeliveries
from service.registry.job_store import JobStore
from service.registry.jobs import Jobs
from service.registry.leases import Leases
from service.registry.limits import RateLimits
from service.registry.migrate import downgrade, ensure_schema, upgrade
from service.registry.repository import Registry
from service.registry.tenants import ApiKeyInfo, KeyListing, TenantInfo, Tenants
from service.registry.twins import TwinInfo, Twins, WatermarkInfo


class SchemaBehind(RuntimeError):
    """The database's schema is not the one this code needs (and migrating is off)."""


def open_registry(db_url: str, *, migrate: bool = True) -> Registry:
    """The registry at `db_url`, its schema brought to head first unless `migrate` is off.
    With migrations off (they run as a deploy step), a schema that is not at head refuses
    to open: serving against the wrong schema would fail request by request instead."""
    if migrate:
        ensure_schema(db_url)
    else:
        from service.registry.migrate import current_revision, head_revision

        current, head = current_revision(db_url), head_revision()
        if current != head:
            raise SchemaBehind(f"the registry schema is at {current or 'nothing'}, this service needs {head}: "
                               "run `atelier db upgrade` (or set ATELIER_DB_MIGRATE=1)")
    return Registry(make_engine(db_url))


__all__ = [
    "Database",
    "Deliveries",
    "Delivery",
    "DeliveryClaim",
    "DeliveryNotFound",
    "ItemDeliveries",
    "NotRedeliverable",
    "ItemFinish",
    "ItemLease",
    "ItemNotFound",
    "Job",
    "JobItem",
    "JobNotFound",
    "JobStore",
    "Jobs",
    "Leases",
    "NotAwaitingReview",
    "RateLimits",
    "TenantDelivery",
    "TooManyOpenJobs",
    "SchemaBehind",
    "open_registry",
    "ApiKeyInfo",
    "Consent",
    "ConsentDecision",
    "ConsentRecord",
    "IdempotencyKeys",
    "IdempotentResponse",
    "KeyListing",
    "Registry",
    "TenantInfo",
    "Tenants",
    "TwinInfo",
    "Twins",
    "WatermarkInfo",
    "check_idempotency_key",
    "downgrade",
    "ensure_schema",
    "make_engine",
    "request_hash",
    "upgrade",
]
