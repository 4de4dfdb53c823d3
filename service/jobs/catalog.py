"""Catalogue jobs as the HTTP layer sees them: submit, status, paged results, one image, cancel.

Owns: composing the queue (`store`), the render dispatcher (`dispatcher`) and the webhook
sender (`webhook_sender`) from the settings; what a submission must satisfy before it is
queued (the key's open-job limit, known scene presets, a bounded inline payload), and the
JSON shapes of a job's status and results. Results are read a page at a time and name their
images by URL (presigned S3, or the gateway's own image route for inline delivery), so a read
never holds a whole job in memory. Review: approving items of a job submitted with
`review: true` delivers their held images to the job's target (S3 or inline) and rejecting
drops them, keeping the reviewer's reason; per-item webhooks follow the decision. A job and
its items are named as submitted: its `title`, their SKUs and alt texts. The actions the
`/v1` routes and Studio share (`accept`: a submission, its Idempotency-Key claimed before the
job is written; `cancel_job`; `decide`) are audited here, each with its `job.*` record. Must
never render anything itself, nor answer HTTP.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from service.audit.actions import audited_action
from service.audit.events import job_event

from service.config import Settings
from service.errors import Forbidden, InvalidRequest
from service.gateway.generation import GuardedGeneration
from service.jobs.delivery import DeliveryRetrier, Staging, deliverer_for
from service.jobs.dispatcher import RenderDispatcher
from service.jobs.presets import BUILTIN_SCENES, SIZES
from service.jobs.webhook_sender import WebhookDispatcher
from service.registry import ItemNotFound, Job, JobItem, JobStore, Registry, TenantDelivery, TooManyOpenJobs
from service.registry.idempotency import Idempotency
from service.rendering import GeneratedImage
from service.schemas import JobItemSpec, JobSubmitBody
from service.tenancy import Principal
from service.tenancy.ratelimit import RateLimited

# Inline results carry base64 images in the database and in the response: past this many
# images a job must deliver to S3.
MAX_INLINE_IMAGES = 50
MAX_PAGE_ITEMS = 100
IMAGE_ROUTE = "/v1/jobs/image"


def check_job_id(value: str | None) -> str:
    """A job id as a caller sent it: 32 lowercase hex characters."""
    if not value:
        raise InvalidRequest("pass the job id as ?job_id=", field="job_id")
    if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidRequest("job_id is 32 lowercase hex characters", field="job_id")
    return value


def accepted(job_id: str, items: int) -> dict:
    """The answer to a submission: the job's id (and BentoML's `task_id`) and where to poll."""
    return {"job_id": job_id, "task_id": job_id, "status": "queued", "items_total": items,
            "status_url": f"/v1/jobs/status?job_id={job_id}", "result_url": f"/v1/jobs/get?job_id={job_id}"}


@dataclass(frozen=True)
class Accepted:
    """A submission's answer (`response`, with its HTTP status) and whether it replays a stored one."""

    response: dict
    status_code: int = 202
    replayed: bool = False


