"""Review of catalogue jobs submitted with `review: true`: `POST /v1/jobs/approve` and
`POST /v1/jobs/reject`.

Owns: turning a decision on some items of the caller's job into one `CatalogJobs` call, and
the audit record of each decision (who decided, which job and items) before it answers.
Approved items' held images are delivered to the job's target and announced; rejected ones
are dropped. Must never hold job logic (`service.jobs`).
"""

from __future__ import annotations

from fastapi import APIRouter

from service.audit.events import job_event
from service.gateway.deps import ClientIp, Core, GenerateCaller, audited_action
from service.gateway.errors import answers
from service.schemas import JobDecision
from service.schemas import JobReviewBody

router = APIRouter(tags=["jobs"], responses=answers("job_not_found", "item_not_found", "not_awaiting_review"))


def decide(core, principal, ip: str | None, body: JobReviewBody, approve: bool) -> dict:
    """One audited decision on items of the caller's job (the route's body; Studio calls it too)."""
    action = "approve" if approve else "reject"
    with audited_action(core, job_event, action=action, client_ip=ip, actor=principal.audit_fields(),
                        job_id=body.job_id, items=list(body.items)) as details:
        decided = (core.jobs.approve if approve else core.jobs.reject)(principal.tenant_id, body.job_id, list(body.items))
        details["decided"] = decided["decided"]
        return decided


@router.post("/jobs/approve", operation_id="approveJobItems", response_model=JobDecision, response_model_exclude_unset=True,
             responses=answers("revoked"))
def approve(body: JobReviewBody, core: Core, principal: GenerateCaller, ip: ClientIp) -> dict:
    """Approve items awaiting review: their held images are delivered (S3 or inline) and, once
    every item is decided, announced in `job.completed`. 409 for an item not awaiting review."""
    return decide(core, principal, ip, body, approve=True)


@router.post("/jobs/reject", operation_id="rejectJobItems", response_model=JobDecision, response_model_exclude_unset=True)
def reject(body: JobReviewBody, core: Core, principal: GenerateCaller, ip: ClientIp) -> dict:
    """Reject items awaiting review: their images are dropped and never delivered or announced."""
    return decide(core, principal, ip, body, approve=False)
