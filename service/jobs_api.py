"""HTTP routes of catalogue jobs: `/v1/jobs/submit`, `/status`, `/get`, `/cancel`.

Owns: authenticating each call (`generate` scope), the `Idempotency-Key` replay of a
submission, reading the job id from `job_id` (or `task_id`, BentoML's name for it), and
auditing submissions and cancellations. The route names follow BentoML's task convention
(submit, status, get, cancel); the queue behind them is Atelier's own (durable across restarts, shared by replicas, with
per-item progress), see docs/API.md. BentoML's own Python task client does not fit them
(it cannot parse `queued`/`running`): call them over HTTP. Plain Starlette, mounted by
`service.app`. Must never hold job logic (that is `service.jobs`).
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.admin_api import audited_failure, caller, parsed
from service.audit.events import job_event
from service.errors import InvalidRequest
from service.registry import check_idempotency_key, request_hash
from service.schemas import JobSubmitBody

log = logging.getLogger("atelier.jobs")


def job_id_of(request: Request) -> str:
    job_id = request.query_params.get("job_id") or request.query_params.get("task_id")
    if not job_id:
        raise InvalidRequest("pass the job id as ?job_id=", field="job_id")
    if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
        raise InvalidRequest("job_id is 32 lowercase hex characters", field="job_id")
    return job_id


async def submit(request: Request) -> Response:
    atelier = request.app.state.atelier
    ip = request.client.host if request.client else None
    details: dict = {}
    try:
        principal = await caller(request, "generate")
        details["actor"] = principal.audit_fields()
        key = check_idempotency_key(request.headers.get("idempotency-key"))
        body = await parsed(request, JobSubmitBody)
        digest = request_hash(body.model_dump(mode="json"))
        if key is not None:
            stored = await anyio.to_thread.run_sync(atelier.registry.idempotency_get, principal.tenant_id, key, digest)
            if stored is not None:
                details.update(job_id=stored.response["job_id"], replayed=True)
                await anyio.to_thread.run_sync(atelier.audit.record, job_event(action="submit", client_ip=ip, **details))
                return JSONResponse(stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})

        def accepted(job_id: str) -> dict:
            return {"job_id": job_id, "task_id": job_id, "status": "queued", "items_total": len(body.items),
                    "status_url": f"/v1/jobs/status?job_id={job_id}", "result_url": f"/v1/jobs/get?job_id={job_id}"}

        def queue() -> dict:
            claimed: dict = {}

            def reserve(job_id: str) -> bool:
                """Claim the key for this job id before the job exists: of two concurrent
                requests with one key, only the first creates a job; both answer with it."""
                if key is None:
                    claimed["response"] = accepted(job_id)
                    return True
                claimed["response"] = atelier.registry.idempotency_put(principal.tenant_id, key, digest, accepted(job_id), 202).response
                return claimed["response"]["job_id"] == job_id

            with atelier.tenancy.limits(principal):
                atelier.jobs.submit(principal, body, reserve)
            details.update(job_id=claimed["response"]["job_id"], items=len(body.items), priority=body.priority)
            return claimed["response"]

        response = await anyio.to_thread.run_sync(queue)
        await anyio.to_thread.run_sync(atelier.audit.record, job_event(action="submit", client_ip=ip, **details))
    except Exception as exc:
        return await audited_failure(atelier.audit, exc, job_event(action="submit", client_ip=ip, error=exc, **details))
    return JSONResponse(response, status_code=202)


def reader(operation: str):
    """GET status / GET get: the caller's own jobs only (another tenant's id is a 404)."""

    async def endpoint(request: Request) -> Response:
        atelier = request.app.state.atelier
        try:
            principal = await caller(request, "generate")
            job_id = job_id_of(request)
            body = await anyio.to_thread.run_sync(getattr(atelier.jobs, operation), principal.tenant_id, job_id)
        except Exception as exc:
            return await audited_failure(None, exc, {})  # reads are not audited; errors are logged
        return JSONResponse(body)

    return endpoint


async def cancel(request: Request) -> Response:
    atelier = request.app.state.atelier
    ip = request.client.host if request.client else None
    details: dict = {}
    try:
        principal = await caller(request, "generate")
        details.update(actor=principal.audit_fields(), job_id=job_id_of(request))
        body = await anyio.to_thread.run_sync(atelier.jobs.cancel, principal.tenant_id, details["job_id"])
        await anyio.to_thread.run_sync(atelier.audit.record, job_event(action="cancel", client_ip=ip, **details))
    except Exception as exc:
        return await audited_failure(atelier.audit, exc, job_event(action="cancel", client_ip=ip, error=exc, **details))
    return JSONResponse(body)


def job_routes() -> list[Route]:
    return [
        Route("/jobs/submit", submit, methods=["POST"]),
        Route("/jobs/status", reader("status"), methods=["GET"]),
        Route("/jobs/get", reader("results"), methods=["GET"]),
        Route("/jobs/cancel", cancel, methods=["POST", "PUT"]),
    ]
