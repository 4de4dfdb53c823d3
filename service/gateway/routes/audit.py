"""`GET /v1/admin/audit/records` (admin): every audit record of one generation.

Owns: the query's validation and the audited answer: the generation's record, and the
records that name it since (verify reports, idempotent replays). Must never read the log
itself (`service.audit`).
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from service.audit.events import admin_event
from service.gateway.deps import AdminCaller, ClientIp, Core, audited_action
from service.schemas import AuditRecords

router = APIRouter(prefix="/admin", tags=["admin"])
MAX_RECORDS = 200


def generation_records(core, principal, ip: str | None, generation_id: str) -> dict:
    """The records naming `generation_id`, in sequence order (the route's body; Studio calls it too)."""
    with audited_action(core, admin_event, action="audit_records", client_ip=ip, queried_generation_id=generation_id,
                        actor=principal.audit_fields()):
        records = core.audit.log.find("generation_id", generation_id, limit=MAX_RECORDS)
    return {"generation_id": generation_id, "records": records}


@router.get("/audit/records", operation_id="getAuditRecords", response_model=AuditRecords)
def records(core: Core, principal: AdminCaller, ip: ClientIp,
            generation_id: str = Query(..., pattern=r"^[0-9a-f]{32}$", description="The generation's id.")) -> dict:
    """A generation's audit records (its generation record, and verify or replay records naming it),
    in sequence order, each with its hash in the chain."""
    return generation_records(core, principal, ip, generation_id)
