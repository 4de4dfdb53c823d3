"""Studio's Usage page: images generated, delivered and rejected per month (or day), twin and use,
for operators (every tenant), for a brand (its own tenant) and for the talent (their twins, by brand).

Owns: the page's query (twin, tenant, dates, period), who sees what (an `admin` key every
tenant as `GET /v1/usage` does; a brand's `usage` key its own tenant only, as the same route
confines it; a talent key its own twins as `GET /v1/usage/talent` does, with the same
records), the display names shown beside ids (twins, brands), and the CSV download, answered
by the audit reports the routes use (`Reports.usage`), admitted as those routes admit their
caller. Must never aggregate by itself, and never show a brand another tenant's rows.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from service.audit.usage import usage_csv
from service.errors import InvalidRequest
from service.schemas import TENANT_ID_PATTERN, TWIN_ID_PATTERN
from service.studio.pages import Viewer, acting, client_ip, core_of, display_names, page, signed_in

router = APIRouter(include_in_schema=False)
UsageViewer = Annotated[Viewer, Depends(signed_in("admin", "talent", "usage"))]
COUNTS = ("images", "delivered", "rejected")


def _date(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date, YYYY-MM-DD", field=name) from None


def _id(value: str | None, name: str, pattern: str) -> str | None:
    """A twin or tenant id as the API's pattern allows it (a clear 422 otherwise), or None."""
    if not value:
        return None
    if not re.fullmatch(pattern, value):
        raise InvalidRequest(f"{name} is not a {name} id (letters, digits, '-' and '_')", field=name)
    return value


def view_of(viewer: Viewer) -> str:
    """Which usage a key sees: `operator` (admin: every tenant), `talent` (its twins, by brand)
    or `brand` (a `usage` key: its own tenant)."""
    return "operator" if viewer.can("admin") else "talent" if viewer.is_talent else "brand"


def _usage(request: Request, viewer: Viewer) -> dict:
    q = request.query_params
    twin = _id(q.get("twin"), "twin", TWIN_ID_PATTERN)
    tenant = _id(q.get("tenant"), "tenant", TENANT_ID_PATTERN)
    period = q.get("period") or "month"
    if period not in ("day", "month"):
        raise InvalidRequest("period is day or month", field="period")
    view = view_of(viewer)
    if view == "talent" and twin is not None and twin not in (viewer.principal.twin_ids or ()):
        raise InvalidRequest(f"twin {twin!r} is not one of this key's twins", field="twin")
    from_, to = _date(q.get("from"), "from"), _date(q.get("to"), "to")
    scope = {"operator": "admin", "talent": "talent", "brand": "usage"}[view]
    core = core_of(request)
    with acting(request, viewer, scope) as principal:
        return core.reports.usage(
            principal.audit_fields(), client_ip(request), action="talent_usage" if view == "talent" else "usage",
            query=dict(q), twins=(principal.twin_ids or frozenset()) if view == "talent" else None, twin=twin,
            tenant=tenant, confined_to=principal.tenant_id if view == "brand" else None, from_=from_, to=to,
            period=period, kept_days=core.settings.job_retention_days)


def _totals(rows: list[dict], by: str | None = None) -> dict:
    """The counts summed over `rows` (per `by`, a row's field, when given); a count that no
    row knows stays None."""
    totals: dict = {}
    for row in rows:
        entry = totals.setdefault(row[by] if by else None, {count: None for count in COUNTS})
        for count in COUNTS:
            if row.get(count) is not None:
                entry[count] = (entry[count] or 0) + row[count]
    return totals if by else totals.get(None, {count: 0 for count in COUNTS})


@router.get("/usage", response_class=HTMLResponse)
def usage_page(request: Request, viewer: UsageViewer):
    report = _usage(request, viewer)
    rows = report["rows"]
    view = view_of(viewer)
    own_twins = sorted(viewer.principal.twin_ids or ()) if view == "talent" else []
    twin_names, tenant_names = display_names(request, {row["twin_id"] for row in rows if row["twin_id"]} | set(own_twins),
                                             {row["tenant"] for row in rows})
    query = dict(request.query_params)
    older = report["decided_complete_from"]
    return page(request, "usage.html", viewer, active="usage", rows=rows, query=query, view=view,
                talent=view == "talent", twin_choices=own_twins, twin_names=twin_names, tenant_names=tenant_names,
                totals=_totals(rows), by_brand=_totals(rows, "tenant") if view == "talent" else {},
                counted=report["counted"], complete_from=older,
                some_not_kept=any(row["delivered"] is None for row in rows),
                period=query.get("period") or "month", retention_days=core_of(request).settings.job_retention_days)


@router.get("/usage.csv")
def usage_csv_download(request: Request, viewer: UsageViewer):
    response = Response(usage_csv(_usage(request, viewer)["rows"]), media_type="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="atelier-usage.csv"'
    return response
