"""The job queue and its bookkeeping, in the registry database that every replica shares.

Owns: creating a job with its items; leasing runnable items one by one, each with a fencing
token (`lease_items`: highest priority first within a tenant, then oldest job, then lowest
index; `FOR UPDATE SKIP LOCKED` on PostgreSQL, compare-and-set on SQLite), renewing,
checking, finishing and releasing those leases; recording each item's outcome and the job's
progress, and closing a job (with its `job.completed` event, in the same transaction, once)
when no item is left to run; cancellation; paged reads of a job's items; per-tenant delivery
settings and scene presets; and the webhook delivery log. Must never render, upload or post
anything (that is the dispatcher's, `delivery`'s and `webhooks`'), never record an item for a
holder whose token is no longer current, never load a whole job's items to answer a read or a
lease, and never hand one tenant another tenant's job: every read by id is scoped to a tenant.
Fairness across tenants is `fairness`'s, not the store's.

Every timestamp goes through an injectable `now` (default: `utcnow()`), so tests drive the
clock. (`claim_next`, `renew`, `next_item`, `finish_job` and `finish_item(job_id, index)` are
the old whole-job lease, kept only until its callers are gone.)

Review (a job submitted with `review: true`): a finished item's images are held as
`awaiting_review` (its result holds them inline, never delivered) until `decide_items`
approves it (`done`, counted as done) or rejects it (`rejected`, its images dropped). A review
job closes once every item is decided, and its `job.completed` names the approved items and
their images, and the rejected ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from service.errors import AtelierError, InvalidRequest
from service.registry.models import JobItemRow, JobRow, ScenePresetRow, TenantSettingsRow, WebhookDeliveryRow

FINISHED = ("completed", "failed", "canceled")
OPEN = ("queued", "running")
ITEM_STATUSES = ("pending", "running", "awaiting_review", "done", "rejected", "failed", "canceled")
UNDECIDED = ("pending", "running", "awaiting_review")  # a job with such an item is not finished
GROUP_SCAN = 1024  # with `group_of`: how many further runnable items one lease looks at, at most
PAGE = 256


class JobNotFound(AtelierError):
    status = 404
    code = "job_not_found"


class ItemNotFound(AtelierError):
    status = 404
    code = "item_not_found"


class DeliveryNotFound(AtelierError):
    status = 404
    code = "delivery_not_found"


class NotAwaitingReview(AtelierError):
    status = 409
    code = "not_awaiting_review"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
class ItemFinish:
    """`recorded` False: the lease was lost, nothing was recorded, and the caller discards its
    result and must not deliver it. `job_closed`: the job this call closed (its `job.completed`
    is queued), else None."""

    recorded: bool
    job_closed: Job | None = None


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


def _job(row: JobRow, items: list[JobItemRow] | None = None) -> Job:
    return Job(
        row.id, row.tenant_id, row.key_id, row.status, row.priority, row.items_total, row.items_done,
        row.items_failed, row.output_target, row.url_expiry_s, row.webhook_per_item, row.cancel_requested,
        row.created_at, row.started_at, row.finished_at,
        tuple(_item(i) for i in items or ()), bool(row.review), row.items_rejected or 0,
    )


def _item(row: JobItemRow) -> JobItem:
    return JobItem(row.idx, row.spec, row.status, row.result, row.error, row.lease_token or 0, row.attempts or 0)


def _runnable(now: datetime):
    """An item nobody holds: pending, or running under a lease that lapsed (its holder died)."""
    return or_(JobItemRow.status == "pending",
               and_(JobItemRow.status == "running", JobItemRow.lease_until < now))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _job_open():
    return and_(JobRow.status.in_(OPEN), JobRow.cancel_requested.is_(False))


def _delivery(row: WebhookDeliveryRow) -> Delivery:
    return Delivery(
        row.id, row.tenant_id, row.job_id, row.event_type, row.url, row.payload, row.status, row.attempts,
        row.next_attempt_at, row.last_status_code, row.last_error, tuple(row.log or ()), row.created_at,
        row.delivered_at,
    )


class JobStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def _session(self) -> Session:
        return self._sessions()

    # -- jobs -----------------------------------------------------------------------------

    def create_job(self, tenant_id: str, key_id: str, items: list[dict], *, priority: int, output_target: str,
                   url_expiry_s: int, webhook_per_item: bool, job_id: str | None = None, review: bool = False) -> Job:
        now = utcnow()
        job_id = job_id or uuid.uuid4().hex
        with self._session() as s, s.begin():
            row = JobRow(
                id=job_id, tenant_id=tenant_id, key_id=key_id, status="queued", priority=priority,
                items_total=len(items), items_done=0, items_failed=0, output_target=output_target,
                url_expiry_s=url_expiry_s, webhook_per_item=webhook_per_item, cancel_requested=False,
                created_at=now, review=review, items_rejected=0,
            )
            s.add(row)
            s.flush()
            s.add_all(JobItemRow(job_id=job_id, idx=i, spec=spec, status="pending") for i, spec in enumerate(items))
            return _job(row)

    def get_job(self, tenant_id: str, job_id: str, *, with_items: bool = False) -> Job:
        """The tenant's job; another tenant's id reads as absent (404). `with_items` loads every
        item (results included): only for small jobs; pages come from `job_page`."""
        with self._session() as s:
            row = s.get(JobRow, job_id) if isinstance(job_id, str) and len(job_id) <= 32 else None
            if row is None or row.tenant_id != tenant_id:
                raise JobNotFound(f"no job {job_id!r}", field="job_id")
            items = s.scalars(select(JobItemRow).where(JobItemRow.job_id == job_id).order_by(JobItemRow.idx)).all() if with_items else []
            return _job(row, list(items))

    def open_jobs(self, key_id: str) -> int:
        """Queued or running jobs submitted with this key (its concurrent-jobs limit)."""
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(JobRow)
                            .where(JobRow.key_id == key_id, JobRow.status.in_(("queued", "running"))))

    def request_cancel(self, tenant_id: str, job_id: str, *, now: datetime | None = None) -> Job:
        """Stop a job: its pending items are canceled at once, running ones may finish, and once
        none is running the job closes as canceled (with its `job.completed`)."""
        self.get_job(tenant_id, job_id, with_items=False)
        now = now or utcnow()
        with self._session() as s, s.begin():
            row = s.get(JobRow, job_id, with_for_update=True)
            if row.status not in FINISHED:
                row.cancel_requested = True
                s.flush()
                self._settle(s, job_id, now)
        return self.get_job(tenant_id, job_id, with_items=False)

    def list_jobs(self, tenant_id: str, *, limit: int = 50) -> list[Job]:
        """The tenant's newest jobs, newest first (no items)."""
        with self._session() as s:
            rows = s.scalars(select(JobRow).where(JobRow.tenant_id == tenant_id)
                             .order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)).all()
            return [_job(r) for r in rows]

    def count_items(self, job_id: str, status: str) -> int:
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(JobItemRow)
                            .where(JobItemRow.job_id == job_id, JobItemRow.status == status))

    # -- review ---------------------------------------------------------------------------

    def awaiting_items(self, tenant_id: str, job_id: str, indexes: Sequence[int]) -> tuple[Job, list[JobItem]]:
        """The tenant's review job and the named items, each of which must await review (409
        `not_awaiting_review` otherwise: decided already, still rendering, or not a review job)."""
        with self._session() as s:
            row = self._tenant_job(s, tenant_id, job_id)
            if not row.review:
                raise NotAwaitingReview(f"job {job_id} was not submitted with review: true", field="job_id")
            items = {i.idx: i for i in s.scalars(select(JobItemRow).where(JobItemRow.job_id == job_id,
                                                                          JobItemRow.idx.in_(list(indexes))))}
            for index in indexes:
                if index not in items:
                    raise ItemNotFound(f"job {job_id!r} has no item {index!r}", field="items")
                if items[index].status != "awaiting_review":
                    raise NotAwaitingReview(f"item {index} is {items[index].status}, not awaiting review", field="items")
            return _job(row), [_item(items[i]) for i in indexes]

    def decide_items(self, tenant_id: str, job_id: str, decisions: dict[int, dict | None], *, approve: bool,
                     now: datetime | None = None) -> tuple[list[int], Job | None]:
        """Approve (`done`, with the delivered result given) or reject (`rejected`, its images
        dropped) items awaiting review, compare-and-set on that status, with the job's counters;
        close the job when every item is decided. Returns (the indexes this call decided, the
        job it closed or None); an item decided meanwhile by another reviewer is left out."""
        now = now or utcnow()
        decided: list[int] = []
        with self._session() as s, s.begin():
            self._tenant_job(s, tenant_id, job_id)
            for index in sorted(decisions):
                result = decisions[index]
                if not approve and result is not None:
                    result = {**result, "images": [], "rejected": True}
                if s.execute(
                    update(JobItemRow)
                    .where(JobItemRow.job_id == job_id, JobItemRow.idx == index, JobItemRow.status == "awaiting_review")
                    .values(status="done" if approve else "rejected", result=result, updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1:
                    decided.append(index)
            if decided:
                counter = JobRow.items_done if approve else JobRow.items_rejected
                s.execute(update(JobRow).where(JobRow.id == job_id).values({counter: counter + len(decided)})
                          .execution_options(synchronize_session=False))
            closed = self._settle(s, job_id, now) if decided else None
        return decided, closed

    # -- paged reads ----------------------------------------------------------------------

    @staticmethod
    def _tenant_job(s: Session, tenant_id: str, job_id: str) -> JobRow:
        row = s.get(JobRow, job_id) if isinstance(job_id, str) and len(job_id) <= 32 else None
        if row is None or row.tenant_id != tenant_id:
            raise JobNotFound(f"no job {job_id!r}", field="job_id")
        return row

    def job_page(self, tenant_id: str, job_id: str, *, offset: int, limit: int) -> tuple[Job, list[JobItem]]:
        """The tenant's job and its items `offset` .. `offset + limit - 1` by index: one page
        in memory (SQL LIMIT/OFFSET), never the whole job."""
        if not _is_int(offset) or offset < 0:
            raise InvalidRequest("offset must be an integer of at least 0", field="offset")
        if not _is_int(limit) or limit < 1:
            raise InvalidRequest("limit must be an integer of at least 1", field="limit")
        with self._session() as s:
            row = self._tenant_job(s, tenant_id, job_id)
            items = s.scalars(select(JobItemRow).where(JobItemRow.job_id == job_id)
                              .order_by(JobItemRow.idx).offset(offset).limit(limit)).all()
            return _job(row), [_item(i) for i in items]

    def get_item(self, tenant_id: str, job_id: str, index: int) -> JobItem:
        """One item of the tenant's job; another tenant's job reads as absent (`job_not_found`),
        an index the job does not have is `item_not_found`."""
        with self._session() as s:
            self._tenant_job(s, tenant_id, job_id)
            row = s.get(JobItemRow, (job_id, index)) if _is_int(index) and 0 <= index < 2**31 else None
            if row is None:
                raise ItemNotFound(f"job {job_id!r} has no item {index!r}", field="index")
            return _item(row)

    # -- item leases ----------------------------------------------------------------------

    def _locking(self, query, *of):
        """`FOR UPDATE SKIP LOCKED` on PostgreSQL: rows another transaction holds are passed
        over, not waited for. SQLite has no row locks: there the compare-and-set decides."""
        return query.with_for_update(skip_locked=True, of=of or None) if self._pg else query

    def lease_items(self, owner: str, lease_s: float, *, tenant_id: str | None = None, limit: int = 1,
                    group_of: Callable[[dict], Hashable] | None = None,
                    now: datetime | None = None) -> list[ItemLease]:
        """Lease up to `limit` runnable items of ONE job: the tenant's (any tenant's when None)
        job of highest priority, then the oldest, from its lowest index on. With `group_of`,
        only items whose `group_of(spec)` equals the first item's. Runnable: pending, or
        running under a lapsed lease, in a job neither finished nor being canceled. Each item
        leased gets the next fencing token; two owners never get the same item and token."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        now = now or utcnow()
        self.reap_canceled(now)
        for _ in range(3):  # every candidate lost to another owner's compare-and-set: look again
            with self._session() as s, s.begin():
                leases, found = self._lease(s, owner, now + timedelta(seconds=lease_s), tenant_id, limit, group_of, now)
            if leases or not found:
                return leases
        return []

    def _lease(self, s: Session, owner: str, until: datetime, tenant_id: str | None, limit: int,
               group_of: Callable[[dict], Hashable] | None, now: datetime) -> tuple[list[ItemLease], bool]:
        cols = (JobItemRow.job_id, JobItemRow.idx, JobItemRow.spec, JobItemRow.status, JobItemRow.lease_token,
                JobItemRow.attempts)
        # 1. The first runnable item in queue order (locked on PostgreSQL): it names the job.
        query = (select(*cols).join(JobRow, JobRow.id == JobItemRow.job_id).where(_runnable(now), _job_open())
                 .order_by(JobRow.priority.desc(), JobRow.created_at, JobRow.id, JobItemRow.idx).limit(1))
        if tenant_id is not None:
            query = query.where(JobRow.tenant_id == tenant_id)
        first = s.execute(self._locking(query, JobItemRow)).first()
        if first is None:
            return [], False
        job_id = first.job_id

        # 2. More of that job's runnable items, in index order (and of the first one's group).
        rest: list = []
        if limit > 1:
            more = select(*cols).where(JobItemRow.job_id == job_id, JobItemRow.idx != first.idx, _runnable(now))
            if group_of is None:
                rest = list(s.execute(self._locking(more.order_by(JobItemRow.idx).limit(limit - 1))).all())
            else:
                chosen = self._same_group(s, more, group_of(first.spec), group_of, limit - 1)
                if chosen:
                    picked = more.where(JobItemRow.idx.in_(chosen)).order_by(JobItemRow.idx)
                    rest = list(s.execute(self._locking(picked)).all())

        # 3. Compare-and-set each: still in the state that was read (status, token, runnable).
        won = []
        for row in (first, *rest):
            taken = s.execute(
                update(JobItemRow)
                .where(JobItemRow.job_id == job_id, JobItemRow.idx == row.idx, JobItemRow.status == row.status,
                       JobItemRow.lease_token == row.lease_token, _runnable(now))
                .values(status="running", lease_owner=owner, lease_token=row.lease_token + 1, lease_until=until,
                        attempts=JobItemRow.attempts + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if taken == 1:
                won.append(row)
        if not won:
            return [], True

        # 4. The job is running from its first lease on.
        s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status == "queued")
                  .values(status="running", started_at=now).execution_options(synchronize_session=False))
        job = s.execute(select(JobRow.tenant_id, JobRow.key_id, JobRow.priority, JobRow.output_target,
                               JobRow.url_expiry_s, JobRow.webhook_per_item, JobRow.review)
                        .where(JobRow.id == job_id)).one()
        return [ItemLease(job_id, row.idx, row.lease_token + 1, job.tenant_id, job.key_id, row.spec, job.priority,
                          job.output_target, job.url_expiry_s, job.webhook_per_item, until, row.attempts + 1,
                          bool(job.review))
                for row in won], True

    @staticmethod
    def _same_group(s: Session, more, key: Hashable, group_of: Callable[[dict], Hashable], wanted: int) -> list[int]:
        """Indexes of up to `wanted` further runnable items of the key's group, read a page at
        a time (keyset on the index) and at most GROUP_SCAN items in all."""
        chosen: list[int] = []
        after, seen = -1, 0
        while len(chosen) < wanted and seen < GROUP_SCAN:
            page = s.execute(more.with_only_columns(JobItemRow.idx, JobItemRow.spec)
                             .where(JobItemRow.idx > after).order_by(JobItemRow.idx).limit(PAGE)).all()
            for idx, spec in page:
                if group_of(spec) == key:
                    chosen.append(idx)
                    if len(chosen) == wanted:
                        break
            if len(page) < PAGE:
                break
            after, seen = page[-1].idx, seen + len(page)
        return chosen

    def runnable_tenants(self, now: datetime | None = None) -> list[str]:
        """Tenants with at least one runnable item, sorted (what `fairness` chooses among).
        Reaps jobs being canceled first (`reap_canceled`), so they close even when no tenant
        has anything to lease."""
        now = now or utcnow()
        self.reap_canceled(now)
        with self._session() as s:
            return list(s.scalars(
                select(JobRow.tenant_id).distinct()
                .where(_job_open(), exists().where(JobItemRow.job_id == JobRow.id, _runnable(now)))
                .order_by(JobRow.tenant_id)))

    @staticmethod
    def _held(lease: ItemLease):
        return and_(JobItemRow.job_id == lease.job_id, JobItemRow.idx == lease.index,
                    JobItemRow.lease_token == lease.token, JobItemRow.status == "running")

    def renew_items(self, leases: Sequence[ItemLease], lease_s: float, now: datetime | None = None) -> list[bool]:
        """Extend each lease whose token is still current; False: that lease was lost (stop
        working on the item and never record or deliver it)."""
        now = now or utcnow()
        until = now + timedelta(seconds=lease_s)
        renewed: dict[tuple[str, int, int], bool] = {}
        with self._session() as s, s.begin():
            for lease in sorted(leases, key=lambda x: (x.job_id, x.index)):
                renewed[(lease.job_id, lease.index, lease.token)] = s.execute(
                    update(JobItemRow).where(self._held(lease)).values(lease_until=until)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1
        return [renewed[(lease.job_id, lease.index, lease.token)] for lease in leases]

    def holds(self, lease: ItemLease, now: datetime | None = None) -> bool:
        """Whether `lease` is still the item's current, unexpired lease."""
        now = now or utcnow()
        with self._session() as s:
            return s.scalar(select(exists().where(self._held(lease), JobItemRow.lease_until >= now))) is True

    def finish_item(self, lease: ItemLease | str, index: int | None = None, *, result: dict | None = None,
                    error: dict | None = None, now: datetime | None = None) -> ItemFinish | None:
        """Record a leased item's outcome, if `lease` is still current (compare-and-set on its
        token), with the job's counters; and close the job in the same transaction when no
        item is left pending or running: completed (any item done), failed (none done) or
        canceled (cancel requested), with its `job.completed` queued exactly once. A lost lease
        records nothing: `recorded` is False and the caller must discard its result.

        (Called as `finish_item(job_id, index, ...)` it is the old whole-job API, for now.)"""
        if not isinstance(lease, ItemLease):
            return self._finish_item_of_job_lease(lease, index, result=result, error=error)
        now = now or utcnow()
        failed = error is not None
        held = lease.review and not failed  # rendered, held until a reviewer decides
        with self._session() as s, s.begin():
            recorded = s.execute(
                update(JobItemRow).where(self._held(lease))
                .values(status="failed" if failed else "awaiting_review" if held else "done", result=result,
                        error=error, lease_until=None, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount == 1
            if not recorded:
                return ItemFinish(False, None)
            if held:
                return ItemFinish(True, None)
            counter = JobRow.items_failed if failed else JobRow.items_done
            s.execute(update(JobRow).where(JobRow.id == lease.job_id).values({counter: counter + 1})
                      .execution_options(synchronize_session=False))
            return ItemFinish(True, self._settle(s, lease.job_id, now))

    def release_items(self, leases: Sequence[ItemLease], now: datetime | None = None) -> int:
        """Give leases back unfinished (shutting down, renderer unreachable): each item whose
        token still matches is pending again, its token kept (tokens never go down) and the
        attempt uncounted (a release is not a failed attempt). Returns how many went back."""
        now = now or utcnow()
        released, jobs = 0, set()
        with self._session() as s, s.begin():
            for lease in sorted(leases, key=lambda x: (x.job_id, x.index)):
                if s.execute(
                    update(JobItemRow).where(self._held(lease))
                    .values(status="pending", lease_owner=None, lease_until=None, attempts=JobItemRow.attempts - 1,
                            updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1:
                    released += 1
                    jobs.add(lease.job_id)
            for job_id in sorted(jobs):  # a job canceled meanwhile: its released items are canceled
                self._settle(s, job_id, now)
        return released

    def reap_canceled(self, now: datetime | None = None) -> int:
        """Cancel the items nobody will run in jobs being canceled (pending ones, and running
        ones whose holder's lease lapsed), and close those jobs when nothing runs any more.
        `lease_items` and `runnable_tenants` call it; returns how many items it canceled."""
        now = now or utcnow()
        query = (select(JobItemRow.job_id, JobItemRow.idx, JobItemRow.status, JobItemRow.lease_token)
                 .join(JobRow, JobRow.id == JobItemRow.job_id)
                 .where(JobRow.status.in_(OPEN), JobRow.cancel_requested.is_(True), _runnable(now)).limit(PAGE))
        with self._session() as s, s.begin():
            rows = s.execute(self._locking(query, JobItemRow)).all()
            canceled = 0
            for row in rows:
                canceled += s.execute(
                    update(JobItemRow)
                    .where(JobItemRow.job_id == row.job_id, JobItemRow.idx == row.idx, JobItemRow.status == row.status,
                           JobItemRow.lease_token == row.lease_token, _runnable(now))
                    .values(status="canceled", lease_until=None, updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
            for job_id in sorted({row.job_id for row in rows}):
                self._settle(s, job_id, now)
            return canceled

    def _settle(self, s: Session, job_id: str, now: datetime) -> Job | None:
        """Close the job if nothing is left to run, under its row lock (so two finishers close
        it once): completed, failed or canceled, with `job.completed` queued in this same
        transaction. Returns the closed job, or None. Lock order everywhere: items, then the
        job; items touched while the job is locked are taken with SKIP LOCKED, never waited for."""
        row = s.get(JobRow, job_id, with_for_update=True, populate_existing=True)
        if row is None or row.status in FINISHED:
            return None
        if row.cancel_requested:
            pending = aliased(JobItemRow)
            s.execute(
                update(JobItemRow)
                .where(JobItemRow.job_id == job_id, JobItemRow.status == "pending", JobItemRow.idx.in_(
                    self._locking(select(pending.idx).where(pending.job_id == job_id, pending.status == "pending"))))
                .values(status="canceled", updated_at=now)
                .execution_options(synchronize_session=False))
            if row.review:  # held images of a canceled job are never delivered
                s.execute(update(JobItemRow).where(JobItemRow.job_id == job_id, JobItemRow.status == "awaiting_review")
                          .values(status="canceled", result=None, updated_at=now)
                          .execution_options(synchronize_session=False))
        left = s.scalar(select(func.count()).select_from(JobItemRow)
                        .where(JobItemRow.job_id == job_id, JobItemRow.status.in_(UNDECIDED)))
        if left:
            return None
        if row.cancel_requested:
            row.status = "canceled"
        else:
            decided = row.items_done + (row.items_rejected or 0)
            row.status = "completed" if decided > 0 or row.items_total == 0 else "failed"
        row.finished_at, row.lease_owner, row.lease_expires_at = now, None, None
        self._completed_event(s, row, now)
        s.flush()
        return _job(row)

    @staticmethod
    def _cancel_rest(s: Session, row: JobRow, now: datetime) -> None:
        s.execute(update(JobItemRow).where(JobItemRow.job_id == row.id, JobItemRow.status == "pending")
                  .values(status="canceled", updated_at=now))
        row.status, row.finished_at, row.lease_owner, row.lease_expires_at = "canceled", now, None, None

    def _completed_event(self, s: Session, row: JobRow, now: datetime) -> None:
        """Queue `job.completed` in the transaction that closes the job: never one without the other.
        A review job's event also names the approved items with their images (only those were
        delivered) and the rejected items' indexes."""
        data = {"job_id": row.id, "status": row.status, "items_total": row.items_total, "items_done": row.items_done,
                "items_failed": row.items_failed, "finished_at": now.isoformat()}
        if row.review:
            decided = s.execute(select(JobItemRow.idx, JobItemRow.status, JobItemRow.result)
                                .where(JobItemRow.job_id == row.id, JobItemRow.status.in_(("done", "rejected")))
                                .order_by(JobItemRow.idx)).all()  # a review job holds at most 50 images
            data.update(review=True, items_rejected=row.items_rejected or 0, approved=[
                {"index": idx, "sku": (result or {}).get("sku"), "generation_id": (result or {}).get("generation_id"),
                 "images": [{k: v for k, v in image.items() if k != "data_base64"} for image in (result or {}).get("images", [])]}
                for idx, status, result in decided if status == "done"],
                rejected=[idx for idx, status, _ in decided if status == "rejected"])
        self._queue_event(s, row.tenant_id, row.id, "job.completed", now, data)

    @staticmethod
    def _queue_event(s: Session, tenant_id: str, job_id: str | None, event_type: str, now: datetime, data: dict) -> str | None:
        settings = s.get(TenantSettingsRow, tenant_id)
        if settings is None or not settings.webhook_url or not settings.webhook_secret:
            return None
        delivery_id = f"msg_{uuid.uuid4().hex}"
        s.add(WebhookDeliveryRow(
            id=delivery_id, tenant_id=tenant_id, job_id=job_id, event_type=event_type, url=settings.webhook_url,
            payload={"type": event_type, "timestamp": now.isoformat(), "data": data}, status="pending", attempts=0,
            next_attempt_at=now, log=[], created_at=now,
        ))
        return delivery_id

    def claim_next(self, owner: str, lease_s: float) -> Job | None:
        """Lease the most urgent job nobody holds (compare-and-set: one replica wins)."""
        now = utcnow()
        free = or_(JobRow.lease_expires_at.is_(None), JobRow.lease_expires_at < now)
        with self._session() as s:
            candidates = s.scalars(
                select(JobRow.id).where(JobRow.status.in_(("queued", "running")), free)
                .order_by(JobRow.priority.desc(), JobRow.created_at, JobRow.id).limit(8)
            ).all()
        for job_id in candidates:
            with self._session() as s, s.begin():
                won = s.execute(
                    update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(("queued", "running")), free)
                    .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_s), status="running")
                ).rowcount
                if won == 1:
                    row = s.get(JobRow, job_id)
                    if row.started_at is None:
                        row.started_at = now
                    return _job(row)
        return None

    def renew(self, job_id: str, owner: str, lease_s: float) -> bool:
        with self._session() as s, s.begin():
            return s.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == owner)
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            ).rowcount == 1

    def next_item(self, job_id: str) -> JobItem | None:
        with self._session() as s:
            row = s.scalars(select(JobItemRow).where(JobItemRow.job_id == job_id, JobItemRow.status == "pending")
                            .order_by(JobItemRow.idx).limit(1)).first()
            return None if row is None else _item(row)

    def cancel_requested(self, job_id: str) -> bool:
        with self._session() as s:
            return bool(s.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id)))

    def _finish_item_of_job_lease(self, job_id: str, index: int, *, result: dict | None = None,
                                  error: dict | None = None) -> None:
        """The old whole-job lease's `finish_item(job_id, index)`: record one item's outcome and
        the job's counters in one transaction."""
        now = utcnow()
        with self._session() as s, s.begin():
            item = s.get(JobItemRow, (job_id, index), with_for_update=True)
            if item is None or item.status != "pending":
                return
            item.status, item.result, item.error, item.updated_at = ("failed" if error else "done"), result, error, now
            job = s.get(JobRow, job_id, with_for_update=True)
            if error:
                job.items_failed += 1
            else:
                job.items_done += 1

    def finish_job(self, job_id: str, owner: str) -> Job:
        """Close a job whose items are all finished (or whose cancel was requested) and queue
        its `job.completed` event, in one transaction. Only the lease holder closes it."""
        now = utcnow()
        with self._session() as s, s.begin():
            row = s.get(JobRow, job_id, with_for_update=True)
            if row.lease_owner != owner or row.status in FINISHED:
                return _job(row)  # another replica took the job over (or closed it)
            if row.cancel_requested:
                self._cancel_rest(s, row, now)
            else:
                row.status = "completed" if row.items_done > 0 or row.items_total == 0 else "failed"
                row.finished_at, row.lease_owner, row.lease_expires_at = now, None, None
            self._completed_event(s, row, now)
            return _job(row)

    def purge_finished(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Delete jobs finished before `now - older_than`, with their items (inline images
        included) and webhook deliveries. Returns how many jobs went."""
        from sqlalchemy import delete

        cutoff = (now or utcnow()) - older_than
        with self._session() as s, s.begin():
            old = list(s.scalars(select(JobRow.id).where(JobRow.status.in_(FINISHED), JobRow.finished_at < cutoff)))
            if old:
                s.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.job_id.in_(old)))
                s.execute(delete(JobItemRow).where(JobItemRow.job_id.in_(old)))
                s.execute(delete(JobRow).where(JobRow.id.in_(old)))
            return len(old)

    # -- tenant delivery settings and presets ---------------------------------------------

    def tenant_delivery(self, tenant_id: str) -> TenantDelivery:
        with self._session() as s:
            row = s.get(TenantSettingsRow, tenant_id)
            if row is None:
                return TenantDelivery()
            return TenantDelivery(row.output_target, row.url_expiry_s, row.webhook_url, row.webhook_secret)

    def set_tenant_delivery(self, tenant_id: str, **changes: Any) -> TenantDelivery:
        with self._session() as s, s.begin():
            row = s.get(TenantSettingsRow, tenant_id)
            if row is None:
                row = TenantSettingsRow(tenant_id=tenant_id, output_target="inline", url_expiry_s=3600)
                s.add(row)
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
        return self.tenant_delivery(tenant_id)

    def presets(self, tenant_id: str) -> dict[str, tuple[str, str | None]]:
        """The tenant's own presets: name -> (prompt fragment, negative fragment)."""
        with self._session() as s:
            rows = s.scalars(select(ScenePresetRow).where(ScenePresetRow.tenant_id == tenant_id)).all()
            return {r.name: (r.prompt, r.negative_prompt) for r in rows}

    def put_preset(self, tenant_id: str, name: str, prompt: str, negative_prompt: str | None) -> None:
        with self._session() as s, s.begin():
            row = s.scalars(select(ScenePresetRow).where(ScenePresetRow.tenant_id == tenant_id, ScenePresetRow.name == name)).first()
            if row is None:
                row = ScenePresetRow(tenant_id=tenant_id, name=name)
                s.add(row)
            row.prompt, row.negative_prompt, row.updated_at = prompt, negative_prompt, utcnow()

    # -- webhook deliveries ---------------------------------------------------------------

    def enqueue_event(self, tenant_id: str, job_id: str | None, event_type: str, data: dict) -> str | None:
        """Queue an event for the tenant's webhook; None when the tenant has none."""
        with self._session() as s, s.begin():
            return self._queue_event(s, tenant_id, job_id, event_type, utcnow(), data)

    def claim_due_delivery(self, hold_s: float) -> Delivery | None:
        """Take the oldest due delivery, pushing its next attempt `hold_s` ahead so no other
        replica sends it meanwhile (the attempt's outcome then sets the real next time)."""
        now = utcnow()
        with self._session() as s:
            due = s.scalars(select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.status == "pending",
                                                               WebhookDeliveryRow.next_attempt_at <= now)
                            .order_by(WebhookDeliveryRow.next_attempt_at).limit(8)).all()
        for delivery_id in due:
            with self._session() as s, s.begin():
                won = s.execute(
                    update(WebhookDeliveryRow).where(and_(WebhookDeliveryRow.id == delivery_id,
                                                          WebhookDeliveryRow.status == "pending",
                                                          WebhookDeliveryRow.next_attempt_at <= now))
                    .values(next_attempt_at=now + timedelta(seconds=hold_s))
                ).rowcount
                if won == 1:
                    return _delivery(s.get(WebhookDeliveryRow, delivery_id))
        return None

    def record_attempt(self, delivery_id: str, *, ok: bool, status_code: int | None, error: str | None,
                       duration_ms: float, retry_in_s: float | None) -> Delivery:
        """Log an attempt; schedule the next one (`retry_in_s`) or close the delivery."""
        now = utcnow()
        with self._session() as s, s.begin():
            row = s.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
            row.attempts += 1
            row.log = [*(row.log or []), {"at": now.isoformat(), "status_code": status_code, "error": error,
                                          "ms": round(duration_ms, 1)}]
            row.last_status_code, row.last_error = status_code, (error or None) and error[:500]
            if ok:
                row.status, row.delivered_at = "delivered", now
            elif retry_in_s is None:
                row.status = "failed"
            else:
                row.next_attempt_at = now + timedelta(seconds=retry_in_s)
            return _delivery(row)

    def deliveries(self, tenant_id: str | None = None, job_id: str | None = None, limit: int = 100) -> list[Delivery]:
        with self._session() as s:
            query = select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.created_at.desc()).limit(limit)
            if tenant_id is not None:
                query = query.where(WebhookDeliveryRow.tenant_id == tenant_id)
            if job_id is not None:
                query = query.where(WebhookDeliveryRow.job_id == job_id)
            return [_delivery(r) for r in s.scalars(query).all()]

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again from a fresh schedule (after a receiver outage)."""
        with self._session() as s, s.begin():
            row = s.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                raise DeliveryNotFound(f"no webhook delivery {delivery_id!r}", field="delivery_id")
            row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
            return _delivery(row)
