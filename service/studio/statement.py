"""Studio's Statement page: a period's pay statement, for the person (what they are owed, from
every brand) and for a brand (what it owes, to every person whose twin it used).

Owns: the page's period (a month by default: its first and last UTC day), who sees which
statement (a talent key the person's, as `GET /v1/usage/talent/statement`; a brand's `usage`
key its own tenant's, as `GET /v1/usage/statement`), the display names beside ids, and the CSV
download, answered by the report both routes use (`Reports.statement`), admitted and recorded as
those routes are. Must never count or price anything itself, and never show a brand another
tenant's rows.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from service.audit.usage import statement_csv
from service.errors import InvalidRequest
from service.schemas import TWIN_ID_PATTERN
from service.studio.pages import Viewer, acting, client_ip, core_of, display_names, page, signed_in

router = APIRouter(include_in_schema=False)
StatementViewer = Annotated[Viewer, Depends(signed_in("talent", "usage"))]
QUERY = {"from", "to", "twin"}


def period_of(params) -> tuple[dt.date, dt.date]:
    """The period asked for (`from`, `to`: UTC days, inclusive), this month's by default."""
    today = dt.datetime.now(dt.timezone.utc).date()
    try:
        first = dt.date.fromisoformat(params["from"]) if params.get("from") else today.replace(day=1)
    except ValueError:
        raise InvalidRequest("from must be a date, YYYY-MM-DD", field="from") from None
    try:
        last = dt.date.fromisoformat(params["to"]) if params.get("to") else \
            (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    except ValueError:
        raise InvalidRequest("to must be a date, YYYY-MM-DD", field="to") from None
    if first > last:
        raise InvalidRequest("'from' is after 'to'", field="from")
    return first, last


def _statement(request: Request, viewer: Viewer) -> tuple[dict, bool]:
    """(the statement, whether it is the person's) for the viewer's key."""
    params = request.query_params
    unknown = sorted(set(params) - QUERY)
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    twin = params.get("twin") or None
    if twin is not None and not re.fullmatch(TWIN_ID_PATTERN, twin):
        raise InvalidRequest("twin is a twin id (letters, digits, '-' and '_')", field="twin")
    first, last = period_of(params)
    person = viewer.is_talent
    if person and twin is not None and twin not in (viewer.principal.twin_ids or ()):
        raise InvalidRequest(f"twin {twin!r} is not one of this key's twins", field="twin")
    with acting(request, viewer, "talent" if person else "usage") as principal:
        statement = core_of(request).reports.statement(
            principal.audit_fields(), client_ip(request), query=dict(params),
            twins=(principal.twin_ids or frozenset()) if person else None, twin=twin, from_=first, to=last,
            confined_to=None if person else principal.tenant_id)
    return statement, person


@router.get("/statement", response_class=HTMLResponse)
def statement_page(request: Request, viewer: StatementViewer):
    try:
        statement, person = _statement(request, viewer)
    except InvalidRequest as exc:  # the period as typed, the refusal beside it
        return page(request, "statement.html", viewer, status=exc.status, active="statement", error=exc,
                    statement=None, person=viewer.is_talent, query=dict(request.query_params), names={}, brands={})
    names, brands = display_names(request, {row["twin_id"] for row in statement["rows"]},
                                  {row["brand"] for row in statement["rows"]})
    return page(request, "statement.html", viewer, active="statement", statement=statement, person=person,
                query={"from": statement["from"], "to": statement["to"], **({"twin": request.query_params["twin"]}
                                                                           if request.query_params.get("twin") else {})},
                names=names, brands=brands)


@router.get("/statement.csv")
def statement_csv_download(request: Request, viewer: StatementViewer):
    statement, _ = _statement(request, viewer)
    response = Response(statement_csv(statement["rows"]), media_type="text/csv")
    response.headers["Content-Disposition"] = (f'attachment; filename="atelier-statement-{statement["from"]}-'
                                               f'{statement["to"]}.csv"')
    return response
