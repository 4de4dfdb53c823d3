"""Where a tenant's results and events go: delivery settings, scene presets, the webhook delivery log.

Owns: each tenant's delivery settings (output target, URL expiry, webhook URL and secret), its
own scene presets, and the webhook delivery log every replica shares: queueing an event
(`queue_event`; `queue_job_completed` inside the transaction that closes a job), claiming a due
delivery so that one replica sends it, recording each attempt with its next try, listing and
redelivering. Must never post anything (that is `service.jobs.webhook_sender`'s), never queue
an event for a tenant without a webhook URL and secret, and never log a secret.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, not_, select, update
from sqlalchemy.orm import Session, aliased

from service.registry.db import Database
from service.registry.job_records import Delivery, DeliveryNotFound, ItemLease, TenantDelivery, delivery_of
from service.registry.models import JobItemRow, JobRow, ScenePresetRow, TenantSettingsRow, WebhookDeliveryRow


def queue_event(s: Session, tenant_id: str, job_id: str | None, event_type: str, now: datetime,
                data: dict) -> str | None:
    """Queue an event for the tenant's webhook in `s`'s transaction; None when it has none."""
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


def _completion_held():
    """A job's `job.completed` waits while another event of that job is still pending (its item
    events: queued in the same transaction, or retrying): it is always the job's last event."""
    other = aliased(WebhookDeliveryRow)
    return and_(WebhookDeliveryRow.event_type == "job.completed", exists().where(
        other.job_id == WebhookDeliveryRow.job_id, other.status == "pending", other.event_type != "job.completed"))


def queue_job_completed(s: Session, row: JobRow, now: datetime) -> None:
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
    queue_event(s, row.tenant_id, row.id, "job.completed", now, data)


def item_event(lease: ItemLease, error: dict | None) -> dict:
    """The data of a finished item's `job.item.completed` (held review items: when decided)."""
    return {"job_id": lease.job_id, "index": lease.index, "sku": lease.spec.get("sku"),
            "status": "failed" if error else "done", "error": error and error["code"]}


class Deliveries:
    def __init__(self, db: Database):
        self.db = db

    # -- tenant delivery settings and presets ---------------------------------------------

    def tenant_delivery(self, tenant_id: str) -> TenantDelivery:
        with self.db.session() as s:
            row = s.get(TenantSettingsRow, tenant_id)
            if row is None:
                return TenantDelivery()
            return TenantDelivery(row.output_target, row.url_expiry_s, row.webhook_url, row.webhook_secret)

    def set_tenant_delivery(self, tenant_id: str, **changes: Any) -> TenantDelivery:
        with self.db.session() as s, s.begin():
            row = s.get(TenantSettingsRow, tenant_id)
            if row is None:
                row = TenantSettingsRow(tenant_id=tenant_id, output_target="inline", url_expiry_s=3600)
                s.add(row)
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = self.db.now()
        return self.tenant_delivery(tenant_id)

    def presets(self, tenant_id: str) -> dict[str, tuple[str, str | None]]:
        """The tenant's own presets: name -> (prompt fragment, negative fragment)."""
        with self.db.session() as s:
            rows = s.scalars(select(ScenePresetRow).where(ScenePresetRow.tenant_id == tenant_id)).all()
            return {r.name: (r.prompt, r.negative_prompt) for r in rows}

    def put_preset(self, tenant_id: str, name: str, prompt: str, negative_prompt: str | None) -> None:
        with self.db.session() as s, s.begin():
            row = s.scalars(select(ScenePresetRow).where(ScenePresetRow.tenant_id == tenant_id,
                                                         ScenePresetRow.name == name)).first()
            if row is None:
                row = ScenePresetRow(tenant_id=tenant_id, name=name)
                s.add(row)
            row.prompt, row.negative_prompt, row.updated_at = prompt, negative_prompt, self.db.now()

    # -- the webhook delivery log ---------------------------------------------------------

    def enqueue_event(self, tenant_id: str, job_id: str | None, event_type: str, data: dict) -> str | None:
        """Queue an event for the tenant's webhook; None when the tenant has none."""
        with self.db.session() as s, s.begin():
            return queue_event(s, tenant_id, job_id, event_type, self.db.now(), data)

    def claim_due_delivery(self, hold_s: float) -> Delivery | None:
        """Take the oldest due delivery, pushing its next attempt `hold_s` ahead so no other
        replica sends it meanwhile (the attempt's outcome then sets the real next time)."""
        now = self.db.now()
        with self.db.reading() as conn:  # every sender poll: never takes SQLite's write lock
            due = conn.scalars(select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.status == "pending",
                                                                  WebhookDeliveryRow.next_attempt_at <= now,
                                                                  not_(_completion_held()))
                               .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.created_at).limit(8)).all()
        for delivery_id in due:
            with self.db.session() as s, s.begin():  # compare-and-set, the row read back in the same statement
                won = s.scalars(
                    update(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id,
                                                     WebhookDeliveryRow.status == "pending",
                                                     WebhookDeliveryRow.next_attempt_at <= now)
                    .values(next_attempt_at=now + timedelta(seconds=hold_s)).returning(WebhookDeliveryRow)
                    .execution_options(synchronize_session=False)
                ).first()
                if won is not None:
                    return delivery_of(won)
        return None

    def record_attempt(self, delivery_id: str, *, ok: bool, status_code: int | None, error: str | None,
                       duration_ms: float, retry_in_s: float | None) -> Delivery:
        """Log an attempt; schedule the next one (`retry_in_s`) or close the delivery."""
        now = self.db.now()
        with self.db.session() as s, s.begin():
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
            return delivery_of(row)

    def log(self, tenant_id: str | None = None, job_id: str | None = None, limit: int = 100) -> list[Delivery]:
        """The newest deliveries first, of a tenant and/or a job."""
        with self.db.session() as s:
            query = select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.created_at.desc()).limit(limit)
            if tenant_id is not None:
                query = query.where(WebhookDeliveryRow.tenant_id == tenant_id)
            if job_id is not None:
                query = query.where(WebhookDeliveryRow.job_id == job_id)
            return [delivery_of(r) for r in s.scalars(query).all()]

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a delivery again from a fresh schedule (after a receiver outage)."""
        with self.db.session() as s, s.begin():
            row = s.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                raise DeliveryNotFound(f"no webhook delivery {delivery_id!r}", field="delivery_id")
            row.status, row.attempts, row.next_attempt_at = "pending", 0, self.db.now()
            return delivery_of(row)
