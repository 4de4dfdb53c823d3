"""`GET /v1/usage` (admin): images per day, tenant and twin, from the audit log, as JSON or CSV.

Owns: the query's validation and the audited answer. Must never aggregate by itself
(`service.audit.usage`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.audit.events import admin_event
from service.audit.usage import aggregate, to_csv
from service.errors import InvalidRequest
from service.gateway.deps import AdminCaller, ClientIp, Core, audited_action
from service.gateway.errors import ERROR_RESPONSES
from service.schemas import TWIN_ID_PATTERN

router = APIRouter(tags=["usage"])


@router.get("/usage", responses={**ERROR_RESPONSES, 200: {"content": {"application/json": {}, "text/csv": {}}}})
def usage(request: Request, core: Core, principal: AdminCaller, ip: ClientIp,
          twin: str | None = Query(None, pattern=TWIN_ID_PATTERN),
          from_: dt.date | None = Query(None, alias="from", description="First day, YYYY-MM-DD."),
          to: dt.date | None = Query(None, description="Last day, YYYY-MM-DD."),
          format: Literal["json", "csv"] = Query("json")):
    """Images per day, tenant and twin (the basis of the twins' compensation)."""
    unknown = sorted(set(request.query_params) - {"twin", "from", "to", "format"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    query = dict(request.query_params)
    with audited_action(core, admin_event, action="usage", client_ip=ip, query=query, actor=principal.audit_fields()):
        rows = aggregate(core.audit.log.iter_records(), twin, from_, to)
    if format == "csv":
        return Response(to_csv(rows), media_type="text/csv")
    return {"rows": rows}
