"""Item leases: who renders which catalogue item, fenced by a token, and settling the job after.

Owns: leasing runnable items one by one, each with a fencing token (`lease_items`: highest
priority first within a tenant, then oldest job, then lowest index; `FOR UPDATE SKIP LOCKED`
on PostgreSQL, compare-and-set on SQLite), renewing, checking, finishing and releasing those
leases; reaping jobs being canceled; and settling a job (`settle`: closing it, with its
`job.completed` queued in the same transaction, once) when no item is left to decide. Every
timestamp defaults to the database's clock. Must never record an item for a holder whose
token is no longer current, never load a whole job's items to lease one, and never choose
between tenants (that is `service.jobs.fairness`'s).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from service.registry.db import Database
from service.registry.deliveries import item_event, queue_event, queue_job_completed
from service.registry.job_records import (
    FINISHED, OPEN, PAGE, PENDING_DELIVERY, UNDECIDED, ItemFinish, ItemLease, Job, job_of, job_open, locking,
    runnable,
)
from service.registry.models import JobItemRow, JobRow

GROUP_SCAN = 1024  # with `group_of`: how many further runnable items one lease looks at, at most
Outcome = tuple[ItemLease, dict | None, dict | None]  # (lease, result, error)


def settle(s: Session, job_id: str, now: datetime, postgres: bool) -> Job | None:
    """Close the job if nothing is left to decide, under its row lock (so two finishers close
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
            .where(JobItemRow.job_id == job_id, JobItemRow.status == "pending", JobItemRow.idx.in_(locking(
                postgres, select(pending.idx).where(pending.job_id == job_id, pending.status == "pending"))))
            .values(status="canceled", updated_at=now)
            .execution_options(synchronize_session=False))
        if row.review:  # held images of a canceled job are never delivered
            s.execute(update(JobItemRow).where(JobItemRow.job_id == job_id, JobItemRow.status == "awaiting_review")
                      .values(status="canceled", result=None, updated_at=now)
                      .execution_options(synchronize_session=False))
    if row.cancel_requested:
        left = s.scalar(select(func.count()).select_from(JobItemRow)
                        .where(JobItemRow.job_id == job_id, JobItemRow.status.in_(UNDECIDED)))
    else:  # no item of a job not being canceled is ever canceled: every other one is counted once decided
        left = row.items_total - row.items_done - row.items_failed - (row.items_rejected or 0)
    if left:
        return None
    if row.cancel_requested:
        row.status = "canceled"
    else:
        decided = row.items_done + (row.items_rejected or 0)
        row.status = "completed" if decided > 0 or row.items_total == 0 else "failed"
    row.finished_at = now
    queue_job_completed(s, row, now)
    s.flush()
    return job_of(row)


def _held(lease: ItemLease):
    return and_(JobItemRow.job_id == lease.job_id, JobItemRow.idx == lease.index,
                JobItemRow.lease_token == lease.token, JobItemRow.status == "running")


