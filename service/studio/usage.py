"""Studio's Usage page: images per month (or day) and twin, for operators and for talent.

Owns: the page's query (twin, dates, period) and its CSV download, answered by the audit
reports the `/v1/usage` routes use (`Reports.usage`: an operator sees every twin as
`GET /v1/usage` does, a talent key its own twins as `GET /v1/usage/talent` does, with the same
record), admitted as those routes admit their caller. Must never aggregate by itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from service.audit.usage import to_csv
from service.errors import InvalidRequest
from service.studio.pages import Viewer, acting, client_ip, core_of, page, signed_in

router = APIRouter(include_in_schema=False)
UsageViewer = Annotated[Viewer, Depends(signed_in("admin", "talent"))]


def _date(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date, YYYY-MM-DD", field=name) from None


def _usage(request: Request, viewer: Viewer) -> list[dict]:
    q = request.query_params
    twin = q.get("twin") or None
    period = q.get("period") or "month"
    if period not in ("day", "month"):
        raise InvalidRequest("period is day or month", field="period")
    talent = not viewer.can("admin")
    if talent and twin is not None and twin not in (viewer.principal.twin_ids or ()):
        raise InvalidRequest(f"twin {twin!r} is not one of this key's twins", field="twin")
    from_, to = _date(q.get("from"), "from"), _date(q.get("to"), "to")
    with acting(request, viewer, "talent" if talent else "admin") as principal:
        return core_of(request).reports.usage(
            principal.audit_fields(), client_ip(request), action="talent_usage" if talent else "usage",
            query=dict(q), twins=(principal.twin_ids or frozenset()) if talent else None, twin=twin, from_=from_, to=to,
            period=period)


@router.get("/usage", response_class=HTMLResponse)
def usage_page(request: Request, viewer: UsageViewer):
    rows = _usage(request, viewer)
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["twin_id"] or "(base model)"] = totals.get(row["twin_id"] or "(base model)", 0) + row["images"]
    return page(request, "usage.html", viewer, active="usage", rows=rows, totals=totals, query=dict(request.query_params),
                talent=not viewer.can("admin"), twin_choices=sorted(viewer.principal.twin_ids or ()))


@router.get("/usage.csv")
def usage_csv(request: Request, viewer: UsageViewer):
    response = Response(to_csv(_usage(request, viewer)), media_type="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="atelier-usage.csv"'
    return response
