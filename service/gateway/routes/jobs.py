"""Catalogue jobs: `POST /v1/jobs/submit`, `GET /v1/jobs/list`, `GET /v1/jobs/status`,
`GET /v1/jobs/get` (paged), `GET /v1/jobs/image` (one stored image), `POST /v1/jobs/cancel`
(review decisions: `routes/review.py`).

Owns: reading the job id from `job_id` (or `task_id`, BentoML's name for it) and the
`Idempotency-Key` header, and answering a replayed submission with `Idempotent-Replayed`.
Submitting (the key is claimed before the job is written, so two concurrent submits with one
key create one job) and cancelling are the jobs capability's audited calls
(`CatalogJobs.accept`, `cancel_job`), as Studio's. Reads are the caller's tenant's only:
another tenant's job id is a 404. Must never hold job logic (`service.jobs`).
"""

from __future__ import annotations

from fastapi import APIRouter, Header, Query
from fastapi.responses import RedirectResponse, Response

from service.gateway.deps import ClientIp, Core, GenerateCaller
from service.gateway.errors import answers
from service.gateway.openapi import binary_image
from service.schemas import JobAccepted, JobList, JobPage, JobSummary
from service.gateway.idempotency import replayed
from service.jobs.catalog import check_job_id
from service.schemas import MEDIA_TYPES, JobSubmitBody

router = APIRouter(tags=["jobs"])
JOB_ID = r"^[0-9a-f]{32}$"


def job_id_of(job_id: str | None, task_id: str | None) -> str:
    return check_job_id(job_id or task_id)


JobId = Query(None, description="The job's id (32 hex characters).")
TaskId = Query(None, description="Alias of job_id (BentoML's task naming).")


@router.post("/jobs/submit", status_code=202, operation_id="submitJob", response_model=JobAccepted,
             responses=answers("idempotency_key_reused"))
def submit(body: JobSubmitBody, core: Core, principal: GenerateCaller, ip: ClientIp,
           idempotency_key: str | None = Header(None)):
    """Queue a catalogue job; 202 with its id and where to poll. Items are rendered as renderers
    free up, fairly across tenants; a finished job posts `job.completed` to the tenant's webhook."""
    accepted = core.jobs.accept(principal, body, client_ip=ip, idempotency_key=idempotency_key)
    return replayed(accepted) if accepted.replayed else accepted.response


@router.get("/jobs/list", operation_id="listJobs", response_model=JobList, response_model_exclude_unset=True)
def list_jobs(core: Core, principal: GenerateCaller,
              limit: int = Query(50, ge=1, le=100, description="How many of the newest jobs.")) -> dict:
    """The caller's tenant's newest jobs with their counts, newest first."""
    return core.jobs.list_jobs(principal.tenant_id, limit)


@router.get("/jobs/status", operation_id="getJobStatus", response_model=JobSummary, response_model_exclude_unset=True,
            responses=answers("job_not_found"))
def status(core: Core, principal: GenerateCaller, job_id: str | None = JobId, task_id: str | None = TaskId) -> dict:
    """A job's state and counts (queued, running, completed, failed, canceled)."""
    return core.jobs.status(principal.tenant_id, job_id_of(job_id, task_id))


@router.get("/jobs/get", operation_id="getJobResults", response_model=JobPage, response_model_exclude_unset=True,
            responses=answers("job_not_found"))
def results(core: Core, principal: GenerateCaller, job_id: str | None = JobId, task_id: str | None = TaskId,
            offset: int = Query(0, ge=0, description="First item of the page."),
            limit: int = Query(20, ge=1, le=100, description="Items per page.")) -> dict:
    """One page of a job's items, each with its images as URLs (presigned S3, or
    `/v1/jobs/image` for inline delivery); `next_offset` is null on the last page."""
    return core.jobs.results(principal.tenant_id, job_id_of(job_id, task_id), offset, limit)


@router.get("/jobs/image", operation_id="getJobImage", response_class=Response, responses={
    **answers("job_not_found", "item_not_found", "revoked"), 200: binary_image("The image's bytes (inline delivery)."),
    307: {"description": "S3 delivery: `Location` is a presigned URL of the image in the tenant's bucket.",
          "headers": {"Location": {"schema": {"type": "string"}}}}})
def image(core: Core, principal: GenerateCaller, job_id: str | None = JobId, task_id: str | None = TaskId,
          index: int = Query(..., ge=0, le=499), n: int = Query(0, ge=0, le=3)) -> Response:
    """One image of a finished item: its bytes (inline delivery) or a redirect to its S3 URL."""
    data, fmt, url = core.jobs.image(principal.tenant_id, job_id_of(job_id, task_id), index, n)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return Response(content=data, media_type=MEDIA_TYPES[fmt], headers={"Cache-Control": "private, max-age=3600"})


@router.post("/jobs/cancel", operation_id="cancelJob", response_model=JobSummary, response_model_exclude_unset=True,
             responses=answers("job_not_found"))
def cancel(core: Core, principal: GenerateCaller, ip: ClientIp, job_id: str | None = JobId,
           task_id: str | None = TaskId) -> dict:
    """Cancel a job: queued items are dropped at once; items rendering now finish."""
    return core.jobs.cancel_job(principal, job_id or task_id, client_ip=ip)
