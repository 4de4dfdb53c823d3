"""Review of catalogue jobs submitted with `review: true`: `POST /v1/jobs/approve` and
`POST /v1/jobs/reject`.

Owns: turning a decision on some items of the caller's job into one `CatalogJobs.decide`
call, which records each decision (who decided, which job and items, and a rejection's
reasons) before it answers. Approved items' held images are delivered to the job's target and
announced; rejected ones are dropped, their reasons kept (in the items' results and their
`job.item.completed`). Must never hold job logic (`service.jobs`).
"""

from __future__ import annotations

from fastapi import APIRouter

from service.gateway.deps import ClientIp, Core, GenerateCaller
from service.gateway.errors import answers
from service.schemas import JobDecision
from service.schemas import JobReviewBody
from service.schemas.jobs import JobRejectBody

router = APIRouter(tags=["jobs"], responses=answers("job_not_found", "item_not_found", "not_awaiting_review"))


@router.post("/jobs/approve", operation_id="approveJobItems", response_model=JobDecision, response_model_exclude_unset=True,
             responses=answers("revoked"))
def approve(body: JobReviewBody, core: Core, principal: GenerateCaller, ip: ClientIp) -> dict:
    """Approve items awaiting review: their held images are delivered (S3 or inline) and, once
    every item is decided, announced in `job.completed`. 409 for an item not awaiting review."""
    return core.jobs.decide(principal, body.job_id, body.items, approve=True, client_ip=ip)


@router.post("/jobs/reject", operation_id="rejectJobItems", response_model=JobDecision, response_model_exclude_unset=True)
def reject(body: JobRejectBody, core: Core, principal: GenerateCaller, ip: ClientIp) -> dict:
    """Reject items awaiting review: their images are dropped and never delivered or announced.
    An optional `reason` (for the call) or `reasons` (per item index) is kept: the items show it
    as `rejection_reason`, and their `job.item.completed` events as `reason`."""
    return core.jobs.decide(principal, body.job_id, body.items, approve=False, client_ip=ip, reasons=body.reason_of())
