"""What the job queue's repositories hand out: plain frozen records, typed errors, shared predicates.

Owns: the records of the queue (`Job`, `JobItem`, `ItemLease`, `ItemFinish`, `TenantDelivery`,
`Delivery`, `DeliveryClaim`), their typed errors (`job_not_found`, `item_not_found`,
`delivery_not_found`, `not_awaiting_review`, `not_redeliverable`), the item and job states, turning ORM rows into records, and the SQL
predicates that `jobs`, `leases` and `deliveries` share (an item nobody holds; a job still
open). Must never open a session or hold a query of its own: the repositories do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_

from service.errors import AtelierError
from service.registry.models import JobItemRow, JobRow, WebhookDeliveryRow

FINISHED = ("completed", "failed", "canceled")
OPEN = ("queued", "running")
ITEM_STATUSES = ("pending", "running", "awaiting_review", "delivering", "done", "rejected", "failed", "canceled")
# A job with such an item is not finished (`delivering`: rendered, its S3 delivery being retried).
UNDECIDED = ("pending", "running", "awaiting_review", "delivering")
PAGE = 256
# A result handed to `Leases.finish_items` under this key is a delivery to retry, not a result:
# {"staged": the delivery waiting (JSON), "retry_at": datetime, "deadline": datetime, "error": str}.
PENDING_DELIVERY = "pending_delivery"


class JobNotFound(AtelierError):
    status = 404
    code = "job_not_found"


class TooManyOpenJobs(AtelierError):
    """The key already has `open_jobs` queued or running jobs: its `max_concurrent_jobs`."""

    status = 429
    code = "too_many_concurrent"

    def __init__(self, open_jobs: int, limit: int):
        super().__init__(f"this API key already has {open_jobs} jobs queued or running (limit {limit})")
        self.open_jobs, self.limit = open_jobs, limit

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


class ItemNotFound(AtelierError):
    status = 404
    code = "item_not_found"


class DeliveryNotFound(AtelierError):
    status = 404
    code = "delivery_not_found"


class NotAwaitingReview(AtelierError):
    status = 409
    code = "not_awaiting_review"


class NotRedeliverable(AtelierError):
    """Only an item waiting to deliver, or failed with `delivery_failed` with its images kept, can be redelivered."""

    status = 409
    code = "not_redeliverable"


@dataclass(frozen=True)
class TenantDelivery:
    output_target: str = "inline"
    url_expiry_s: int = 3600
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class JobItem:
    index: int
    spec: dict
    status: str  # pending | running | awaiting_review | done | rejected | failed | canceled
    result: dict | None
    error: dict | None
    lease_token: int = 0
    attempts: int = 0
    # A delivery being retried (or given up): {attempts, next_attempt_at, deadline, last_error}.
    delivery: dict | None = None


@dataclass(frozen=True)
class DeliveryClaim:
    """A due delivery retry that one gateway claimed: `attempt` fences it (only the claim that
    set the item's current `deliver_attempts` may record its outcome)."""

    job_id: str
    index: int
    tenant_id: str
    output_target: str
    webhook_per_item: bool
    spec: dict
    staged: dict
    attempt: int
    deadline: datetime


@dataclass(frozen=True)
class ItemLease:
    """One leased item and what rendering and delivering it needs. `token` fences it: only
    the holder of the current token may record (and so deliver) the item."""

    job_id: str
    index: int
    token: int
    tenant_id: str
    key_id: str
    spec: dict
    priority: int
    output_target: str
    url_expiry_s: int
    webhook_per_item: bool
    lease_until: datetime
    attempt: int
    review: bool = False  # hold the images for review instead of delivering them


@dataclass(frozen=True)
class Job:
    id: str
    tenant_id: str
    key_id: str
    status: str
    priority: int
    items_total: int
    items_done: int
    items_failed: int
    output_target: str
    url_expiry_s: int
    webhook_per_item: bool
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    items: tuple[JobItem, ...] = ()
    review: bool = False
    items_rejected: int = 0
    title: str | None = None  # what the job was submitted as (0012)


@dataclass(frozen=True)
class ItemFinish:
    """`recorded` False: the lease was lost, nothing was recorded, and the caller discards its
    result and must not deliver it. `job_closed`: the job this call closed (its `job.completed`
    is queued), else None."""

    recorded: bool
    job_closed: Job | None = None


@dataclass(frozen=True)
class Delivery:
    id: str
    tenant_id: str
    job_id: str | None
    event_type: str
    url: str
    payload: dict
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    log: tuple[dict, ...]
    created_at: datetime
    delivered_at: datetime | None


def job_of(row: JobRow, items: list[JobItemRow] | None = None) -> Job:
    return Job(
        row.id, row.tenant_id, row.key_id, row.status, row.priority, row.items_total, row.items_done,
        row.items_failed, row.output_target, row.url_expiry_s, row.webhook_per_item, row.cancel_requested,
        row.created_at, row.started_at, row.finished_at,
        tuple(item_of(i) for i in items or ()), bool(row.review), row.items_rejected or 0, row.title,
    )


def item_of(row: JobItemRow) -> JobItem:
    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    delivery = None
    if row.deliver_attempts:
        delivery = {"attempts": row.deliver_attempts, "deadline": iso(row.deliver_by), "last_error": row.deliver_error,
                    "next_attempt_at": iso(row.deliver_after) if row.status == "delivering" else None}
    return JobItem(row.idx, row.spec, row.status, row.result, row.error, row.lease_token or 0, row.attempts or 0,
                   delivery)


def delivery_of(row: WebhookDeliveryRow) -> Delivery:
    return Delivery(
        row.id, row.tenant_id, row.job_id, row.event_type, row.url, row.payload, row.status, row.attempts,
        row.next_attempt_at, row.last_status_code, row.last_error, tuple(row.log or ()), row.created_at,
        row.delivered_at,
    )


def runnable(now: datetime):
    """An item nobody holds: pending, or running under a lease that lapsed (its holder died)."""
    return or_(JobItemRow.status == "pending",
               and_(JobItemRow.status == "running", JobItemRow.lease_until < now))


def job_open():
    return and_(JobRow.status.in_(OPEN), JobRow.cancel_requested.is_(False))


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def locking(postgres: bool, query, *of):
    """`FOR UPDATE SKIP LOCKED` on PostgreSQL: rows another transaction holds are passed over,
    not waited for. SQLite has no row locks: there the compare-and-set decides."""
    return query.with_for_update(skip_locked=True, of=of or None) if postgres else query
