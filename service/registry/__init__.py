"""The registry database: tenants, API keys, twins, consent, idempotency keys, registry version.

Owns: the SQLAlchemy models (`models`), the engine factory (`db`), the Alembic migrations
(`migrations/`, run through `migrate.upgrade` / `migrate.downgrade`), API-key token format
and hashing (`keys`) and the `Registry` repository (`repository`), which is the only code
that reads or writes these tables. Must never import bentoml, `service.app` or any layer
above it (tenancy, jobs, engine); callers get plain frozen dataclasses, never ORM rows.
"""

from service.registry.db import default_sqlite_url, make_engine
from service.registry.migrate import downgrade, upgrade
from service.registry.repository import (
    ApiKeyInfo,
    ConsentDecision,
    ConsentRecord,
    IdempotentResponse,
    Registry,
    TwinInfo,
    request_hash,
)

__all__ = [
    "ApiKeyInfo",
    "ConsentDecision",
    "ConsentRecord",
    "IdempotentResponse",
    "Registry",
    "TwinInfo",
    "default_sqlite_url",
    "downgrade",
    "make_engine",
    "request_hash",
    "upgrade",
]
