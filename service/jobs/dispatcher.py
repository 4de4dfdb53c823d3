"""The gateway's dispatcher: catalogue items, leased one by one, fanned out to the renderers.

Owns: a window of render calls in flight (`ATELIER_DISPATCH_WINDOW`: the load the platform's
autoscaler sees), the choice of the next tenant by deficit round robin (priority only orders
items within a tenant), grouping items of one twin and shape into one render call, renewing
the items' leases while their call runs, retrying busy or absent renderers with backoff
(leases go back to the queue meanwhile, so a renderer scaled to zero resumes the job when it
returns), and recording each item only while its lease, with its fencing token, is still
held: a dispatcher that lost an item's lease discards its images and never delivers them.
Consent, prompt policy and the audit record of each item are the guarded generation's, under
the key that submitted the job as it is now. An item of a review job is held, not delivered:
its images stay inline in its result (`awaiting_review`) and nothing is announced until a
reviewer decides (`CatalogJobs.approve` delivers then). Must never answer HTTP or render anything.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.errors import AtelierError, Forbidden, RendererUnavailable, Unauthorized
from service.generation import GuardedGeneration, Pending
from service.jobs.delivery import Deliverer
from service.jobs.fairness import DeficitRoundRobin
from service.jobs.presets import BUILTIN_SCENES, expand_item
from service.jobs.store import ItemLease, JobStore
from service.registry import Registry
from service.rendering import Backoff
from service.schemas import GenerateRequest, JobItemSpec
from service.tenancy import Principal

log = logging.getLogger("atelier.dispatch")
JOB_ROUTE = "/v1/jobs/submit"


def error_of(exc: BaseException) -> dict:
    if isinstance(exc, AtelierError):
        return {"code": exc.code, "message": exc.message, "field": exc.field}
    return {"code": "internal_error", "message": "an unexpected error occurred; it has been logged", "field": None}


def item_group(spec: dict) -> tuple:
    """Items with equal groups can share one render call (one twin, one shape, one outfit and pose)."""
    return (spec.get("twin_id"), spec.get("size"), spec.get("width"), spec.get("height"), spec.get("steps", 30),
            spec.get("guidance_scale", 5.0), json.dumps([spec.get("garments") or [], spec.get("pose")], sort_keys=True))


@dataclass(frozen=True)
class PreparedItem:
    """A leased item made ready: the pending generation, and the alt text its result carries."""

    pending: Pending
    alt_text: str


class RenderDispatcher:
    def __init__(self, store: JobStore, registry: Registry, generation: GuardedGeneration,
                 deliverer_for: Callable[[str], Deliverer], notify: Callable[..., object],
                 on_job_closed: Callable[[], None] = lambda: None, *, window: int = 1, batch: int = 4,
                 lease_s: float = 30.0, poll_s: float = 0.5, call_wait_s: float = 10.0):
        self.store = store
        self.registry = registry
        self.generation = generation
        self.deliverer_for = deliverer_for
        self.notify = notify  # (tenant_id, job_id, event type, data): a per-item webhook when the tenant has one
        self.on_job_closed = on_job_closed  # e.g. wake the webhook sender
        self.window, self.batch, self.lease_s, self.poll_s, self.call_wait_s = window, batch, lease_s, poll_s, call_wait_s
        self.owner = f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.fair = DeficitRoundRobin()
        self._fair_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._held: dict[tuple[str, int], ItemLease] = {}  # leases in flight, given back on shutdown
        self._held_lock = threading.Lock()
        self._backoff = Backoff(first_s=0.2, cap_s=5.0)
        self._resume_at = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self.window):
            thread = threading.Thread(target=self._loop, name=f"atelier-dispatch-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, grace_s: float = 10.0) -> int:
        """Stop leasing; wait up to `grace_s` for calls in flight, then give back every lease
        still held (another gateway, or this one restarted, dispatches those items again)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + grace_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._held_lock:
            leases = list(self._held.values())
            self._held.clear()
        released = self.store.release_items(leases) if leases else 0
        if released:
            log.info("leases released at shutdown", extra={"fields": {"items": released}})
        return released

    def _loop(self) -> None:
        while not self._stop.is_set():
            pause = self._resume_at - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)
                continue
            try:
                leases = self.lease()
            except Exception:
                log.exception("could not lease items")
                leases = []
            if not leases:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            try:
                self.dispatch(leases)
            except Exception:  # the leases lapse and the items are dispatched again; never kill the loop
                log.exception("dispatch failed", extra={"fields": {"job_id": leases[0].job_id}})

    # -- one render call ------------------------------------------------------------------

    def lease(self) -> list[ItemLease]:
        """The next group of items, from the tenant whose turn it is."""
        with self._fair_lock:
            tenant = self.fair.pick(self.store.runnable_tenants())
            if tenant is None:
                return []
            leases = self.store.lease_items(self.owner, self.lease_s, tenant_id=tenant, limit=self.batch,
                                            group_of=item_group)
            if leases:
                self.fair.charge(tenant, len(leases))
        return leases

    def dispatch(self, leases: list[ItemLease]) -> None:
        """Render one group and record each item while its lease holds."""
        with self._holding(leases), self._heartbeat(leases):
            pending, failed = [], []
            scenes = BUILTIN_SCENES | self.store.presets(leases[0].tenant_id)  # one tenant per group
            for lease in leases:
                try:
                    pending.append((lease, self.prepare(lease, scenes)))
                except Exception as exc:  # e.g. a scene preset deleted since the job was submitted
                    failed.append((lease, exc))
            for lease, exc in failed:
                self.complete(lease, exc)
            if not pending:
                return
            try:
                outcomes = self.generation.run_batch([p.pending for _, p in pending], wait_s=self.call_wait_s,
                                                     stop=self._stop, retry_later=True)
            except RendererUnavailable:
                released = self.store.release_items([lease for lease, _ in pending])
                delay = self._backoff.next_delay()
                self._resume_at = time.monotonic() + delay
                log.info("renderer unavailable; items back in the queue",
                         extra={"fields": {"items": released, "retry_in_s": round(delay, 2)}})
                return
            self._backoff = Backoff(first_s=0.2, cap_s=5.0)
            for (lease, p), outcome in zip(pending, outcomes):
                self.complete(lease, outcome, p)

    def complete(self, lease: ItemLease, outcome, prepared: "PreparedItem | None" = None) -> bool:
        """Deliver and record one item (`prepared`: what `prepare` made of it, needed to deliver
        images); False, and nothing delivered, if its lease was lost."""
        result, error = None, None
        if isinstance(outcome, BaseException):
            error = error_of(outcome)
        else:
            if not self.store.holds(lease):
                log.warning("lease lost; result discarded", extra={"fields": {"job_id": lease.job_id, "item": lease.index,
                                                                              "token": lease.token}})
                return False
            try:
                result = self._deliver(lease, outcome, prepared)
            except AtelierError as exc:
                error = error_of(exc)
        finish = self.store.finish_item(lease, result=result, error=error)
        if not finish.recorded:
            log.warning("lease lost; outcome not recorded", extra={"fields": {"job_id": lease.job_id, "item": lease.index}})
            return False
        if lease.webhook_per_item and not (lease.review and error is None):  # held items: announced when decided
            self.notify(lease.tenant_id, lease.job_id, "job.item.completed", {
                "job_id": lease.job_id, "index": lease.index, "sku": lease.spec.get("sku"),
                "status": "failed" if error else "done", "error": error and error["code"]})
        if finish.job_closed is not None:
            log.info("job finished", extra={"fields": {"job_id": lease.job_id, "status": finish.job_closed.status}})
            self.on_job_closed()
        return True

    def prepare(self, lease: ItemLease, scenes: dict) -> "PreparedItem":
        """The item's generation request (scene presets and garment text expanded) and alt text."""
        spec = JobItemSpec.model_validate(lease.spec)
        twin = self.registry.get_twin(spec.twin_id)
        expanded = expand_item(lease.spec, scenes, twin.display_name if twin else spec.twin_id)
        request = GenerateRequest(
            twin_id=spec.twin_id, prompt=expanded.prompt, negative_prompt=expanded.negative_prompt,
            width=expanded.width, height=expanded.height, steps=spec.steps, guidance_scale=spec.guidance_scale,
            seed=spec.seed, num_images=spec.count, output_format=spec.output_format, use=spec.use,
            territory=spec.territory, garments=spec.garments, pose=spec.pose,
        )
        pending = Pending(request, lambda: self._as_submitter(lease), JOB_ROUTE,
                          job={"job_id": lease.job_id, "item": lease.index, "lease_token": lease.token})
        return PreparedItem(pending, expanded.alt_text)

    def _deliver(self, lease: ItemLease, result, prepared: "PreparedItem") -> dict:
        spec = lease.spec
        alt = prepared.alt_text
        sidecar = {"job_id": lease.job_id, "item": lease.index, "generation_id": result.generation_id,
                   "twin_id": spec["twin_id"], "prompt": prepared.pending.request.prompt, "sku": spec.get("sku"),
                   "metadata": spec.get("metadata") or {}, "alt_text": alt}
        deliverer = self.deliverer_for("inline" if lease.review else lease.output_target)  # review: held here
        images = [deliverer.store(lease.job_id, lease.index, image.index, image, sidecar) for image in result.images]
        return {"generation_id": result.generation_id, "twin_id": spec["twin_id"], "sku": spec.get("sku"),
                "metadata": spec.get("metadata") or {}, "alt_text": alt, "prompt": sidecar["prompt"],
                "seed": result.seed, "images": images, "rendered_by": result.worker}

    @contextmanager
    def _as_submitter(self, lease: ItemLease) -> Iterator[Principal]:
        """The key that submitted the job, as it is now: revoked keys stop their jobs' items."""
        info = self.registry.active_key(lease.key_id)
        if info is None or info.tenant_id != lease.tenant_id:
            raise Unauthorized("the API key that submitted this job is no longer valid", code="invalid_api_key")
        if "generate" not in info.scopes:
            raise Forbidden("the API key that submitted this job lacks the 'generate' scope", code="insufficient_scope")
        yield Principal(info.key_id, info.tenant_id, info.scopes, info.requests_per_minute, info.max_concurrent_jobs)

    @contextmanager
    def _holding(self, leases: list[ItemLease]) -> Iterator[None]:
        with self._held_lock:
            self._held.update({(lease.job_id, lease.index): lease for lease in leases})
        try:
            yield
        finally:
            with self._held_lock:
                for lease in leases:
                    self._held.pop((lease.job_id, lease.index), None)

    @contextmanager
    def _heartbeat(self, leases: list[ItemLease]) -> Iterator[None]:
        """Renew the group's leases every third of their length while its call runs."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.lease_s / 3):
                try:
                    lost = [lease for lease, ok in zip(leases, self.store.renew_items(leases, self.lease_s)) if not ok]
                    if lost:
                        log.warning("leases lost while rendering", extra={"fields": {"items": [(l.job_id, l.index) for l in lost]}})
                except Exception:
                    log.exception("lease renewal failed")

        thread = threading.Thread(target=beat, name="atelier-item-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(5)
