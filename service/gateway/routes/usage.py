"""`GET /v1/usage` (admin): images per day (or month), tenant and twin, from the fleet's audit
record, as JSON or CSV; `GET /v1/usage/talent` (talent key): the same, for that key's twins only;
`GET /v1/usage/talent/statement` (talent key): a period's statement (twin, brand, use, consent
version, images).

Owns: the query's parameters and the answer's format (JSON or CSV); the report, its checks
and its record are `service.audit.reports.Reports.usage`'s (Studio's too). Must never
aggregate by itself (`service.audit.usage`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.audit.usage import statement_csv, to_csv
from service.errors import InvalidRequest
from service.gateway.deps import AdminCaller, ClientIp, Core, TalentCaller
from service.gateway.openapi import json_or_csv
from service.schemas import TalentStatement, UsageReport
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


@router.get("/usage/talent/statement", operation_id="getTalentStatement", response_model=TalentStatement,
            response_model_by_alias=True, responses={200: json_or_csv()})
def talent_statement(request: Request, core: Core, principal: TalentCaller, ip: ClientIp,
                     from_: dt.date = Query(..., alias="from", description="First day (UTC), YYYY-MM-DD."),
                     to: dt.date = Query(..., description="Last day (UTC), inclusive, YYYY-MM-DD."),
                     twin: str | None = Query(None, pattern=TWIN_ID_PATTERN),
                     format: Literal["json", "csv"] = Query("json")):
    """A statement for a period, the basis of the talent's pay: images per twin, brand, use and
    the consent version in force, from every gateway's audit record (successful generations
    only). Asking again later for the same period gives the same numbers."""
    if twin is not None and twin not in (principal.twin_ids or ()):
        raise InvalidRequest(f"twin {twin!r} is not one of this key's twins", field="twin")
    statement = core.reports.statement(principal.audit_fields(), ip, query=dict(request.query_params),
                                       twins=principal.twin_ids or frozenset(), twin=twin, from_=from_, to=to)
    if format == "csv":
        return Response(statement_csv(statement["rows"]), media_type="text/csv")
    return statement


def answer(request: Request, core, principal, ip, action: str, twins, twin, from_, to, format: str, period: str):
    rows = core.reports.usage(principal.audit_fields(), ip, action=action, query=dict(request.query_params), twins=twins,
                              twin=twin, from_=from_, to=to, period=period)
    if format == "csv":
        return Response(to_csv(rows), media_type="text/csv")
    return {"rows": rows}
