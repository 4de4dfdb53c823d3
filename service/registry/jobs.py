"""Catalogue jobs in the registry database: creating, reading, canceling, reviewing, purging.

Owns: creating a job with its items; reads scoped to a tenant (a job, its items a page at a
time, one item, the newest jobs, open jobs per key); cancellation; the review of a job
submitted with `review: true` (a finished item's images are held as `awaiting_review`, inline,
until `decide_items` approves it, `done`, or rejects it, `rejected`, its images dropped and
its reason kept; the job closes once every item is decided, and its `job.completed` names the
approved items with their images and the rejected ones); and purging finished jobs after
their retention. Every timestamp defaults to the database's clock. Must never hand one tenant
another tenant's job (every read by id is scoped to a tenant), never load a whole job's items
to answer a page, and never lease or settle items itself (`leases`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service.errors import InvalidRequest
from service.registry.db import Database
from service.registry.job_records import (
    FINISHED, OPEN, ItemNotFound, Job, JobItem, JobNotFound, NotAwaitingReview, TooManyOpenJobs, is_int, item_of,
    job_of,
)
from service.registry.deliveries import queue_event
from service.registry.leases import settle
from service.registry.models import ApiKeyRow, JobItemRow, JobRow, WebhookDeliveryRow


def _tenant_job(s: Session, tenant_id: str, job_id: str, **options) -> JobRow:
    row = s.get(JobRow, job_id, **options) if isinstance(job_id, str) and len(job_id) <= 32 else None
    if row is None or row.tenant_id != tenant_id:
        raise JobNotFound(f"no job {job_id!r}", field="job_id")
    return row


class Jobs:
    def __init__(self, db: Database):
        self.db = db

    def create_job(self, tenant_id: str, key_id: str, items: list[dict], *, priority: int, output_target: str,
                   url_expiry_s: int, webhook_per_item: bool, job_id: str | None = None, review: bool = False,
                   max_open: int | None = None, title: str | None = None) -> Job:
        """Queue a job. With `max_open`, the key's open jobs are counted and the job written in
        one transaction holding the key's row lock (PostgreSQL; SQLite's write lock): two
        gateways submitting for one key at once cannot both take its last slot
        (`TooManyOpenJobs`, 429)."""
        now = self.db.now()
        job_id = job_id or uuid.uuid4().hex
        with self.db.session() as s, s.begin():
            if max_open is not None:
                s.execute(select(ApiKeyRow.id).where(ApiKeyRow.id == key_id).with_for_update())
                open_now = s.scalar(select(func.count()).select_from(JobRow)
                                    .where(JobRow.key_id == key_id, JobRow.status.in_(OPEN)))
                if open_now >= max_open:
                    raise TooManyOpenJobs(open_now, max_open)
            row = JobRow(
                id=job_id, tenant_id=tenant_id, key_id=key_id, status="queued", priority=priority,
                items_total=len(items), items_done=0, items_failed=0, output_target=output_target,
                url_expiry_s=url_expiry_s, webhook_per_item=webhook_per_item, cancel_requested=False,
                created_at=now, review=review, items_rejected=0, title=title,
            )
            s.add(row)
            s.flush()
            s.add_all(JobItemRow(job_id=job_id, idx=i, spec=spec, status="pending") for i, spec in enumerate(items))
            return job_of(row)

    def get_job(self, tenant_id: str, job_id: str, *, with_items: bool = False) -> Job:
        """The tenant's job; another tenant's id reads as absent (404). `with_items` loads every
        item (results included): only for small jobs; pages come from `job_page`."""
        with self.db.session() as s:
            row = _tenant_job(s, tenant_id, job_id)
            items = s.scalars(select(JobItemRow).where(JobItemRow.job_id == job_id)
                              .order_by(JobItemRow.idx)).all() if with_items else []
            return job_of(row, list(items))

    def open_jobs(self, key_id: str) -> int:
        """Queued or running jobs submitted with this key (its concurrent-jobs limit)."""
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(JobRow)
                            .where(JobRow.key_id == key_id, JobRow.status.in_(OPEN)))

    def request_cancel(self, tenant_id: str, job_id: str, *, now: datetime | None = None) -> Job:
        """Stop a job: its pending items are canceled at once, running ones may finish, and once
        none is running the job closes as canceled (with its `job.completed`)."""
        now = now or self.db.now()
        with self.db.session() as s, s.begin():
            row = _tenant_job(s, tenant_id, job_id, with_for_update=True)
            if row.status not in FINISHED:
                row.cancel_requested = True
                s.flush()
                settle(s, job_id, now, self.db.postgres)
        return self.get_job(tenant_id, job_id, with_items=False)

    def list_jobs(self, tenant_id: str, *, limit: int = 50) -> list[Job]:
        """The tenant's newest jobs, newest first (no items)."""
        with self.db.session() as s:
            rows = s.scalars(select(JobRow).where(JobRow.tenant_id == tenant_id)
                             .order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)).all()
            return [job_of(r) for r in rows]

    def count_items(self, job_id: str, status: str) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(JobItemRow)
                            .where(JobItemRow.job_id == job_id, JobItemRow.status == status))

    def purge_finished(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Delete jobs finished before `now - older_than`, with their items (inline images
        included) and webhook deliveries. Returns how many jobs went."""
        cutoff = (now or self.db.now()) - older_than
        with self.db.session() as s, s.begin():
            old = list(s.scalars(select(JobRow.id).where(JobRow.status.in_(FINISHED), JobRow.finished_at < cutoff)))
            if old:
                s.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.job_id.in_(old)))
                s.execute(delete(JobItemRow).where(JobItemRow.job_id.in_(old)))
                s.execute(delete(JobRow).where(JobRow.id.in_(old)))
            return len(old)

    # -- review ---------------------------------------------------------------------------

    def awaiting_items(self, tenant_id: str, job_id: str, indexes: Sequence[int]) -> tuple[Job, list[JobItem]]:
        """The tenant's review job and the named items, each of which must await review (409
        `not_awaiting_review` otherwise: decided already, still rendering, or not a review job)."""
        with self.db.session() as s:
            row = _tenant_job(s, tenant_id, job_id)
            if not row.review:
                raise NotAwaitingReview(f"job {job_id} was not submitted with review: true", field="job_id")
            items = {i.idx: i for i in s.scalars(select(JobItemRow).where(JobItemRow.job_id == job_id,
                                                                          JobItemRow.idx.in_(list(indexes))))}
            for index in indexes:
                if index not in items:
                    raise ItemNotFound(f"job {job_id!r} has no item {index!r}", field="items")
                if items[index].status != "awaiting_review":
                    raise NotAwaitingReview(f"item {index} is {items[index].status}, not awaiting review", field="items")
            return job_of(row), [item_of(items[i]) for i in indexes]

    def require_review(self, job_id: str) -> None:
        """Make a job a review job from now on: an item's garments need a person's review (the
        twin's consent, `service.tenancy.consent`), so it and every item finished after it are
        held as `awaiting_review`. Items delivered before stay delivered."""
        with self.db.session() as s, s.begin():
            s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.review.is_(False)).values(review=True)
                      .execution_options(synchronize_session=False))

    def decide_items(self, tenant_id: str, job_id: str, decisions: dict[int, dict | None], *, approve: bool,
                     now: datetime | None = None, reasons: dict[int, str] | None = None) -> tuple[list[int], Job | None]:
        """Approve (`done`, with the delivered result given) or reject (`rejected`, its images
        dropped) items awaiting review, compare-and-set on that status, with the job's counters;
        close the job when every item is decided. A rejected item keeps its reason
        (`reasons[index]`, already checked by the caller) in its result as `rejection_reason`,
        and its `job.item.completed` carries it as `reason`. Returns (the indexes this call
        decided, the job it closed or None); an item decided meanwhile by another reviewer is
        left out."""
        now = now or self.db.now()
        reasons = {} if approve else dict(reasons or {})
        decided: list[int] = []
        with self.db.session() as s, s.begin():
            job = _tenant_job(s, tenant_id, job_id)
            for index in sorted(decisions):
                result = decisions[index]
                if not approve:
                    result = {**(result or {}), "images": [], "rejected": True}
                    if reasons.get(index):
                        result["rejection_reason"] = reasons[index]
                if s.execute(
                    update(JobItemRow)
                    .where(JobItemRow.job_id == job_id, JobItemRow.idx == index, JobItemRow.status == "awaiting_review")
                    .values(status="done" if approve else "rejected", result=result, updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1:
                    decided.append(index)
            if decided and job.webhook_per_item:  # each decided item's event, queued before job.completed
                specs = dict(s.execute(select(JobItemRow.idx, JobItemRow.spec)
                                       .where(JobItemRow.job_id == job_id, JobItemRow.idx.in_(decided))).all())
                for index in decided:
                    queue_event(s, tenant_id, job_id, "job.item.completed", now, {
                        "job_id": job_id, "index": index, "sku": (specs.get(index) or {}).get("sku"),
                        "status": "done" if approve else "rejected", "error": None,
                        **({} if approve else {"reason": reasons.get(index)})})
            if decided:
                counter = JobRow.items_done if approve else JobRow.items_rejected
                s.execute(update(JobRow).where(JobRow.id == job_id).values({counter: counter + len(decided)})
                          .execution_options(synchronize_session=False))
            closed = settle(s, job_id, now, self.db.postgres) if decided else None
        return decided, closed

    # -- paged reads ----------------------------------------------------------------------

    def job_page(self, tenant_id: str, job_id: str, *, offset: int, limit: int) -> tuple[Job, list[JobItem]]:
        """The tenant's job and its items `offset` .. `offset + limit - 1` by index: one page
        in memory (SQL LIMIT/OFFSET), never the whole job."""
        if not is_int(offset) or offset < 0:
            raise InvalidRequest("offset must be an integer of at least 0", field="offset")
        if not is_int(limit) or limit < 1:
            raise InvalidRequest("limit must be an integer of at least 1", field="limit")
        with self.db.session() as s:
            row = _tenant_job(s, tenant_id, job_id)
            items = s.scalars(select(JobItemRow).where(JobItemRow.job_id == job_id)
                              .order_by(JobItemRow.idx).offset(offset).limit(limit)).all()
            return job_of(row), [item_of(i) for i in items]

    def get_item(self, tenant_id: str, job_id: str, index: int) -> JobItem:
        """One item of the tenant's job; another tenant's job reads as absent (`job_not_found`),
        an index the job does not have is `item_not_found`."""
        with self.db.session() as s:
            _tenant_job(s, tenant_id, job_id)
            row = s.get(JobItemRow, (job_id, index)) if is_int(index) and 0 <= index < 2**31 else None
            if row is None:
                raise ItemNotFound(f"job {job_id!r} has no item {index!r}", field="index")
            return item_of(row)