class Leases:
    def __init__(self, db: Database):
        self.db = db

    def lease_items(self, owner: str, lease_s: float, *, tenant_id: str | None = None, limit: int = 1,
                    group_of: Callable[[dict], Hashable] | None = None, now: datetime | None = None,
                    reap: bool = True) -> list[ItemLease]:
        """Lease up to `limit` runnable items of ONE job: the tenant's (any tenant's when None)
        job of highest priority, then the oldest, from its lowest index on. With `group_of`,
        only items whose `group_of(spec)` equals the first item's. Runnable: pending, or
        running under a lapsed lease, in a job neither finished nor being canceled. Each item
        leased gets the next fencing token; two owners never get the same item and token.
        `reap=False`: the caller has just reaped canceled jobs (`runnable_tenants` does)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        now = now or self.db.now()
        if reap:
            self.reap_canceled(now)
        for _ in range(3):  # every candidate lost to another owner's compare-and-set: look again
            with self.db.session() as s, s.begin():
                leases, found = self._lease(s, owner, now + timedelta(seconds=lease_s), tenant_id, limit, group_of, now)
            if leases or not found:
                return leases
        return []

    def _lease(self, s: Session, owner: str, until: datetime, tenant_id: str | None, limit: int,
               group_of: Callable[[dict], Hashable] | None, now: datetime) -> tuple[list[ItemLease], bool]:
        pg = self.db.postgres
        # 1. The first runnable item in queue order (locked on PostgreSQL), with its job.
        query = (select(JobItemRow.job_id, JobItemRow.idx, JobItemRow.spec, JobRow.status, JobRow.tenant_id,
                        JobRow.key_id, JobRow.priority, JobRow.output_target, JobRow.url_expiry_s,
                        JobRow.webhook_per_item, JobRow.review)
                 .join(JobRow, JobRow.id == JobItemRow.job_id).where(runnable(now), job_open())
                 .order_by(JobRow.priority.desc(), JobRow.created_at, JobRow.id, JobItemRow.idx).limit(1))
        if tenant_id is not None:
            query = query.where(JobRow.tenant_id == tenant_id)
        first = s.execute(locking(pg, query, JobItemRow)).first()
        if first is None:
            return [], False
        job_id = first.job_id

        # 2. More of that job's runnable items, in index order (and of the first one's group).
        specs = {first.idx: first.spec}
        if limit > 1:
            more = select(JobItemRow.idx, JobItemRow.spec).where(JobItemRow.job_id == job_id,
                                                                 JobItemRow.idx != first.idx, runnable(now))
            if group_of is None:
                specs.update(s.execute(locking(pg, more.order_by(JobItemRow.idx).limit(limit - 1))).all())
            else:
                chosen = self._same_group(s, more, group_of(first.spec), group_of, limit - 1)
                if chosen and pg:  # lock them, passing over any another owner holds now
                    chosen = s.execute(locking(pg, more.where(JobItemRow.idx.in_([i for i, _ in chosen]))
                                               .order_by(JobItemRow.idx))).all()
                specs.update(chosen)

        # 3. One compare-and-set for them all: each item still runnable gets the next token.
        won = s.execute(
            update(JobItemRow)
            .where(JobItemRow.job_id == job_id, JobItemRow.idx.in_(list(specs)), runnable(now))
            .values(status="running", lease_owner=owner, lease_token=JobItemRow.lease_token + 1, lease_until=until,
                    attempts=JobItemRow.attempts + 1, updated_at=now)
            .returning(JobItemRow.idx, JobItemRow.lease_token, JobItemRow.attempts)
            .execution_options(synchronize_session=False)
        ).all()
        if not won:
            return [], True

        # 4. The job is running from its first lease on.
        if first.status == "queued":
            s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status == "queued")
                      .values(status="running", started_at=now).execution_options(synchronize_session=False))
        return [ItemLease(job_id, idx, token, first.tenant_id, first.key_id, specs[idx], first.priority,
                          first.output_target, first.url_expiry_s, first.webhook_per_item, until, attempts,
                          bool(first.review))
                for idx, token, attempts in sorted(won)], True

    @staticmethod
    def _same_group(s: Session, more, key: Hashable, group_of: Callable[[dict], Hashable],
                    wanted: int) -> list[tuple[int, dict]]:
        """Up to `wanted` further runnable items (index, spec) of the key's group, read a page
        at a time (keyset on the index) and at most GROUP_SCAN items in all."""
        chosen: list[tuple[int, dict]] = []
        after, seen = -1, 0
        while len(chosen) < wanted and seen < GROUP_SCAN:
            page = s.execute(more.where(JobItemRow.idx > after).order_by(JobItemRow.idx).limit(PAGE)).all()
            for idx, spec in page:
                if group_of(spec) == key:
                    chosen.append((idx, spec))
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
        now = now or self.db.now()
        self.reap_canceled(now)
        with self.db.reading() as conn:  # every dispatcher poll: never takes SQLite's write lock
            return list(conn.scalars(
                select(JobRow.tenant_id).distinct()
                .where(job_open(), exists().where(JobItemRow.job_id == JobRow.id, runnable(now)))
                .order_by(JobRow.tenant_id)))

    def renew_items(self, leases: Sequence[ItemLease], lease_s: float, now: datetime | None = None) -> list[bool]:
        """Extend each lease whose token is still current; False: that lease was lost (stop
        working on the item and never record or deliver it)."""
        now = now or self.db.now()
        until = now + timedelta(seconds=lease_s)
        renewed: dict[tuple[str, int, int], bool] = {}
        with self.db.session() as s, s.begin():
            for lease in sorted(leases, key=lambda x: (x.job_id, x.index)):
                renewed[(lease.job_id, lease.index, lease.token)] = s.execute(
                    update(JobItemRow).where(_held(lease)).values(lease_until=until)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1
        return [renewed[(lease.job_id, lease.index, lease.token)] for lease in leases]

    def holds(self, lease: ItemLease, now: datetime | None = None) -> bool:
        """Whether `lease` is still the item's current, unexpired lease."""
        return self.holding([lease], now) == [True]

    def holding(self, leases: Sequence[ItemLease], now: datetime | None = None) -> list[bool]:
        """`holds` for each of `leases` (of one job or several), in one statement."""
        if not leases:
            return []
        now = now or self.db.now()
        with self.db.session() as s:
            held = set(s.execute(select(JobItemRow.job_id, JobItemRow.idx, JobItemRow.lease_token).where(
                JobItemRow.status == "running", JobItemRow.lease_until >= now,
                JobItemRow.job_id.in_({lease.job_id for lease in leases}),
                JobItemRow.idx.in_({lease.index for lease in leases}))).all())
        return [(lease.job_id, lease.index, lease.token) in held for lease in leases]

    def finish_item(self, lease: ItemLease, *, result: dict | None = None, error: dict | None = None,
                    now: datetime | None = None) -> ItemFinish:
        """Record a leased item's outcome, if `lease` is still current (compare-and-set on its
        token), with the job's counters; and close the job in the same transaction when no
        item is left pending or running: completed (any item done), failed (none done) or
        canceled (cancel requested), with its `job.completed` queued exactly once. A lost lease
        records nothing: `recorded` is False and the caller must discard its result."""
        return self.finish_items([(lease, result, error)], now)[0]

    def finish_items(self, outcomes: Sequence[Outcome], now: datetime | None = None) -> list[ItemFinish]:
        """`finish_item` for several leased items in one transaction (the job's counters
        bumped and the job settled once per job). The job a call closed is named on the
        last item recorded of that job. A result holding `PENDING_DELIVERY` is an item whose
        S3 delivery failed: it is recorded `delivering` (staged, its next try and deadline set;
        not counted, nothing announced) and `service.registry.item_deliveries` settles it."""
        now = now or self.db.now()
        recorded: list[bool] = []
        counts: dict[str, list[int]] = {}  # job id -> [done, failed] recorded here
        closed: dict[str, Job | None] = {}
        with self.db.session() as s, s.begin():
            for lease, result, error in outcomes:
                failed = error is not None
                waiting = not failed and result is not None and PENDING_DELIVERY in result
                # rendered, held until a reviewer decides; or rendered, its delivery to be retried
                held = (lease.review and not failed) or waiting
                values = dict(status="failed" if failed else "awaiting_review" if lease.review else "done",
                              result=result, error=error, lease_until=None, updated_at=now)
                if waiting:
                    pending = result[PENDING_DELIVERY]
                    values.update(status="delivering", result=None, staged=pending["staged"],
                                  deliver_after=pending["retry_at"], deliver_by=pending["deadline"],
                                  deliver_attempts=1, deliver_error=pending["error"][:500])
                ok = s.execute(
                    update(JobItemRow).where(_held(lease)).values(**values)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1
                recorded.append(ok)
                if ok and not held:
                    counts.setdefault(lease.job_id, [0, 0])[1 if failed else 0] += 1
                if ok and not held and lease.webhook_per_item:  # queued before the job's job.completed
                    queue_event(s, lease.tenant_id, lease.job_id, "job.item.completed", now, item_event(lease, error))
            for job_id, (done, failed) in sorted(counts.items()):
                s.execute(update(JobRow).where(JobRow.id == job_id)
                          .values(items_done=JobRow.items_done + done, items_failed=JobRow.items_failed + failed)
                          .execution_options(synchronize_session=False))
                closed[job_id] = settle(s, job_id, now, self.db.postgres)
        last = {lease.job_id: n for n, ((lease, _, _), ok) in enumerate(zip(outcomes, recorded)) if ok}
        return [ItemFinish(ok, closed.get(lease.job_id) if ok and last[lease.job_id] == n else None)
                for n, ((lease, _, _), ok) in enumerate(zip(outcomes, recorded))]

    def release_items(self, leases: Sequence[ItemLease], now: datetime | None = None) -> int:
        """Give leases back unfinished (shutting down, renderer unreachable): each item whose
        token still matches is pending again, its token kept (tokens never go down) and the
        attempt uncounted (a release is not a failed attempt). Returns how many went back."""
        now = now or self.db.now()
        released, jobs = 0, set()
        with self.db.session() as s, s.begin():
            for lease in sorted(leases, key=lambda x: (x.job_id, x.index)):
                if s.execute(
                    update(JobItemRow).where(_held(lease))
                    .values(status="pending", lease_owner=None, lease_until=None, attempts=JobItemRow.attempts - 1,
                            updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1:
                    released += 1
                    jobs.add(lease.job_id)
            for job_id in sorted(jobs):  # a job canceled meanwhile: its released items are canceled
                settle(s, job_id, now, self.db.postgres)
        return released

    def reap_canceled(self, now: datetime | None = None) -> int:
        """Cancel the items nobody will run in jobs being canceled (pending ones, and running
        ones whose holder's lease lapsed), and close those jobs when nothing runs any more.
        `lease_items` and `runnable_tenants` call it; returns how many items it canceled."""
        now = now or self.db.now()
        query = (select(JobItemRow.job_id, JobItemRow.idx, JobItemRow.status, JobItemRow.lease_token)
                 .join(JobRow, JobRow.id == JobItemRow.job_id)
                 .where(JobRow.status.in_(OPEN), JobRow.cancel_requested.is_(True), runnable(now)).limit(PAGE))
        with self.db.reading() as conn:  # every dispatcher poll asks; the write lock only when there is work
            if conn.execute(query.limit(1)).first() is None:
                return 0
        with self.db.session() as s, s.begin():
            rows = s.execute(locking(self.db.postgres, query, JobItemRow)).all()
            canceled = 0
            for row in rows:
                canceled += s.execute(
                    update(JobItemRow)
                    .where(JobItemRow.job_id == row.job_id, JobItemRow.idx == row.idx, JobItemRow.status == row.status,
                           JobItemRow.lease_token == row.lease_token, runnable(now))
                    .values(status="canceled", lease_until=None, updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
            for job_id in sorted({row.job_id for row in rows}):
                settle(s, job_id, now, self.db.postgres)
            return canceled
