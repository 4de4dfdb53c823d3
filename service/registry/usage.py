"""Usage counts: images generated, delivered and rejected, per UTC day, tenant, twin and use.

Owns: the two queries behind every usage report, over the fleet's shared tables (whichever
gateway wrote a row):
- generated: the audit records of generations answered with images (`outcome = 'ok'` and an
  image count), as `AuditRecords.usage` and the talent's statement count them;
- delivered and rejected: those same records joined, by generation id, to the catalogue items
  that generation rendered, whose status is final: `done` (its images were delivered to the
  job's target, after the reviewer approved them in a review job) or `rejected` (the reviewer
  rejected them; they were never delivered). An item still rendering, delivering or awaiting
  review is in neither yet; a synchronous generation (`/v1/generate`) is answered to its
  caller, never delivered to a target, so it counts as generated only.
Every count is keyed by the generation's own record (its day, tenant, twin, use and image
count), so the three numbers of a row describe the same images. The job tables keep a finished
job for the job retention (`ATELIER_JOB_RETENTION_DAYS`): the caller decides what a row older
than that may say (`service.audit.reports`).

Must never write, never count a failed or refused generation, and never return ORM rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select

from service.registry.audit import counted
from service.registry.db import Database
from service.registry.models import AuditRecordRow, JobItemRow, JobRow

FINAL = {"done": "delivered", "rejected": "rejected"}  # an item's final status -> the count it adds to


class UsageCounts:
    def __init__(self, db: Database):
        self.db = db

    def rows(self, *, tenant: str | None = None, twin: str | None = None, twins: frozenset[str] | None = None,
             date_from: str | None = None, date_to: str | None = None) -> list[dict[str, Any]]:
        """Rows `{day, tenant, twin_id, use, generations, images, delivered, rejected}` sorted by
        day, tenant, twin and use; `images` are the generated images. Filters: one tenant, one
        twin, a set of twins (a talent key's; empty: nothing), and inclusive UTC days."""
        r = AuditRecordRow
        where = counted(twin, twins, date_from, date_to, tenant)
        generated = (select(r.day, r.tenant, r.twin_id, r.use, func.count(), func.sum(r.images))
                     .where(*where).group_by(r.day, r.tenant, r.twin_id, r.use))
        generation_of_item = JobItemRow.result["generation_id"].as_string()
        decided = (select(r.day, r.tenant, r.twin_id, r.use, JobItemRow.status, func.sum(r.images))
                   .select_from(JobItemRow)
                   .join(JobRow, JobRow.id == JobItemRow.job_id)
                   .join(r, and_(r.generation_id == generation_of_item, r.event == "generation",
                                 r.tenant == JobRow.tenant_id))
                   .where(JobItemRow.status.in_(sorted(FINAL)), *where)
                   .group_by(r.day, r.tenant, r.twin_id, r.use, JobItemRow.status))
        if tenant is not None:
            decided = decided.where(JobRow.tenant_id == tenant)
        totals: dict[tuple, dict[str, Any]] = {}
        with self.db.session() as s:
            for day, tenant_id, twin_id, use, n, images in s.execute(generated):
                totals[(day, tenant_id or "", twin_id, use)] = {
                    "day": day, "tenant": tenant_id or "", "twin_id": twin_id, "use": use, "generations": int(n),
                    "images": int(images or 0), "delivered": 0, "rejected": 0}
            for day, tenant_id, twin_id, use, status, images in s.execute(decided):
                row = totals.get((day, tenant_id or "", twin_id, use))
                if row is not None:  # always: the joined record is one of the generated ones
                    row[FINAL[status]] += int(images or 0)
        return sorted(totals.values(), key=lambda row: (row["day"], row["tenant"], row["twin_id"] or "",
                                                         row["use"] or ""))
