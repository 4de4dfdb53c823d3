"""Deliveries being retried: catalogue items rendered but not yet delivered to their S3 target.

Owns: claiming a due retry so that one gateway of the fleet makes it (`claim_due`: a
compare-and-set that bumps the item's `deliver_attempts`, which fences the claim, and pushes
its next try `hold_s` ahead), recording a try's outcome (`record_try`: delivered, `done`;
given up after the deadline, `failed` with `delivery_failed`; or its next try), with the job's
counters, the item's `job.item.completed` and the job settled in the same transaction, as
`Leases.finish_items` does for a render; and an operator's redelivery (`redeliver`). Every
timestamp defaults to the database's clock. Must never write to S3 or read staged images
(`service.jobs.delivery` does), and never record a try for a claim that is no longer current.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select, update

from service.registry.db import Database
from service.registry.deliveries import queue_event
from service.registry.job_records import (
    DeliveryClaim, ItemFinish, ItemNotFound, JobItem, JobNotFound, NotRedeliverable, is_int, item_of,
)
from service.registry.leases import settle
from service.registry.models import JobItemRow, JobRow


def _claimed(claim: DeliveryClaim):
    return and_(JobItemRow.job_id == claim.job_id, JobItemRow.idx == claim.index,
                JobItemRow.status == "delivering", JobItemRow.deliver_attempts == claim.attempt)


class ItemDeliveries:
    def __init__(self, db: Database):
        self.db = db

    def claim_due(self, hold_s: float, *, limit: int = 4, now: datetime | None = None) -> list[DeliveryClaim]:
        """Up to `limit` items whose next try is due, each claimed for `hold_s` (a gateway that
        dies holding a claim loses it when the hold lapses: another one tries then)."""
        now = now or self.db.now()
        with self.db.reading() as conn:  # every retrier poll: never takes SQLite's write lock
            due = conn.execute(select(JobItemRow.job_id, JobItemRow.idx, JobItemRow.deliver_attempts)
                               .where(JobItemRow.status == "delivering", JobItemRow.deliver_after <= now)
                               .order_by(JobItemRow.deliver_after).limit(limit)).all()
        claims = []
        for job_id, idx, attempts in due:
            with self.db.session() as s, s.begin():
                won = s.execute(
                    update(JobItemRow)
                    .where(JobItemRow.job_id == job_id, JobItemRow.idx == idx, JobItemRow.status == "delivering",
                           JobItemRow.deliver_attempts == attempts, JobItemRow.deliver_after <= now)
                    .values(deliver_attempts=attempts + 1, deliver_after=now + timedelta(seconds=hold_s))
                    .returning(JobItemRow.spec, JobItemRow.staged, JobItemRow.deliver_by)
                    .execution_options(synchronize_session=False)
                ).first()
                if won is None:
                    continue  # another gateway claimed it first
                job = s.execute(select(JobRow.tenant_id, JobRow.output_target, JobRow.webhook_per_item)
                                .where(JobRow.id == job_id)).one()
                claims.append(DeliveryClaim(job_id, idx, job.tenant_id, job.output_target, job.webhook_per_item,
                                            won.spec, won.staged, attempts + 1, won.deliver_by))
        return claims

    def record_try(self, claim: DeliveryClaim, *, result: dict | None = None, error: dict | None = None,
                   retry_at: datetime | None = None, last_error: str | None = None,
                   now: datetime | None = None) -> ItemFinish:
        """The outcome of a claimed try: `result` (delivered: `done`), `error` (given up:
        `failed`), or neither (`retry_at`: the next try, `last_error` shown meanwhile). Not
        recorded (`recorded` False) when the claim is no longer current."""
        now = now or self.db.now()
        with self.db.session() as s, s.begin():
            if result is None and error is None:
                ok = s.execute(update(JobItemRow).where(_claimed(claim))
                               .values(deliver_after=retry_at, deliver_error=(last_error or "")[:500] or None,
                                       updated_at=now)
                               .execution_options(synchronize_session=False)).rowcount == 1
                return ItemFinish(ok)
            failed = error is not None
            values = dict(status="failed" if failed else "done", result=result, error=error, deliver_after=None,
                          updated_at=now)
            if not failed:
                values["staged"] = None  # kept after a failure: an operator may redeliver it
            if last_error:
                values["deliver_error"] = last_error[:500]
            ok = s.execute(update(JobItemRow).where(_claimed(claim)).values(**values)
                           .execution_options(synchronize_session=False)).rowcount == 1
            if not ok:
                return ItemFinish(False)
            if claim.webhook_per_item:  # queued before the job's job.completed
                queue_event(s, claim.tenant_id, claim.job_id, "job.item.completed", now, {
                    "job_id": claim.job_id, "index": claim.index, "sku": claim.spec.get("sku"),
                    "status": "failed" if failed else "done", "error": error and error["code"]})
            counter = JobRow.items_failed if failed else JobRow.items_done
            s.execute(update(JobRow).where(JobRow.id == claim.job_id).values({counter: counter + 1})
                      .execution_options(synchronize_session=False))
            return ItemFinish(True, settle(s, claim.job_id, now, self.db.postgres))

    def redeliver(self, job_id: str, index: int, deadline_s: float, *, now: datetime | None = None) -> JobItem:
        """An operator's redelivery: an item waiting to deliver is tried now, with a fresh
        deadline; one failed with `delivery_failed` whose images are still kept goes back to
        `delivering` (its job reopened, so a new `job.completed` follows when it closes again)."""
        now = now or self.db.now()
        with self.db.session() as s, s.begin():
            job = s.get(JobRow, job_id, with_for_update=True) if isinstance(job_id, str) and len(job_id) <= 32 else None
            if job is None:
                raise JobNotFound(f"no job {job_id!r}", field="job_id")
            row = s.get(JobItemRow, (job_id, index), with_for_update=True) if is_int(index) and 0 <= index < 2**31 else None
            if row is None:
                raise ItemNotFound(f"job {job_id!r} has no item {index!r}", field="index")
            gave_up = row.status == "failed" and (row.error or {}).get("code") == "delivery_failed" and row.staged
            if row.status != "delivering" and not gave_up:
                raise NotRedeliverable(f"item {index} is {row.status}; only an item waiting to deliver, or failed with "
                                       "delivery_failed with its images kept, can be redelivered", field="index")
            if gave_up and job.status == "canceled":
                raise NotRedeliverable(f"job {job_id} was canceled; its items are not delivered", field="job_id")
            if gave_up:
                row.status, row.error = "delivering", None
                job.items_failed -= 1
                if job.status in ("completed", "failed"):
                    job.status, job.finished_at = "running", None
            row.deliver_after, row.deliver_by, row.updated_at = now, now + timedelta(seconds=deadline_s), now
            s.flush()
            return item_of(row)
