"""Usage: images generated per (UTC day, tenant, twin), read from audit records.

Owns: the aggregation rule and the CSV/JSON writers. A record counts when `outcome == "ok"`;
its images are `len(record["images"])` when `images` is a list, else `num_images`; records with
neither are skipped. Days come from the record's `ts` (UTC). Filters: twin id, and an inclusive
range of days. The reports' rows (`USAGE_COLUMNS`: per day, tenant, twin and use, with the
images delivered and rejected beside the generated ones, counted in the registry by
`service.registry.usage`) are summed per month here and written as CSV. Must never read files
itself (callers pass records or rows) or count a failed generation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

COLUMNS = ("day", "tenant", "twin_id", "generations", "images")


def images_in(record: Mapping[str, Any]) -> int | None:
    images = record.get("images")
    if isinstance(images, list):
        return len(images)
    count = record.get("num_images")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    return None


def aggregate(
    records: Iterable[Mapping[str, Any]],
    twin: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> list[dict[str, Any]]:
    """Rows `{day, tenant, twin_id, generations, images}` sorted by day, tenant, twin."""
    totals: dict[tuple[str, str, str | None], list[int]] = {}
    for record in records:
        if record.get("outcome") != "ok":
            continue
        count = images_in(record)
        ts = record.get("ts")
        if count is None or not isinstance(ts, str) or len(ts) < 10:
            continue
        try:
            day = dt.date.fromisoformat(ts[:10])
        except ValueError:
            continue
        if (date_from and day < date_from) or (date_to and day > date_to):
            continue
        twin_id = record.get("twin_id")
        if twin is not None and twin_id != twin:
            continue
        key = (day.isoformat(), str(record.get("tenant") or ""), twin_id)
        entry = totals.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += count
    rows = [
        {"day": day, "tenant": tenant, "twin_id": twin_id, "generations": gens, "images": images}
        for (day, tenant, twin_id), (gens, images) in totals.items()
    ]
    rows.sort(key=lambda r: (r["day"], r["tenant"], r["twin_id"] or ""))
    return rows


def by_month(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Daily rows summed per (month `YYYY-MM` in the `day` column, tenant, twin), same order."""
    totals: dict[tuple[str, str, str | None], list[int]] = {}
    for row in rows:
        entry = totals.setdefault((str(row["day"])[:7], row["tenant"], row["twin_id"]), [0, 0])
        entry[0] += row["generations"]
        entry[1] += row["images"]
    return [{"day": month, "tenant": tenant, "twin_id": twin_id, "generations": gens, "images": images}
            for (month, tenant, twin_id), (gens, images) in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or ""))]


USAGE_COLUMNS = ("day", "tenant", "twin_id", "use", "generations", "images", "delivered", "rejected")
USAGE_COUNTS = ("generations", "images", "delivered", "rejected")


def usage_by_month(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Daily usage rows summed per (month `YYYY-MM` in the `day` column, tenant, twin, use), in
    the same order; a count that is None on every day summed stays None (not known)."""
    totals: dict[tuple[str, str, str | None, str | None], dict[str, Any]] = {}
    for row in rows:
        month = str(row["day"])[:7]
        key = (month, row["tenant"], row["twin_id"], row.get("use"))
        entry = totals.setdefault(key, {"day": month, "tenant": row["tenant"], "twin_id": row["twin_id"],
                                        "use": row.get("use"), **{count: None for count in USAGE_COUNTS}})
        for count in USAGE_COUNTS:
            if row.get(count) is not None:
                entry[count] = (entry[count] or 0) + row[count]
    return [totals[key] for key in sorted(totals, key=lambda k: (k[0], k[1], k[2] or "", k[3] or ""))]


STATEMENT_COLUMNS = ("twin_id", "brand", "use", "consent_version", "licence_id", "generations", "images",
                     "rate_per_image", "currency", "amount")


def rows_csv(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...]) -> str:
    """CSV with a header row of `columns`; None (the base model's twin, a paper row's rate) is an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Usage rows as CSV."""
    return rows_csv(rows, COLUMNS)


def usage_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The reports' usage rows as CSV (`USAGE_COLUMNS`); a count not known is an empty cell."""
    return rows_csv(rows, USAGE_COLUMNS)


def statement_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """A talent statement's rows as CSV."""
    return rows_csv(rows, STATEMENT_COLUMNS)


def to_json(rows: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), indent=2) + "\n"
