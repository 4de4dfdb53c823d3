"""One handle on the registry's tenant, twin, consent and idempotency repositories.

Owns: composing `Tenants` (`.tenants`), `Twins` (`.twins`), `Consent` (`.consent`) and
`IdempotencyKeys` (`.idempotency`), `RateLimits` (`.limits`), `Persons` (`.persons`) and `Licences`
(`.licences`) over one `Database` (`.db`, `.engine`), and naming each of
their operations on the handle itself (`registry.get_twin` is `registry.twins.get_twin`;
`registry.idempotency_get` is `registry.idempotency.get`; `registry.registry_version` is
`registry.db.version`), so the one object that services and tests hold reaches them all.
Must never hold a query or a rule of its own: code that needs one repository holds (or
names) that repository. The job queue's handle is `service.registry.job_store.JobStore`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from service.registry.consent import Consent
from service.registry.db import Database, Handle
from service.registry.idempotency import IdempotencyKeys
from service.registry.limits import RateLimits
from service.registry.persons import Persons
from service.registry.tenants import Tenants
from service.registry.twins import Twins

_ROUTES: dict[str, tuple[str, str]] = {
    **{name: ("tenants", name) for name in (
        "create_tenant", "get_tenant", "list_tenants", "set_tenant_disabled", "create_api_key", "authenticate",
        "active_key", "key_verifiers", "list_keys", "revoke_key")},
    **{name: ("twins", name) for name in (
        "put_twin", "twins_with_adapter", "get_twin", "list_twins", "revoked_twins", "revoke_twin", "revoke_likeness",
        "index_watermarks", "find_watermark")},
    **{name: ("consent", name) for name in (
        "add_consent_version", "amend_consent", "sign_consent", "consent_history", "current_consent", "check_consent")},
    "idempotency_get": ("idempotency", "get"),
    "idempotency_put": ("idempotency", "put"),
    "purge_expired_idempotency": ("idempotency", "purge_expired"),
    "registry_version": ("db", "version"),
    "spend_rate_limit": ("limits", "spend"),
}


class Registry(Handle):
    routes = _ROUTES

    def __init__(self, db: Database | Engine):
        self.db = Database.of(db)  # the engine, sessions and clock shared with the job repositories
        self.engine = self.db.engine
        self.tenants = Tenants(self.db)
        self.twins = Twins(self.db)
        self.consent = Consent(self.db)
        self.idempotency = IdempotencyKeys(self.db)
        self.limits = RateLimits(self.db)  # fleet-wide rate limits (GCRA rows)
        self.persons = Persons(self.db)  # who each twin shows, and the keys that sign for them
        self.licences = self.consent.licences  # brands' licences the persons decide (the decision reads them)
