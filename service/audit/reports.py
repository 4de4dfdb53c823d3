"""Reports read from the fleet's audit record for a caller: usage (images per day or month,
tenant and twin), a talent's statement for a period, and every record of one generation.

Every report counts the records of every chain in the registry database, whichever gateway
wrote them and however many pods have come and gone; only `outcome: ok` records count, so a
failed or refused generation is never in a total. A statement of a past period reads records
that are never changed, so asking again later gives the same numbers.

Owns: the reports the `/v1` routes and Studio share, each audited as the admin action it is
(`admin.usage`, `admin.talent_usage`, `admin.talent_statement`, `admin.audit_records`): the query's parameters checked
(an unknown one is refused before anything is read), the rows restricted to a talent key's
twins, and the records of a generation in sequence order. Must never aggregate by itself
(`service.audit.usage`), never know who a caller is beyond the audit fields it is given
(`actor`), and never format HTTP.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from service.audit.actions import audited_action
from service.audit.events import admin_event
from service.audit.usage import by_month
from service.errors import InvalidRequest

USAGE_QUERY = {"twin", "from", "to", "format", "period"}
PAYMENT_DAYS = 45  # New York's Fashion Workers Act: paid within 45 days of the period's end
STATEMENT_QUERY = {"twin", "from", "to", "format"}
MAX_RECORDS = 200


class Reports:
    def __init__(self, recorder, rates=None):
        self.recorder = recorder  # its record() writes each report's own record
        # licence id -> (rate per image, currency): the accepted rates pay statements price at
        self.rates = rates or (lambda licence_ids: {})
        self.store = recorder.log.store  # the fleet's records (service.registry.audit.AuditRecords)

    def usage(self, actor: dict, client_ip: str | None, *, action: str, query: dict[str, str],
              twins: frozenset[str] | None, twin: str | None, from_: dt.date | None, to: dt.date | None,
              period: str) -> list[dict[str, Any]]:
        """Usage rows (per `period`: day or month), restricted to `twins` when given (a talent key's)."""
        unknown = sorted(set(query) - USAGE_QUERY)
        if unknown:
            raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        with audited_action(self.recorder.record, admin_event, action=action, client_ip=client_ip, query=dict(query),
                            actor=actor):
            rows = self.store.usage(twin=twin, twins=twins, date_from=_day(from_), date_to=_day(to))
            return by_month(rows) if period == "month" else rows

    def statement(self, actor: dict, client_ip: str | None, *, query: dict[str, str], twins: frozenset[str] | None,
                  twin: str | None, from_: dt.date, to: dt.date) -> dict[str, Any]:
        """A talent's statement for `from_`..`to` (inclusive days, UTC): images per twin, brand,
        use and consent version in force, restricted to `twins` when given."""
        unknown = sorted(set(query) - STATEMENT_QUERY)
        if unknown:
            raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        if from_ > to:
            raise InvalidRequest("'from' is after 'to'", field="from")
        with audited_action(self.recorder.record, admin_event, action="talent_statement", client_ip=client_ip,
                            query=dict(query), actor=actor):
            rows = self.store.statement(twins=twins, twin=twin, date_from=_day(from_), date_to=_day(to))
        rates = self.rates({row["licence_id"] for row in rows if row["licence_id"]})
        totals: dict[str, Decimal] = {}
        for row in rows:
            rate, currency = rates.get(row["licence_id"], (None, None))
            row.update(rate_per_image=rate, currency=currency,
                       amount=None if rate is None else format(Decimal(rate) * row["images"], "f"))
            if rate is not None:
                totals[currency] = totals.get(currency, Decimal(0)) + Decimal(rate) * row["images"]
        return {"from": from_.isoformat(), "to": to.isoformat(), "rows": rows,
                "images": sum(row["images"] for row in rows),
                "amounts": {currency: format(total, "f") for currency, total in sorted(totals.items())},
                "due": (to + dt.timedelta(days=PAYMENT_DAYS)).isoformat(),
                "counted": "generations answered with images (outcome ok), by every gateway; failed and refused "
                           "generations are never counted; amounts at each signed licence's accepted rate "
                           "(paper consent records carry no rate here)"}

    def generation_records(self, actor: dict, client_ip: str | None, generation_id: str) -> dict:
        """The records naming `generation_id`, in sequence order."""
        with audited_action(self.recorder.record, admin_event, action="audit_records", client_ip=client_ip,
                            queried_generation_id=generation_id, actor=actor):
            records = self.store.find("generation_id", generation_id, limit=MAX_RECORDS)
        return {"generation_id": generation_id, "records": records}


def _day(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()
