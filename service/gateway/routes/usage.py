"""`GET /v1/usage` (admin): images per day (or month), tenant and twin, from the audit log, as
JSON or CSV; `GET /v1/usage/talent` (talent key): the same, for that key's twins only.

Owns: the query's validation and the audited answer. Must never aggregate by itself
(`service.audit.usage`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.audit.events import admin_event
from service.audit.usage import aggregate, by_month, to_csv
from service.errors import InvalidRequest
from service.gateway.deps import AdminCaller, ClientIp, Core, TalentCaller, audited_action
from service.gateway.openapi import json_or_csv
from service.schemas import UsageReport
from service.schemas import TWIN_ID_PATTERN

router = APIRouter(tags=["usage"])


@router.get("/usage", operation_id="getUsage", response_model=UsageReport, responses={200: json_or_csv()})
def usage(request: Request, core: Core, principal: AdminCaller, ip: ClientIp,
          twin: str | None = Query(None, pattern=TWIN_ID_PATTERN),
          from_: dt.date | None = Query(None, alias="from", description="First day, YYYY-MM-DD."),
          to: dt.date | None = Query(None, description="Last day, YYYY-MM-DD."),
          format: Literal["json", "csv"] = Query("json"),
          period: Literal["day", "month"] = Query("day", description="Rows per day, or per month (YYYY-MM).")):
    """Images per day (or month), tenant and twin (the basis of the twins' compensation)."""
    return answer(request, core, principal, ip, "usage", None, twin, from_, to, format, period)


@router.get("/usage/talent", operation_id="getTalentUsage", response_model=UsageReport, responses={200: json_or_csv()})
def talent_usage(request: Request, core: Core, principal: TalentCaller, ip: ClientIp,
                 twin: str | None = Query(None, pattern=TWIN_ID_PATTERN),
                 from_: dt.date | None = Query(None, alias="from", description="First day, YYYY-MM-DD."),
                 to: dt.date | None = Query(None, description="Last day, YYYY-MM-DD."),
                 format: Literal["json", "csv"] = Query("json"),
                 period: Literal["day", "month"] = Query("month", description="Rows per month (YYYY-MM), or per day.")):
    """Where and how much this talent key's twins were used: images per month (or day) and
    brand (tenant), for the key's own twins only."""
    if twin is not None and twin not in (principal.twin_ids or ()):
        raise InvalidRequest(f"twin {twin!r} is not one of this key's twins", field="twin")
    return answer(request, core, principal, ip, "talent_usage", principal.twin_ids or frozenset(), twin, from_, to,
                  format, period)


def usage_rows(core, twins: frozenset[str] | None, twin: str | None, from_: dt.date | None, to: dt.date | None,
               period: str) -> list[dict]:
    """The aggregated rows, restricted to `twins` when given (a talent key's)."""
    rows = aggregate(core.audit.log.iter_records(), twin, from_, to)
    if twins is not None:
        rows = [row for row in rows if row["twin_id"] in twins]
    return by_month(rows) if period == "month" else rows


def answer(request: Request, core, principal, ip, action: str, twins, twin, from_, to, format: str, period: str):
    unknown = sorted(set(request.query_params) - {"twin", "from", "to", "format", "period"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    query = dict(request.query_params)
    with audited_action(core, admin_event, action=action, client_ip=ip, query=query, actor=principal.audit_fields()):
        rows = usage_rows(core, twins, twin, from_, to, period)
    if format == "csv":
        return Response(to_csv(rows), media_type="text/csv")
    return {"rows": rows}
