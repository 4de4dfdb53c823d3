"""`GET /v1/admin/audit/records` (admin): every audit record of one generation.

Owns: the query's validation; the answer (the generation's record, and the records that name
it since: verify reports, idempotent replays) and its record are
`service.audit.reports.Reports.generation_records`' (Studio's too). Must never read the log
itself (`service.audit`).
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from service.gateway.deps import AdminCaller, ClientIp, Core
from service.schemas import AuditRecords

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/audit/records", operation_id="getAuditRecords", response_model=AuditRecords)
def records(core: Core, principal: AdminCaller, ip: ClientIp,
            generation_id: str = Query(..., pattern=r"^[0-9a-f]{32}$", description="The generation's id.")) -> dict:
    """A generation's audit records (its generation record, and verify or replay records naming it),
    in sequence order, each with its hash in the chain."""
    return core.reports.generation_records(principal.audit_fields(), ip, generation_id)
