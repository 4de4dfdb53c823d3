"""`GET /v1/usage` (an `admin` key: every tenant; a brand's `usage` key: its own tenant only):
images generated, delivered and rejected per day (or month), tenant, twin and use, from the
fleet's records, as JSON or CSV; `GET /v1/usage/talent` (talent key): the same, for that key's
twins only; `GET /v1/usage/talent/statement` (talent key): a period's statement (twin, brand,
use, consent version, images); `GET /v1/usage/statement` (a brand's `usage` key, or `admin`
naming the tenant): the same statement seen from the brand, what it owes.

Owns: the query's parameters, the answer's format (JSON or CSV) and which tenant a `usage` key
is confined to; the report, its checks and its record are `service.audit.reports.Reports.usage`'s
(Studio's too). Must never aggregate by itself (`service.audit.usage`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from service.audit.usage import statement_csv, usage_csv
from service.errors import InvalidRequest
from service.gateway.deps import ClientIp, Core, TalentCaller, client_ip_of, route_template
from service.gateway.openapi import json_or_csv
from service.schemas import TENANT_ID_PATTERN, TalentStatement, UsageReport
from service.schemas import TWIN_ID_PATTERN
from service.tenancy import Limits, Principal

router = APIRouter(tags=["usage"])
USAGE_SCOPES = ("admin", "usage")


def _usage_caller(request: Request, core: Core) -> Iterator[Principal]:
    """The caller of `GET /v1/usage`: an `admin` key (every tenant) or a `usage` key (its own)."""
    with core.tenancy.admit(request.headers.get("authorization"), USAGE_SCOPES, route=route_template(request),
                            client_ip=client_ip_of(request), limits=Limits.REQUEST) as principal:
        request.state.principal = principal
        yield principal


_usage_caller.__name__ = "admin` or `usage_caller"  # the contract's note: "Needs a key with the `admin` or `usage` scope."
UsageCaller = Annotated[Principal, Depends(_usage_caller, scope="function")]


@router.get("/usage", operation_id="getUsage", response_model=UsageReport, responses={200: json_or_csv()})
def usage(request: Request, core: Core, principal: UsageCaller, ip: ClientIp,
          twin: str | None = Query(None, pattern=TWIN_ID_PATTERN),
          tenant: str | None = Query(None, pattern=TENANT_ID_PATTERN,
                                     description="One tenant's rows (an `admin` key). A `usage` key reads its own "
                                                 "tenant only: naming another is refused (403 `insufficient_scope`)."),
          from_: dt.date | None = Query(None, alias="from", description="First day, YYYY-MM-DD."),
          to: dt.date | None = Query(None, description="Last day, YYYY-MM-DD."),
          format: Literal["json", "csv"] = Query("json"),
          period: Literal["day", "month"] = Query("day", description="Rows per day, or per month (YYYY-MM).")):
    """Images per day (or month), tenant, twin and use: generated, delivered to a job's target,
    and rejected by the reviewer, each counted separately (`counted` says what each is). An
    `admin` key reads every tenant (the basis of the twins' compensation); a brand's `usage`
    key reads its own tenant's rows only, never another's."""
    confined_to = None if "admin" in principal.scopes else principal.tenant_id
    return answer(request, core, principal, ip, "usage", None, twin, from_, to, format, period, tenant=tenant,
                  confined_to=confined_to)


@router.get("/usage/talent", operation_id="getTalentUsage", response_model=UsageReport, responses={200: json_or_csv()})
def talent_usage(request: Request, core: Core, principal: TalentCaller, ip: ClientIp,
                 twin: str | None = Query(None, pattern=TWIN_ID_PATTERN),
                 tenant: str | None = Query(None, pattern=TENANT_ID_PATTERN, description="One brand's rows."),
                 from_: dt.date | None = Query(None, alias="from", description="First day, YYYY-MM-DD."),
                 to: dt.date | None = Query(None, description="Last day, YYYY-MM-DD."),
                 format: Literal["json", "csv"] = Query("json"),
                 period: Literal["day", "month"] = Query("month", description="Rows per month (YYYY-MM), or per day.")):
    """Where and how much this talent key's twins were used: images per month (or day), brand
    (tenant) and use, generated, delivered and rejected, for the key's own twins only."""
    if twin is not None and twin not in (principal.twin_ids or ()):
        raise InvalidRequest(f"twin {twin!r} is not one of this key's twins", field="twin")
    return answer(request, core, principal, ip, "talent_usage", principal.twin_ids or frozenset(), twin, from_, to,
                  format, period, tenant=tenant)


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


@router.get("/usage/statement", operation_id="getBrandStatement", response_model=TalentStatement,
            response_model_by_alias=True, responses={200: json_or_csv()})
def brand_statement(request: Request, core: Core, principal: UsageCaller, ip: ClientIp,
                    from_: dt.date = Query(..., alias="from", description="First day (UTC), YYYY-MM-DD."),
                    to: dt.date = Query(..., description="Last day (UTC), inclusive, YYYY-MM-DD."),
                    twin: str | None = Query(None, pattern=TWIN_ID_PATTERN),
                    tenant: str | None = Query(None, pattern=TENANT_ID_PATTERN,
                                               description="The brand (an `admin` key: required). A `usage` key "
                                                           "reads its own tenant's only."),
                    format: Literal["json", "csv"] = Query("json")):
    """What a brand owes the persons whose twins it used in a period: images per twin, use and
    licence (or paper consent version), at each signed licence's accepted rate, the amounts
    per currency and the due date (the period's last day + 45 days). The persons' own
    statements, seen from the brand: the same records, the same numbers."""
    confined_to = None if "admin" in principal.scopes else principal.tenant_id
    statement = core.reports.statement(principal.audit_fields(), ip, query=dict(request.query_params), twins=None,
                                       twin=twin, from_=from_, to=to, brand=tenant, confined_to=confined_to)
    if format == "csv":
        return Response(statement_csv(statement["rows"]), media_type="text/csv")
    return statement


def answer(request: Request, core, principal, ip, action: str, twins, twin, from_, to, format: str, period: str,
           tenant: str | None = None, confined_to: str | None = None):
    report = core.reports.usage(principal.audit_fields(), ip, action=action, query=dict(request.query_params),
                                twins=twins, twin=twin, from_=from_, to=to, period=period, tenant=tenant,
                                confined_to=confined_to, kept_days=core.settings.job_retention_days)
    if format == "csv":
        return Response(usage_csv(report["rows"]), media_type="text/csv")
    return report