class CatalogJobs:
    registry: Registry | None = None  # Idempotency-Keys are claimed in it (`accept`)
    record: Callable[[dict], object] | None = None  # the audit log's append (each action's record)
    retrier: DeliveryRetrier | None = None  # S3 deliveries being retried
    delivery_deadline_s: int = 86400
    def __init__(self, store: JobStore, renders: RenderDispatcher, dispatcher: WebhookDispatcher,
                 deliverer: Callable[[str], object], revoked_twins: Callable[[], frozenset[str]] = frozenset,
                 screen: Callable[[Principal, JobItemSpec, int], bool] = lambda principal, item, index: False):
        self.revoked_twins = revoked_twins  # ids of revoked twins, as the registry says now
        # At submission: refuses an item its consent refuses (text, declared garment category);
        # True when the item will need review (ConsentGate.screen_job_item).
        self.screen = screen
        self.store = store
        self.renders = renders
        self.dispatcher = dispatcher
        self.deliverer = deliverer

    @classmethod
    def build(cls, settings: Settings, registry: Registry, generation: GuardedGeneration,
              purge_assets: Callable[[timedelta], object] = lambda age: 0, staging_blobs=None) -> "CatalogJobs":
        """`staging_blobs`: the shared object store where images of deliveries being retried
        wait (the S3 asset store's blobs); None keeps them in the items' rows."""
        store = JobStore(registry.db)

        def housekeeping() -> None:  # hourly, from the webhook sender's thread
            registry.idempotency.purge_expired()
            store.jobs.purge_finished(timedelta(days=settings.job_retention_days))
            purge_assets(timedelta(days=settings.job_retention_days))  # input images and kept outputs alike

        dispatcher = WebhookDispatcher(store.delivery, allow_private=settings.dev_callbacks, schedule=settings.webhook_schedule_s,
                                       poll_s=settings.job_poll_ms / 1000, housekeeping=housekeeping)
        deliverer = lambda target: deliverer_for(target, settings.s3_endpoint_url, settings.s3_region)  # noqa: E731

        def notify(tenant_id: str, job_id: str, event_type: str, data: dict) -> None:
            if store.delivery.enqueue_event(tenant_id, job_id, event_type, data):
                dispatcher.wake()

        retrier = DeliveryRetrier(store.retries, deliverer, Staging(staging_blobs), settings.delivery_deadline_s,
                                  dispatcher.wake, poll_s=max(1.0, settings.job_poll_ms / 1000))
        renders = RenderDispatcher(store, registry, generation, deliverer, notify, dispatcher.wake,
                                   window=settings.window, batch=settings.dispatch_batch, lease_s=settings.job_lease_s,
                                   poll_s=settings.job_poll_ms / 1000, retrier=retrier,
                                   lanes=settings.dispatch_lanes, prefetch=generation.prefetch_hint)
        jobs = cls(store, renders, dispatcher, deliverer,
                   revoked_twins=lambda: frozenset(t.id for t in registry.twins.revoked_twins()),
                   screen=generation.tenancy.gate.screen_job_item)
        jobs.registry, jobs.record = registry, generation.audit.record
        jobs.retrier, jobs.delivery_deadline_s = retrier, settings.delivery_deadline_s
        return jobs

    def start(self) -> None:
        self.renders.start()
        self.dispatcher.start()

    def stop(self) -> None:
        """Stop dispatching (leases of unfinished items go back to the queue) and sending."""
        self.renders.stop()
        self.dispatcher.stop()

    def submit(self, principal: Principal, body: JobSubmitBody, reserve: Callable[[str], bool] = lambda job_id: True) -> str:
        """Check a submission, then queue it under a new job id. `reserve(job_id)` runs just
        before the job is written (the Idempotency-Key claim): False means another request
        with the same key got there first, and no job is created. Returns the job id."""
        review, delivery = self._check(principal, body)
        job_id = uuid.uuid4().hex
        if not reserve(job_id):
            return job_id
        self.store.jobs.create_job(  # counts the key's open jobs again, atomically (gateways race)
            principal.tenant_id, principal.key_id, [item.model_dump(mode="json") for item in body.items],
            priority=body.priority, output_target=delivery.output_target, url_expiry_s=delivery.url_expiry_s,
            webhook_per_item=body.webhook_per_item, job_id=job_id, review=review,
            max_open=principal.max_concurrent_jobs, title=body.title,
        )
        self.renders.wake()
        return job_id

    def check(self, principal: Principal, body: JobSubmitBody) -> bool:
        """Refuse a submission that cannot run; True when its items are to be held for review
        (asked for, or some item's garments need it under its twin's consent)."""
        return self._check(principal, body)[0]

    def _check(self, principal: Principal, body: JobSubmitBody) -> tuple[bool, TenantDelivery]:
        """`check`, and the tenant's delivery settings it read (the job takes its target from them)."""
        open_jobs = self.store.jobs.open_jobs(principal.key_id)
        if open_jobs >= principal.max_concurrent_jobs:
            raise RateLimited(f"this API key already has {open_jobs} jobs queued or running "
                              f"(limit {principal.max_concurrent_jobs})", retry_after=30, code="too_many_concurrent")
        scenes = BUILTIN_SCENES | self.store.delivery.presets(principal.tenant_id)
        for index, item in enumerate(body.items):
            if item.scene is not None and item.scene not in scenes:
                raise InvalidRequest(f"unknown scene preset {item.scene!r}; known: {sorted(scenes)}",
                                     field=f"items.{index}.scene")
        review = body.review
        for index, item in enumerate(body.items):
            review = self.screen(principal, item, index) or review
        delivery = self.store.delivery.tenant_delivery(principal.tenant_id)
        images = sum(item.count for item in body.items)
        if delivery.output_target == "inline" and images > MAX_INLINE_IMAGES:
            raise InvalidRequest(f"{images} images is more than {MAX_INLINE_IMAGES} for inline delivery; "
                                 "ask an operator to set an S3 output target for your tenant", field="items")
        if review and images > MAX_INLINE_IMAGES:  # held inline until a person decides on each
            why = "" if body.review else " (its twin's consent requires review of unverified garments)"
            raise InvalidRequest(f"{images} images is more than {MAX_INLINE_IMAGES} for one review job{why}; "
                                 "split the job", field="items")
        return review, delivery

    def status(self, tenant_id: str, job_id: str) -> dict:
        """Counts and state; no items (page through them with `results`)."""
        return self._summary(self.store.jobs.get_job(tenant_id, job_id, with_items=False))

    def list_jobs(self, tenant_id: str, limit: int = 50) -> dict:
        """The tenant's newest jobs with their counts, newest first."""
        return {"jobs": [self._summary(job) for job in self.store.jobs.list_jobs(tenant_id, limit=limit)]}

    def _summary(self, job: Job) -> dict:
        body = summary(job)
        if job.review:
            body["items_awaiting_review"] = self.store.jobs.count_items(job.id, "awaiting_review")
        return body

    def results(self, tenant_id: str, job_id: str, offset: int = 0, limit: int = 20) -> dict:
        """One page of items with their images as URLs; partial while the job runs. Images of
        a twin revoked since are withheld (no URL)."""
        if not 1 <= limit <= MAX_PAGE_ITEMS:
            raise InvalidRequest(f"limit must be 1-{MAX_PAGE_ITEMS}", field="limit")
        if offset < 0:
            raise InvalidRequest("offset must be >= 0", field="offset")
        job, page = self.store.jobs.job_page(tenant_id, job_id, offset=offset, limit=limit)
        deliverer = self.deliverer(job.output_target)
        revoked = self.revoked_twins()
        items = []
        for item in page:
            entry = {"index": item.index, "sku": item.spec.get("sku"), "status": item.status, "error": item.error}
            named = named_alt_text(item)
            if item.delivery is not None:  # a delivery retried: its tries, next try and deadline
                entry["delivery"] = item.delivery
            if item.result is not None:
                result = dict(item.result)
                if result.get("twin_id") in revoked:
                    result["images"], result["withheld"] = [], "revoked"
                elif job.output_target == "inline" or item.status == "awaiting_review":  # held images are inline
                    result["images"] = [{**{k: v for k, v in image.items() if k != "data_base64"},
                                         "url": f"{IMAGE_ROUTE}?job_id={job.id}&index={item.index}&n={image['n']}"}
                                        for image in result["images"]]
                else:
                    result["images"] = [deliverer.with_urls(image, job.url_expiry_s) for image in result["images"]]
                entry.update(result)
                if named and "alt_text" in entry:
                    entry["alt_text"] = named
            items.append(entry)
        following = offset + len(page)
        return {**self._summary(job), "offset": offset, "limit": limit, "items": items,
                "next_offset": following if following < job.items_total else None}

    def image(self, tenant_id: str, job_id: str, index: int, n: int) -> tuple[bytes | None, str, str | None]:
        """One stored image of an item: (bytes, format, None) inline, or (None, format, URL) on S3."""
        job = self.store.jobs.get_job(tenant_id, job_id, with_items=False)
        item = self.store.jobs.get_item(tenant_id, job_id, index)
        images = (item.result or {}).get("images") or []
        image = next((i for i in images if i.get("n") == n), None)
        if image is None:
            raise ItemNotFound(f"item {index} of job {job_id} has no image {n}", field="n")
        if (item.result or {}).get("twin_id") in self.revoked_twins():
            raise Forbidden("the twin of this image has been revoked; it is withheld", code="revoked")
        if "data_base64" in image:  # inline delivery, or held for review
            return base64.b64decode(image["data_base64"]), image["format"], None
        return None, image["format"], self.deliverer(job.output_target).with_urls(image, 300)["url"]

    def redeliver(self, job_id: str, index: int) -> dict:
        """An operator's redelivery of one item (any tenant's): tried now, with a fresh deadline
        (`ItemDeliveries.redeliver` says which items qualify)."""
        item = self.store.retries.redeliver(check_job_id(job_id), index, self.delivery_deadline_s)
        if self.retrier is not None:
            self.retrier.wake()
        return {"job_id": job_id, "index": item.index, "status": item.status, "delivery": item.delivery}

    def cancel(self, tenant_id: str, job_id: str) -> dict:
        return self._summary(self.store.jobs.request_cancel(tenant_id, job_id))

    # -- the audited actions: what the /v1 routes and Studio call ----------------------------

    def accept(self, principal: Principal, body: JobSubmitBody, *, client_ip: str | None,
               idempotency_key: str | None = None) -> "Accepted":
        """Queue `body` for `principal`, audited (`job.submit`). With an Idempotency-Key, a retry
        of the same body answers with the first job: the key is claimed before the job is
        written, so of two concurrent requests with one key only the first creates a job, and
        both answer with it."""
        with audited_action(self.record, job_event, action="submit", client_ip=client_ip,
                            actor=principal.audit_fields()) as details:
            once = Idempotency.of(self.registry, principal.tenant_id, idempotency_key, body)
            stored = once.stored()
            if stored is not None:
                details.update(job_id=stored.response["job_id"], replayed=True)
                return Accepted(stored.response, stored.status_code, replayed=True)
            claimed: dict = {}

            def reserve(job_id: str) -> bool:
                response = accepted(job_id, len(body.items))
                claimed["response"] = response if once.key is None else once.store(response, 202).response
                return claimed["response"]["job_id"] == job_id

            try:
                self.submit(principal, body, reserve)
            except TooManyOpenJobs:  # another gateway took the key's last slot after our first count
                if claimed.get("response", {}).get("job_id") is not None:
                    once.release()
                raise
            details.update(job_id=claimed["response"]["job_id"], items=len(body.items), priority=body.priority)
            return Accepted(claimed["response"], 202)

    def cancel_job(self, principal: Principal, job_id: str | None, *, client_ip: str | None) -> dict:
        """Cancel one of the caller's jobs, audited (`job.cancel`)."""
        with audited_action(self.record, job_event, action="cancel", client_ip=client_ip,
                            actor=principal.audit_fields()) as details:
            details["job_id"] = check_job_id(job_id)
            return self.cancel(principal.tenant_id, details["job_id"])

    def decide(self, principal: Principal, job_id: str, items: list[int], *, approve: bool,
               client_ip: str | None, reasons: dict[int, str] | None = None) -> dict:
        """Approve or reject items of the caller's job awaiting review, audited (`job.approve`,
        `job.reject`; a rejection's reasons, by item, already checked by the body's schema, are
        kept with the items and in the record)."""
        reasons = {} if approve else {index: text for index, text in (reasons or {}).items() if index in items}
        with audited_action(self.record, job_event, action="approve" if approve else "reject", client_ip=client_ip,
                            actor=principal.audit_fields(), job_id=job_id, items=list(items),
                            **({"reasons": {str(i): r for i, r in sorted(reasons.items())}} if reasons else {})) as details:
            if approve:
                decided = self.approve(principal.tenant_id, job_id, list(items))
            else:
                decided = self.reject(principal.tenant_id, job_id, list(items), reasons)
            details["decided"] = decided["decided"]
            return decided

    # -- review ---------------------------------------------------------------------------

    def approve(self, tenant_id: str, job_id: str, indexes: list[int]) -> dict:
        """Deliver the held images of items awaiting review to the job's target, then record
        them as done. An item whose twin was revoked since is refused (reject it instead)."""
        job, items = self.store.jobs.awaiting_items(tenant_id, job_id, indexes)
        revoked = self.revoked_twins()
        for item in items:
            if (item.result or {}).get("twin_id") in revoked:
                raise Forbidden(f"the twin of item {item.index} has been revoked; its images can only be rejected",
                                code="revoked")
        deliverer = self.deliverer(job.output_target)
        results = {item.index: self._deliver_held(deliverer, job, item) for item in items}
        decided, closed = self.store.jobs.decide_items(tenant_id, job_id, results, approve=True)
        return self._decided(job, items, decided, closed, "done")

    def reject(self, tenant_id: str, job_id: str, indexes: list[int], reasons: dict[int, str] | None = None) -> dict:
        """Drop the held images of items awaiting review; they are never delivered. Each item's
        reason (`reasons[index]`) is kept in its result and its `job.item.completed`."""
        job, items = self.store.jobs.awaiting_items(tenant_id, job_id, indexes)
        decided, closed = self.store.jobs.decide_items(tenant_id, job_id, {i.index: i.result for i in items},
                                                       approve=False, reasons=reasons)
        return self._decided(job, items, decided, closed, "rejected")

    @staticmethod
    def _deliver_held(deliverer, job: Job, item: JobItem) -> dict:
        result = dict(item.result or {})
        if named_alt_text(item):
            result["alt_text"] = named_alt_text(item)
        if job.output_target == "inline":
            return result  # the held images are the delivered ones
        sidecar = {"job_id": job.id, "item": item.index, **{k: result.get(k) for k in (
            "generation_id", "twin_id", "prompt", "sku", "metadata", "alt_text")}}
        images = []
        for held in result.get("images", []):
            image = GeneratedImage(index=held["n"], format=held["format"], width=held["width"], height=held["height"],
                                   seed=held["seed"], data=base64.b64decode(held["data_base64"]), sha256=held["sha256"],
                                   watermark_id=held.get("watermark_id"))
            images.append(deliverer.store(job.id, item.index, image.index, image, sidecar))
        return {**result, "images": images}

    def _decided(self, job: Job, items: list[JobItem], decided: list[int], closed: Job | None, status: str) -> dict:
        # Each decided item's job.item.completed was queued in the deciding transaction, before
        # the job's job.completed (service.registry.jobs.decide_items).
        if closed is not None or (job.webhook_per_item and decided):
            self.dispatcher.wake()
        return {**self._summary(self.store.jobs.get_job(job.tenant_id, job.id)), "decided": decided}


def named_alt_text(item: JobItem) -> str | None:
    """The alt text the item was submitted with (`alt_text`), if any: it names the image in
    the item's results, over the one made from the twin, garment and scene."""
    return (item.spec or {}).get("alt_text") or None


def summary(job: Job) -> dict:
    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    return {
        "job_id": job.id, "task_id": job.id, "status": job.status, "priority": job.priority,
        **({"title": job.title} if job.title else {}),
        "items_total": job.items_total, "items_done": job.items_done, "items_failed": job.items_failed,
        "output": "inline" if job.output_target == "inline" else "s3", "cancel_requested": job.cancel_requested,
        "created_at": iso(job.created_at), "started_at": iso(job.started_at), "finished_at": iso(job.finished_at),
        **({"review": True, "items_rejected": job.items_rejected} if job.review else {}),
    }


__all__ = ["CatalogJobs", "MAX_INLINE_IMAGES", "SIZES", "summary"]
