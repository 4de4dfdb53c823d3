"""The job queue and its bookkeeping, in the registry database that every replica shares.

Owns: creating a job with its items, claiming the next job for a replica (a lease: highest
priority first, then oldest; a lease that lapses, because its replica died, lets another
replica or a restarted one take the job over and resume at the first unfinished item),
recording each item's outcome and the job's progress, cancellation, per-tenant delivery
settings and scene presets, and the webhook delivery log. Must never render, upload or post
anything (that is `runner`, `delivery` and `dispatch`), and never hand one tenant another
tenant's job: every read by id is scoped to a tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.errors import AtelierError
from service.registry.models import JobItemRow, JobRow, ScenePresetRow, TenantSettingsRow, WebhookDeliveryRow

FINISHED = ("completed", "failed", "canceled")


class JobNotFound(AtelierError):
    status = 404
    code = "job_not_found"


class DeliveryNotFound(AtelierError):
    status = 404
    code = "delivery_not_found"


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
    status: str
    result: dict | None
    error: dict | None


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
        tuple(JobItem(i.idx, i.spec, i.status, i.result, i.error) for i in items or ()),
    )


def _delivery(row: WebhookDeliveryRow) -> Delivery:
    return Delivery(
        row.id, row.tenant_id, row.job_id, row.event_type, row.url, row.payload, row.status, row.attempts,
        row.next_attempt_at, row.last_status_code, row.last_error, tuple(row.log or ()), row.created_at,
        row.delivered_at,
    )


class JobStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def _session(self) -> Session:
        return self._sessions()

    # -- jobs -----------------------------------------------------------------------------

    def create_job(self, tenant_id: str, key_id: str, items: list[dict], *, priority: int, output_target: str,
                   url_expiry_s: int, webhook_per_item: bool, job_id: str | None = None) -> Job:
        now = utcnow()
        job_id = job_id or uuid.uuid4().hex
        with self._session() as s, s.begin():
            row = JobRow(
                id=job_id, tenant_id=tenant_id, key_id=key_id, status="queued", priority=priority,
                items_total=len(items), items_done=0, items_failed=0, output_target=output_target,
                url_expiry_s=url_expiry_s, webhook_per_item=webhook_per_item, cancel_requested=False,
                created_at=now,
            )
            s.add(row)
            s.flush()
            s.add_all(JobItemRow(job_id=job_id, idx=i, spec=spec, status="pending") for i, spec in enumerate(items))
            return _job(row)

    def get_job(self, tenant_id: str, job_id: str, *, with_items: bool = True) -> Job:
        """The tenant's job; another tenant's id reads as absent (404)."""
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

    def request_cancel(self, tenant_id: str, job_id: str) -> Job:
        """Stop a job: a queued one at once, a running one before its next item."""
        self.get_job(tenant_id, job_id, with_items=False)
        now = utcnow()
        with self._session() as s, s.begin():
            row = s.get(JobRow, job_id, with_for_update=True)
            if row.status not in FINISHED:
                row.cancel_requested = True
                if row.status == "queued":
                    self._cancel_rest(s, row, now)
                    self._completed_event(s, row, now)
        return self.get_job(tenant_id, job_id)

    @staticmethod
    def _cancel_rest(s: Session, row: JobRow, now: datetime) -> None:
        s.execute(update(JobItemRow).where(JobItemRow.job_id == row.id, JobItemRow.status == "pending")
                  .values(status="canceled", updated_at=now))
        row.status, row.finished_at, row.lease_owner, row.lease_expires_at = "canceled", now, None, None

    def _completed_event(self, s: Session, row: JobRow, now: datetime) -> None:
        """Queue `job.completed` in the transaction that closes the job: never one without the other."""
        self._queue_event(s, row.tenant_id, row.id, "job.completed", now, {
            "job_id": row.id, "status": row.status, "items_total": row.items_total, "items_done": row.items_done,
            "items_failed": row.items_failed, "finished_at": now.isoformat()})

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
            return None if row is None else JobItem(row.idx, row.spec, row.status, row.result, row.error)

    def cancel_requested(self, job_id: str) -> bool:
        with self._session() as s:
            return bool(s.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id)))

    def finish_item(self, job_id: str, index: int, *, result: dict | None = None, error: dict | None = None) -> None:
        """Record one item's outcome and the job's counters in one transaction."""
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
