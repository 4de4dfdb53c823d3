"""The job worker of one replica: leases the most urgent job and renders its items in order.

Owns: the worker thread (claim -> render item by item -> close), the lease heartbeat while
a job runs, turning each item into a guarded generation (consent, prompt policy and audit
exactly as over HTTP, under the key that submitted the job, which must still be valid),
handing images to the job's delivery target, and queueing the webhook events. A failing
item is recorded with its error and the job goes on. Must never answer HTTP.

Durability: the queue lives in the registry database. A replica that dies stops renewing
its lease; when the lease lapses (`ATELIER_JOB_LEASE_S`) any replica, or the restarted
one, takes the job over and resumes at the first unfinished item. An item that was being
rendered when the replica died is rendered again (with a new random seed unless the item
gave one).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from service.errors import AtelierError, Forbidden, Unauthorized
from service.jobs.delivery import Deliverer
from service.jobs.presets import BUILTIN_SCENES, expand_item
from service.jobs.store import Job, JobItem, JobStore
from service.registry import Registry
from service.schemas import GenerateRequest, JobItemSpec
from service.tenancy import Principal

log = logging.getLogger("atelier.jobs")


class Renderer(Protocol):
    """One guarded, audited generation (`service.generation.GuardedGeneration` in the service)."""

    def run(self, request: GenerateRequest, *, admit: Callable[[], AbstractContextManager[Principal]], route: str,
            client_ip: str | None, job: dict | None = None) -> Any: ...
JOB_ROUTE = "/v1/jobs/submit"


def error_of(exc: BaseException) -> dict:
    if isinstance(exc, AtelierError):
        return {"code": exc.code, "message": exc.message, "field": exc.field}
    return {"code": "internal_error", "message": "an unexpected error occurred; it has been logged", "field": None}


class JobRunner:
    def __init__(self, store: JobStore, registry: Registry, generation: Renderer,
                 deliverer_for: Callable[[str], Deliverer], notify: Callable[[Job, str, dict], None],
                 lease_s: float = 30.0, poll_s: float = 0.5, on_finished: Callable[[], None] = lambda: None):
        self.store = store
        self.registry = registry
        self.generation = generation
        self.deliverer_for = deliverer_for
        self.notify = notify  # (job, event type, data) -> queues a per-item webhook when the tenant has one
        self.on_finished = on_finished  # e.g. wake the webhook sender
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="atelier-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; the current item finishes (its job is resumed by the next lease)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim_next(self.owner, self.lease_s)
            except Exception:
                log.exception("could not claim a job")
                job = None
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            try:
                self.run_job(job)
            except Exception:  # the lease lapses and the job is resumed; never kill the worker
                log.exception("job failed", extra={"fields": {"job_id": job.id}})

    # -- one job --------------------------------------------------------------------------

    def run_job(self, job: Job) -> Job:
        log.info("job started", extra={"fields": {"job_id": job.id, "items": job.items_total}})
        deliverer = self.deliverer_for(job.output_target)
        scenes = BUILTIN_SCENES | self.store.presets(job.tenant_id)
        with self._heartbeat(job.id):
            while not self._stop.is_set() and not self.store.cancel_requested(job.id):
                item = self.store.next_item(job.id)
                if item is None:
                    break
                try:
                    result, error = self.render(job, item, scenes, deliverer), None
                except Exception as exc:
                    if not isinstance(exc, AtelierError):
                        log.exception("job item failed", extra={"fields": {"job_id": job.id, "item": item.index}})
                    result, error = None, error_of(exc)
                self.store.finish_item(job.id, item.index, result=result, error=error)
                if job.webhook_per_item:
                    self.notify(job, "job.item.completed", {
                        "job_id": job.id, "index": item.index, "sku": item.spec.get("sku"),
                        "status": "failed" if error else "done", "error": error and error["code"]})
        if self._stop.is_set():
            return job  # shutting down: the lease lapses and the job resumes elsewhere
        final = self.store.finish_job(job.id, self.owner)  # also queues job.completed
        log.info("job finished", extra={"fields": {"job_id": job.id, "status": final.status,
                                                   "done": final.items_done, "failed": final.items_failed}})
        self.on_finished()
        return final

    def render(self, job: Job, item: JobItem, scenes: dict, deliverer: Deliverer) -> dict:
        spec = JobItemSpec.model_validate(item.spec)
        twin = self.registry.get_twin(spec.twin_id)
        expanded = expand_item(item.spec, scenes, twin.display_name if twin else spec.twin_id)
        request = GenerateRequest(
            twin_id=spec.twin_id, prompt=expanded.prompt, negative_prompt=expanded.negative_prompt,
            width=expanded.width, height=expanded.height, steps=spec.steps, guidance_scale=spec.guidance_scale,
            seed=spec.seed, num_images=spec.count, output_format=spec.output_format, use=spec.use,
            territory=spec.territory,
        )
        result = self.generation.run(request, admit=lambda: self._as_submitter(job), route=JOB_ROUTE, client_ip=None,
                                     job={"job_id": job.id, "item": item.index})
        sidecar = {"job_id": job.id, "item": item.index, "generation_id": result.generation_id, "twin_id": spec.twin_id,
                   "prompt": expanded.prompt, "sku": spec.sku, "metadata": spec.metadata, "alt_text": expanded.alt_text}
        images = [deliverer.store(job.id, item.index, image.index, image, sidecar) for image in result.images]
        return {"generation_id": result.generation_id, "twin_id": spec.twin_id, "sku": spec.sku,
                "metadata": spec.metadata, "alt_text": expanded.alt_text, "prompt": expanded.prompt,
                "seed": result.seed, "images": images}

    @contextmanager
    def _as_submitter(self, job: Job) -> Iterator[Principal]:
        """The key that submitted the job, as it is now: revoked keys stop their jobs' items."""
        info = self.registry.active_key(job.key_id)
        if info is None or info.tenant_id != job.tenant_id:
            raise Unauthorized("the API key that submitted this job is no longer valid", code="invalid_api_key")
        if "generate" not in info.scopes:
            raise Forbidden("the API key that submitted this job lacks the 'generate' scope", code="insufficient_scope")
        yield Principal(info.key_id, info.tenant_id, info.scopes, info.requests_per_minute, info.max_concurrent_jobs)

    @contextmanager
    def _heartbeat(self, job_id: str) -> Iterator[None]:
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.lease_s / 3):
                try:
                    self.store.renew(job_id, self.owner, self.lease_s)
                except Exception:
                    log.exception("lease renewal failed", extra={"fields": {"job_id": job_id}})

        thread = threading.Thread(target=beat, name="atelier-job-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(5)
