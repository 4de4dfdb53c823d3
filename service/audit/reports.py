"""Reports read from the fleet's audit record for a caller: usage (images generated, delivered
and rejected per day or month, tenant, twin and use), a talent's statement for a period, and
every record of one generation.

Every report counts the records of every chain in the registry database, whichever gateway
wrote them and however many pods have come and gone; only `outcome: ok` records count, so a
failed or refused generation is never in a total. A statement of a past period reads records
that are never changed, so asking again later gives the same numbers. Usage's delivered and
rejected counts join those records to the catalogue items they rendered
(`service.registry.usage`), which are kept for the job retention only: a row that ended
before the kept window says null (not known), never a smaller number.

Owns: the reports the `/v1` routes and Studio share, each audited as the admin action it is
(`admin.usage`, `admin.talent_usage`, `admin.talent_statement`, `admin.audit_records`): the query's parameters checked
(an unknown one is refused before anything is read), the rows restricted to a talent key's
twins or to a brand's own tenant (a `usage` key naming another tenant is refused, and that
refusal recorded), and the records of a generation in sequence order. Must never aggregate by
itself (`service.audit.usage`, `service.registry.usage`), never know who a caller is beyond
the audit fields and the restriction it is given, and never format HTTP.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from service.audit.actions import audited_action
from service.audit.events import admin_event
from service.audit.usage import usage_by_month
from service.errors import Forbidden, InvalidRequest
from service.registry.usage import UsageCounts

USAGE_QUERY = {"twin", "tenant", "from", "to", "format", "period"}
# What each usage count is: the API's answer and Studio's page say it with the numbers.
COUNTED = {
    "images": "generated: the images of generations answered with images (outcome ok), by every gateway; failed "
              "and refused generations are never counted",
    "delivered": "of those, the images of catalogue job items delivered to the job's target (in a review job, "
                 "after the reviewer approved them); synchronous generations are answered to their caller, not "
                 "delivered, and an item still rendering, delivering or awaiting review is not counted yet",
    "rejected": "of those, the images of catalogue job items the reviewer rejected: never delivered",
    "day": "the UTC day (or month) the images were generated, for all three counts",
}
PAYMENT_DAYS = 45  # New York's Fashion Workers Act: paid within 45 days of the period's end
STATEMENT_QUERY = {"twin", "from", "to", "format"}
MAX_RECORDS = 200


class Reports:
    def __init__(self, recorder, rates=None):
        self.recorder = recorder  # its record() writes each report's own record
        # licence id -> (rate per image, currency): the accepted rates pay statements price at
        self.rates = rates or (lambda licence_ids: {})
        self.store = recorder.log.store  # the fleet's records (service.registry.audit.AuditRecords)
        self.counts = UsageCounts(self.store.db)  # generated, delivered and rejected, in SQL

    def usage(self, actor: dict, client_ip: str | None, *, action: str, query: dict[str, str],
              twins: frozenset[str] | None, twin: str | None, from_: dt.date | None, to: dt.date | None,
              period: str, tenant: str | None = None, confined_to: str | None = None,
              kept_days: int | None = None) -> dict[str, Any]:
        """Usage rows (per `period`: day or month) with what they count: restricted to `twins`
        when given (a talent key's), to `tenant` when asked, and to `confined_to` (a brand's
        `usage` key: its own tenant; naming another is refused, 403). With `kept_days` (the
        job retention), rows that ended before the job tables' kept window say delivered and
        rejected null."""
        unknown = sorted(set(query) - USAGE_QUERY)
        if unknown:
            raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        if from_ is not None and to is not None and from_ > to:
            raise InvalidRequest("'from' is after 'to'", field="from")
        with audited_action(self.recorder.record, admin_event, action=action, client_ip=client_ip, query=dict(query),
                            actor=actor):
            tenant = confine(tenant, confined_to)
            rows = self.counts.rows(tenant=tenant, twin=twin, twins=twins, date_from=_day(from_), date_to=_day(to))
        complete_from = None
        if kept_days is not None:
            complete_from = (self.store.db.now() - dt.timedelta(days=kept_days)).date() + dt.timedelta(days=1)
            for row in rows:  # days whose items the job tables may no longer hold
                if row["day"] < complete_from.isoformat():
                    row["delivered"] = row["rejected"] = None
        if period == "month":
            rows = usage_by_month(rows)
        return {"rows": rows, "counted": dict(COUNTED),
                "decided_complete_from": complete_from.isoformat() if complete_from else None}

    def generation_record(self, generation_id: str) -> dict[str, Any] | None:
        """The audit record of a generation (its chain's sequence number, hash, time and
        outcome), for a caller already told the generation's audit summary (Verify's report:
        its disclosure rule applied and its `verify` record written); None when no record names it."""
        for record in self.store.find("generation_id", generation_id, limit=MAX_RECORDS):
            if record.get("event") == "generation":
                return {key: record.get(key) for key in ("seq", "hash", "ts", "outcome")}
        return None

    def statement(self, actor: dict, client_ip: str | None, *, query: dict[str, str], twins: frozenset[str] | None,
                  twin: str | None, from_: dt.date, to: dt.date, brand: str | None = None,
                  confined_to: str | None = None) -> dict[str, Any]:
        """A statement for `from_`..`to` (inclusive days, UTC): images per twin, brand, use and
        consent version or licence in force, at each signed licence's rate: a talent's
        (restricted to `twins`) or a brand's (`brand`: what that tenant owes; `confined_to`, a
        brand's `usage` key: its own tenant, another refused, 403)."""
        unknown = sorted(set(query) - STATEMENT_QUERY - ({"tenant"} if brand or confined_to else set()))
        if unknown:
            raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        if from_ > to:
            raise InvalidRequest("'from' is after 'to'", field="from")
        with audited_action(self.recorder.record, admin_event,
                            action="brand_statement" if brand or confined_to else "talent_statement",
                            client_ip=client_ip, query=dict(query), actor=actor):
            brand = confine(brand, confined_to)
            if twins is None and brand is None:
                raise InvalidRequest("name the brand whose statement to read (tenant)", field="tenant")
            rows = self.store.statement(twins=twins, twin=twin, date_from=_day(from_), date_to=_day(to), brand=brand)
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


def confine(tenant: str | None, confined_to: str | None) -> str | None:
    """The tenant a report reads: `confined_to` (a brand's `usage` key: its own tenant, naming
    another is refused, 403) or, for any other key, the one it asked for (None: every one)."""
    if confined_to is None:
        return tenant
    if tenant is not None and tenant != confined_to:
        raise Forbidden("a 'usage' key reads its own tenant's reports only; another tenant's needs an 'admin' key",
                        code="insufficient_scope", field="tenant")
    return confined_to


def _day(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()
