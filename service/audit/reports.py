"""Reports read from the audit log for a caller: usage (images per day or month, tenant and
twin) and every record of one generation.

Owns: the reports the `/v1` routes and Studio share, each audited as the admin action it is
(`admin.usage`, `admin.talent_usage`, `admin.audit_records`): the query's parameters checked
(an unknown one is refused before anything is read), the rows restricted to a talent key's
twins, and the records of a generation in sequence order. Must never aggregate by itself
(`service.audit.usage`), never know who a caller is beyond the audit fields it is given
(`actor`), and never format HTTP.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.audit.actions import audited_action
from service.audit.events import admin_event
from service.audit.usage import aggregate, by_month
from service.errors import InvalidRequest

USAGE_QUERY = {"twin", "from", "to", "format", "period"}
MAX_RECORDS = 200


class Reports:
    def __init__(self, recorder):
        self.recorder = recorder  # its log is read; its record() writes each report's own record

    def usage(self, actor: dict, client_ip: str | None, *, action: str, query: dict[str, str],
              twins: frozenset[str] | None, twin: str | None, from_: dt.date | None, to: dt.date | None,
              period: str) -> list[dict[str, Any]]:
        """Usage rows (per `period`: day or month), restricted to `twins` when given (a talent key's)."""
        unknown = sorted(set(query) - USAGE_QUERY)
        if unknown:
            raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        with audited_action(self.recorder.record, admin_event, action=action, client_ip=client_ip, query=dict(query),
                            actor=actor):
            rows = aggregate(self.recorder.log.iter_records(), twin, from_, to)
            if twins is not None:
                rows = [row for row in rows if row["twin_id"] in twins]
            return by_month(rows) if period == "month" else rows

    def generation_records(self, actor: dict, client_ip: str | None, generation_id: str) -> dict:
        """The records naming `generation_id`, in sequence order."""
        with audited_action(self.recorder.record, admin_event, action="audit_records", client_ip=client_ip,
                            queried_generation_id=generation_id, actor=actor):
            records = self.recorder.log.find("generation_id", generation_id, limit=MAX_RECORDS)
        return {"generation_id": generation_id, "records": records}
