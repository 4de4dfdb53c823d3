"""The gateway's dispatcher: catalogue items, leased one by one, fanned out to the renderers.

Owns: a window of render calls in flight (`ATELIER_DISPATCH_WINDOW`: the load the platform's
autoscaler sees), the choice of the next tenant by deficit round robin (priority only orders
items within a tenant), grouping a job's items of one shape into one render call across up
to `lanes` distinct twins (ATELIER_SLOT_LANES: the renderer runs them as one pipeline batch,
each row reading its twin's lane; 1 under TensorRT, whose batches group by twin; fairness
charges items, whatever their twins), a prefetch hint for the group's twins as it is leased
(`prefetch`: `GuardedGeneration.prefetch_hint`, which asks a renderer to load the adapters
while earlier work runs), renewing the items' leases while their call runs, retrying busy or absent renderers with backoff
(leases go back to the queue meanwhile, so a renderer scaled to zero resumes the job when it
returns), and recording each item only while its lease, with its fencing token, is still
held: a dispatcher that lost an item's lease discards its images and never delivers them.
Consent, prompt policy and the audit record of each item are the guarded generation's, under
the key that submitted the job as it is now. An item of a review job is held, not delivered:
its images stay inline in its result (`awaiting_review`) and nothing is announced until a
reviewer decides (`CatalogJobs.approve` delivers then). So is an item whose garments the twin's
consent wants reviewed (`Pending.review`, set at admission): its job becomes a review job then,
if it was not submitted as one. An item whose S3 delivery fails waits as `delivering`, its
images staged, and is announced when a retry delivers it or its deadline passes
(`service.jobs.delivery`). Must never answer HTTP or render anything.
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
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace

from service.assets.fetch import patient_fetches
from service.errors import AtelierError, RendererUnavailable
from service.gateway.generation import GuardedGeneration, Pending
from service.jobs.delivery import Deliverer, DeliveryFailed, DeliveryRetrier
from service.jobs.fairness import DeficitRoundRobin
from service.jobs.presets import BUILTIN_SCENES, expand_item
from service.registry import ItemFinish, ItemLease, JobStore, Registry
from service.rendering import Backoff
from service.schemas import GenerateRequest, JobItemSpec
from service.tenancy import KeyRef, Limits, Principal

log = logging.getLogger("atelier.dispatch")
JOB_ROUTE = "/v1/jobs/submit"


def error_of(exc: BaseException) -> dict:
    if isinstance(exc, AtelierError):
        return {"code": exc.code, "message": exc.message, "field": exc.field}
    return {"code": "internal_error", "message": "an unexpected error occurred; it has been logged", "field": None}


def item_shape(spec: dict) -> tuple:
    """Items of equal shapes can share one pipeline batch whatever their twins (one size, step
    count and guidance, one outfit and pose)."""
    return (spec.get("size"), spec.get("width"), spec.get("height"), spec.get("steps", 30),
            spec.get("guidance_scale", 5.0), json.dumps([spec.get("garments") or [], spec.get("pose")], sort_keys=True))


def item_group(spec: dict) -> tuple:
    """Items with equal groups can share one render call with one twin (one twin and one shape)."""
    return (spec.get("twin_id"),) + item_shape(spec)


class LaneGroup:
    """`group_of` for one lease (`Leases.lease_items`): items of the first item's shape, while
    they name at most `lanes` distinct twins. The lease reads the first item's group, then the
    job's further runnable items in index order, and takes those of equal group: so an item of
    a twin past the limit gets a group of its own and waits for a later call. Stateful: one
    instance per lease. (The dispatcher checks the twins of what it leased all the same.)"""

    def __init__(self, lanes: int):
        self.lanes = max(1, lanes)
        self.shape: tuple | None = None
        self.twins: list[str] = []

    def __call__(self, spec: dict) -> tuple:
        shape = item_shape(spec)
        if self.shape is None:
            self.shape = shape
        if shape != self.shape:
            return ("shape",) + shape
        twin = spec.get("twin_id")
        if twin is not None and twin not in self.twins:  # the base model takes no lane
            if len(self.twins) >= self.lanes:
                return ("lanes", twin)
            self.twins.append(twin)
        return shape


@dataclass(frozen=True)
class PreparedItem:
    """A leased item made ready: the pending generation, and the alt text its result carries."""

    pending: Pending
    alt_text: str


class RenderDispatcher:
    def __init__(self, store: JobStore, registry: Registry, generation: GuardedGeneration,
                 deliverer_for: Callable[[str], Deliverer], notify: Callable[..., object],
                 on_job_closed: Callable[[], None] = lambda: None, *, window: int = 1, batch: int = 4,
                 lease_s: float = 30.0, poll_s: float = 0.5, call_wait_s: float = 10.0,
                 retrier: DeliveryRetrier | None = None, lanes: int = 4,
                 prefetch: Callable[[list[str]], object] | None = None):
        self.store = store
        self.registry = registry
        self.generation = generation
        self.deliverer_for = deliverer_for
        self.notify = notify  # (tenant_id, job_id, event type, data): a per-item webhook when the tenant has one
        self.on_job_closed = on_job_closed  # e.g. wake the webhook sender
        # S3 deliveries that fail are staged and retried (service.jobs.delivery); None: failed at once
        self.retrier = retrier if retrier is not None and retrier.enabled else None
        self.window, self.batch, self.lease_s, self.poll_s, self.call_wait_s = window, batch, lease_s, poll_s, call_wait_s
        self.lanes = max(1, lanes)  # distinct twins per render call (1: a call carries one twin)
        self.prefetch = prefetch  # (twin ids) -> None: a non-blocking hint to a renderer; None: no hints
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
        if self.retrier is not None:
            self.retrier.start()
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
        if self.retrier is not None:
            self.retrier.stop()
        deadline = time.monotonic() + grace_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._held_lock:
            leases = list(self._held.values())
            self._held.clear()
        released = self.store.leases.release_items(leases) if leases else 0
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
        """The next group of items, from the tenant whose turn it is: one job's items of one
        shape, naming at most `lanes` twins. Their twins' adapters are hinted to a renderer."""
        with self._fair_lock:
            tenant = self.fair.pick(self.store.leases.runnable_tenants())  # canceled jobs reaped there
            if tenant is None:
                return []
            group_of = LaneGroup(self.lanes) if self.lanes > 1 else item_group
            leases = self._within_lanes(self.store.leases.lease_items(
                self.owner, self.lease_s, tenant_id=tenant, limit=self.batch, group_of=group_of, reap=False))
            if leases:
                self.fair.charge(tenant, len(leases))
        if leases and self.prefetch is not None:
            try:
                self.prefetch(list(dict.fromkeys(lease.spec.get("twin_id") for lease in leases
                                                 if lease.spec.get("twin_id"))))
            except Exception:  # a hint is an optimisation: never lose a group for it
                log.exception("prefetch hint failed")
        return leases

    def _within_lanes(self, leases: list[ItemLease]) -> list[ItemLease]:
        """`leases` whose items name at most `lanes` twins; any item past that goes back to the
        queue (only if a lease ever read groups other than `LaneGroup` expects)."""
        twins: list = []
        kept, extra = [], []
        for lease in leases:
            twin = lease.spec.get("twin_id")
            if twin is not None and twin not in twins:
                if len(twins) >= self.lanes:
                    extra.append(lease)
                    continue
                twins.append(twin)
            kept.append(lease)
        if extra:
            self.store.leases.release_items(extra)
        return kept

    def dispatch(self, leases: list[ItemLease]) -> None:
        """Render one group and record each item while its lease holds."""
        # Its garment/pose URL fetches wait for a fetch slot rather than fail the item (these
        # threads are the dispatcher's own, bounded by its window).
        with self._holding(leases), self._heartbeat(leases), patient_fetches():
            pending, failed = [], []
            # One job per group: one tenant (its presets) and one submitting key; up to `lanes` twins.
            scenes = BUILTIN_SCENES | self.store.delivery.presets(leases[0].tenant_id)
            submitter, twins = self._submitter(leases[0]), {}
            for lease in leases:
                try:
                    pending.append((lease, self.prepare(lease, scenes, submitter, twins)))
                except Exception as exc:  # e.g. a scene preset deleted since the job was submitted
                    failed.append((lease, exc, None))
            if failed:
                self.complete_all(failed)
            if not pending:
                return
            try:
                outcomes = self.generation.run_batch([p.pending for _, p in pending], wait_s=self.call_wait_s,
                                                     stop=self._stop, retry_later=True)
            except RendererUnavailable:
                released = self.store.leases.release_items([lease for lease, _ in pending])
                delay = self._backoff.next_delay()
                self._resume_at = time.monotonic() + delay
                log.info("renderer unavailable; items back in the queue",
                         extra={"fields": {"items": released, "retry_in_s": round(delay, 2)}})
                return
            self._backoff = Backoff(first_s=0.2, cap_s=5.0)
            finished = []
            for (lease, p), outcome in zip(pending, outcomes):
                if p.pending.review and not lease.review and not isinstance(outcome, BaseException):
                    # its garments need a person's review (the twin's consent): held, and the job a review job
                    self.store.jobs.require_review(lease.job_id)
                    lease = replace(lease, review=True)
                finished.append((lease, outcome, p))
            self.complete_all(finished)

    def complete(self, lease: ItemLease, outcome, prepared: "PreparedItem | None" = None) -> bool:
        """Deliver and record one item (`prepared`: what `prepare` made of it, needed to deliver
        images); False, and nothing delivered, if its lease was lost."""
        return self.complete_all([(lease, outcome, prepared)])[0]

    def complete_all(self, finished: list[tuple[ItemLease, object, "PreparedItem | None"]]) -> list[bool]:
        """`complete` for a group: which leases still hold is read once, the images of those
        that do are delivered, and every outcome is recorded in one transaction."""
        rendered = [lease for lease, outcome, _ in finished if not isinstance(outcome, BaseException)]
        holding = dict(zip(((lease.job_id, lease.index) for lease in rendered), self.store.leases.holding(rendered)))
        to_record = []  # (lease, result, error)
        for lease, outcome, prepared in finished:
            result, error = None, None
            if isinstance(outcome, BaseException):
                error = error_of(outcome)
            elif not holding[(lease.job_id, lease.index)]:
                log.warning("lease lost; result discarded", extra={"fields": {"job_id": lease.job_id, "item": lease.index,
                                                                              "token": lease.token}})
                continue
            else:
                try:
                    result = self._deliver(lease, outcome, prepared)
                except AtelierError as exc:
                    error = error_of(exc)
            to_record.append((lease, result, error))
        finishes = self.store.leases.finish_items(to_record) if to_record else []
        announced = {(lease.job_id, lease.index): self._announce(lease, error, finish)
                     for (lease, _, error), finish in zip(to_record, finishes)}
        return [announced.get((lease.job_id, lease.index), False) for lease, _, _ in finished]

    def _announce(self, lease: ItemLease, error: dict | None, finish: ItemFinish) -> bool:
        """After recording: the item's own webhook, and the sender woken when its job closed."""
        if not finish.recorded:
            log.warning("lease lost; outcome not recorded", extra={"fields": {"job_id": lease.job_id, "item": lease.index}})
            return False
        # The item's job.item.completed was queued with its outcome, in the transaction that
        # recorded it and before any job.completed (held review items: when decided).
        announced = lease.webhook_per_item and not (lease.review and error is None)
        if finish.job_closed is not None:
            log.info("job finished", extra={"fields": {"job_id": lease.job_id, "status": finish.job_closed.status}})
        if announced or finish.job_closed is not None:
            self.on_job_closed()  # wakes the webhook sender
        return True

    def prepare(self, lease: ItemLease, scenes: dict,
                submitter: Callable[[], AbstractContextManager[Principal]] | None = None,
                twins: dict | None = None) -> "PreparedItem":
        """The item's generation request (scene presets and garment text expanded) and alt text.
        A group passes its `submitter` (the key checked once) and a `twins` cache (one read)."""
        spec = JobItemSpec.model_validate(lease.spec)
        twins = {} if twins is None else twins
        if spec.twin_id not in twins:
            twins[spec.twin_id] = self.registry.twins.get_twin(spec.twin_id)
        twin = twins[spec.twin_id]
        expanded = expand_item(lease.spec, scenes, twin.display_name if twin else spec.twin_id)
        request = GenerateRequest(
            twin_id=spec.twin_id, prompt=expanded.prompt, negative_prompt=expanded.negative_prompt,
            width=expanded.width, height=expanded.height, steps=spec.steps, guidance_scale=spec.guidance_scale,
            seed=spec.seed, num_images=spec.count, output_format=spec.output_format, use=spec.use,
            territory=spec.territory, garments=spec.garments, pose=spec.pose,
        )
        pending = Pending(request, submitter or self._submitter(lease), JOB_ROUTE,
                          job={"job_id": lease.job_id, "item": lease.index, "lease_token": lease.token})
        return PreparedItem(pending, expanded.alt_text)

    def _deliver(self, lease: ItemLease, result, prepared: "PreparedItem") -> dict:
        spec = lease.spec
        alt = prepared.alt_text
        sidecar = {"job_id": lease.job_id, "item": lease.index, "generation_id": result.generation_id,
                   "twin_id": spec["twin_id"], "prompt": prepared.pending.request.prompt, "sku": spec.get("sku"),
                   "metadata": spec.get("metadata") or {}, "alt_text": alt}
        deliverer = self.deliverer_for("inline" if lease.review else lease.output_target)  # review: held here
        delivered = {"generation_id": result.generation_id, "twin_id": spec["twin_id"], "sku": spec.get("sku"),
                     "metadata": spec.get("metadata") or {}, "alt_text": alt, "prompt": sidecar["prompt"],
                     "seed": result.seed, "rendered_by": result.worker}
        try:
            images = [deliverer.store(lease.job_id, lease.index, image.index, image, sidecar) for image in result.images]
        except DeliveryFailed as exc:
            if self.retrier is None:
                raise
            # staged, and retried by any gateway until the deadline: the item waits as `delivering`
            return self.retrier.pending(lease.job_id, lease.index, delivered, sidecar, result.images, exc,
                                        self.store.db.now())
        return {**delivered, "images": images}

    def _submitter(self, lease: ItemLease) -> Callable[[], AbstractContextManager[Principal]]:
        """Admission (`Tenancy.admit`) as the key that submitted the job, as it is now (revoked
        keys stop their jobs' items), checked once however many of the job's items use it.
        Items spend none of the key's per-minute or concurrency limits (`Limits.NONE`): the
        submission spent its request and its job counts against `max_concurrent_jobs`; this
        window and the fair share pace the items. A refusal is recorded in each item's own
        generation record (no `route`: not audited twice)."""
        checked: list = []
        key = KeyRef(lease.key_id, lease.tenant_id, named="the API key that submitted this job")

        @contextmanager
        def admit() -> Iterator[Principal]:
            if not checked:
                try:
                    with self.generation.tenancy.admit(key, "generate", limits=Limits.NONE) as principal:
                        checked.append(principal)
                except AtelierError as exc:
                    checked.append(exc)
            if isinstance(checked[0], AtelierError):
                raise checked[0]
            yield checked[0]

        return admit

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
                    lost = [lease for lease, ok in zip(leases, self.store.leases.renew_items(leases, self.lease_s)) if not ok]
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
