"""One handle on the job queue's three repositories, for callers that need more than one.

Owns: composing `Jobs` (`.jobs`), `Leases` (`.leases`), `Deliveries` (`.delivery`) and
`ItemDeliveries` (`.retries`) over one `Database`, and naming each of their operations on the handle itself (`store.lease_items`
is `store.leases.lease_items`; `store.deliveries` is `store.delivery.log`), so one object can
be passed where the whole queue is meant (tests, the catalogue's composition). Must never
hold a query or a rule of its own: a caller that needs one repository holds that repository.
"""

from __future__ import annotations

from sqlalchemy import Engine

from service.registry.db import Database, Handle
from service.registry.deliveries import Deliveries
from service.registry.item_deliveries import ItemDeliveries
from service.registry.jobs import Jobs
from service.registry.leases import Leases

_ROUTES: dict[str, tuple[str, str]] = {
    **{name: ("jobs", name) for name in (
        "create_job", "get_job", "open_jobs", "request_cancel", "list_jobs", "count_items", "purge_finished",
        "awaiting_items", "require_review", "decide_items", "job_page", "get_item")},
    **{name: ("leases", name) for name in (
        "lease_items", "runnable_tenants", "renew_items", "holds", "holding", "finish_item", "finish_items",
        "release_items", "reap_canceled")},
    **{name: ("delivery", name) for name in (
        "tenant_delivery", "set_tenant_delivery", "presets", "put_preset", "enqueue_event", "claim_due_delivery",
        "record_attempt", "redeliver")},
    "deliveries": ("delivery", "log"),
}


class JobStore(Handle):
    routes = _ROUTES

    def __init__(self, db: Database | Engine):
        self.db = Database.of(db)
        self.engine = self.db.engine
        self.jobs = Jobs(self.db)
        self.leases = Leases(self.db)
        self.delivery = Deliveries(self.db)
        self.retries = ItemDeliveries(self.db)  # S3 deliveries being retried
