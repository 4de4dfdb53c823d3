"""The audit log's tables: chains, records and checkpoints, shared by every gateway of the fleet.

Owns: every query on `audit_chains`, `audit_records` and `audit_checkpoints` (migration 0010):
opening a writer's chain, committing a batch of records with the chain's new tail in one
transaction (the acknowledgement point of an audit record; a generation's watermark index
rows are inserted in that same transaction, so an image is traceable exactly when its record
exists, at the cost of one commit, not two), heartbeats, ending a chain,
leasing a dead writer's chain to one gateway, reading a chain's lines back in order, finding
records by field, a tenant's generations a page at a time, and the usage and statement aggregations (counted in SQL over `outcome =
'ok'` records only, whichever gateway wrote them).

Must never build, hash or sign a record (that is `service.audit`: this module stores the lines
it is given, byte for byte), update or delete a record, or hold state in the process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update

from service.registry.db import Database
from service.registry.models import AuditChainRow, AuditCheckpointRow, AuditRecordRow, WatermarkRow

GENESIS_HASH = "0" * 64
# Fields a caller may find records by: each is a column (indexed where reports need it).
FINDABLE = {"generation_id": AuditRecordRow.generation_id, "event": AuditRecordRow.event,
            "twin_id": AuditRecordRow.twin_id, "tenant": AuditRecordRow.tenant}


@dataclass(frozen=True)
class StoredRecord:
    """One record as committed: its place in its chain, the copies reports read, its line."""

    log_id: str
    seq: int
    hash: str
    ts: str
    event: str
    tenant: str | None
    twin_id: str | None
    generation_id: str | None
    outcome: str | None
    images: int | None
    use: str | None
    consent_version: int | None
    line: str
    licence_id: str | None = None
    # The generation's images in the watermark index, written in the record's own transaction:
    # (watermark_id, generation_id, tenant_id, twin_id, image_index) each.
    watermarks: tuple[tuple[str, str, str, str | None, int], ...] = ()

    def row(self) -> dict[str, Any]:
        return {"log_id": self.log_id, "seq": self.seq, "hash": self.hash, "ts": self.ts, "day": self.ts[:10],
                "event": self.event, "tenant": self.tenant, "twin_id": self.twin_id,
                "generation_id": self.generation_id, "outcome": self.outcome, "images": self.images,
                "use": self.use, "consent_version": self.consent_version, "licence_id": self.licence_id,
                "line": self.line}


@dataclass(frozen=True)
class Chain:
    log_id: str
    writer: str
    opened_at: datetime
    heartbeat_at: datetime
    size: int
    last_hash: str
    ended_at: datetime | None
    archived: int


def _chain(row: AuditChainRow) -> Chain:
    return Chain(row.log_id, row.writer, row.opened_at, row.heartbeat_at, row.size, row.last_hash, row.ended_at,
                 row.archived)


class AuditRecords:
    def __init__(self, db: Database):
        self.db = db

    # ---- writing (one writer per chain) -------------------------------------------------------

    def open_chain(self, log_id: str, writer: str) -> Chain:
        now = self.db.now()
        with self.db.session() as s, s.begin():
            s.add(AuditChainRow(log_id=log_id, writer=writer[:200], opened_at=now, heartbeat_at=now, size=0,
                                last_hash=GENESIS_HASH, archived=0))
        return self.chain(log_id)

    def commit(self, log_id: str, records: Sequence[StoredRecord]) -> None:
        """Insert `records` (consecutive seqs continuing the chain) and move the chain's tail, in
        one transaction. The chain's row is updated only where its size is the seq before the
        first record, so two writers can never both extend one chain."""
        if not records:
            return
        first, last = records[0], records[-1]
        with self.db.session() as s, s.begin():
            moved = s.execute(update(AuditChainRow)
                              .where(AuditChainRow.log_id == log_id, AuditChainRow.size == first.seq - 1,
                                     AuditChainRow.ended_at.is_(None))
                              .values(size=last.seq, last_hash=last.hash, heartbeat_at=self.db.now()))
            if moved.rowcount != 1:
                raise ChainConflict(f"audit chain {log_id} is not at seq {first.seq - 1}, or has ended")
            s.execute(insert(AuditRecordRow), [r.row() for r in records])
            now = self.db.now()
            marks = [{"watermark_id": w, "generation_id": g, "tenant_id": t, "twin_id": tw, "image_index": i,
                      "created_at": now} for r in records for w, g, t, tw, i in r.watermarks]
            if marks:  # the index rows of a generation and its record: both or neither
                s.execute(insert(WatermarkRow), marks)

    def heartbeat(self, log_id: str) -> None:
        with self.db.session() as s, s.begin():
            s.execute(update(AuditChainRow).where(AuditChainRow.log_id == log_id, AuditChainRow.ended_at.is_(None))
                      .values(heartbeat_at=self.db.now()))

    def end_chain(self, log_id: str) -> Chain:
        """Mark the chain ended (no writer will extend it); idempotent."""
        with self.db.session() as s, s.begin():
            s.execute(update(AuditChainRow).where(AuditChainRow.log_id == log_id, AuditChainRow.ended_at.is_(None))
                      .values(ended_at=self.db.now()))
        return self.chain(log_id)

    def add_checkpoint(self, log_id: str, tree_size: int, body: str) -> bool:
        """Store a signed tree head; False when the chain already has one of that size."""
        with self.db.session() as s, s.begin():
            if s.get(AuditCheckpointRow, (log_id, tree_size)) is not None:
                return False
            s.add(AuditCheckpointRow(log_id=log_id, tree_size=tree_size, body=body))
        return True

    def set_archived(self, log_id: str, archived: int) -> None:
        with self.db.session() as s, s.begin():
            s.execute(update(AuditChainRow).where(AuditChainRow.log_id == log_id, AuditChainRow.archived < archived)
                      .values(archived=archived))

    def claim_orphan(self, log_id: str, archiver: str, stale_after: timedelta, lease: timedelta) -> bool:
        """Lease a chain whose writer stopped beating (or ended it) to `archiver`, so that one
        gateway seals and ships it; True when this call got the lease."""
        now = self.db.now()
        with self.db.session() as s, s.begin():
            taken = s.execute(update(AuditChainRow).where(
                AuditChainRow.log_id == log_id,
                or_(AuditChainRow.ended_at.is_not(None), AuditChainRow.heartbeat_at < now - stale_after),
                or_(AuditChainRow.archiver_until.is_(None), AuditChainRow.archiver_until < now,
                    AuditChainRow.archiver == archiver),
            ).values(archiver=archiver[:200], archiver_until=now + lease))
            return taken.rowcount == 1

    # ---- reading -------------------------------------------------------------------------------

    def chain(self, log_id: str) -> Chain | None:
        with self.db.session() as s:
            row = s.get(AuditChainRow, log_id)
            return None if row is None else _chain(row)

    def chains(self) -> list[Chain]:
        with self.db.session() as s:
            return [_chain(r) for r in s.scalars(select(AuditChainRow).order_by(AuditChainRow.opened_at,
                                                                                  AuditChainRow.log_id))]

    def unarchived(self, stale_before: datetime) -> list[Chain]:
        """Chains with records no sealed segment holds yet, whose writer ended or went silent."""
        with self.db.session() as s:
            rows = s.scalars(select(AuditChainRow).where(
                AuditChainRow.archived < AuditChainRow.size,
                or_(AuditChainRow.ended_at.is_not(None), AuditChainRow.heartbeat_at < stale_before),
            ).order_by(AuditChainRow.opened_at))
            return [_chain(r) for r in rows]

    def lines(self, log_id: str, first: int = 1, last: int | None = None, batch: int = 2000) -> Iterator[str]:
        """The chain's lines from seq `first` to `last` (inclusive), in order, read in batches."""
        at = first
        while last is None or at <= last:
            query = select(AuditRecordRow.seq, AuditRecordRow.line).where(AuditRecordRow.log_id == log_id,
                                                                         AuditRecordRow.seq >= at)
            if last is not None:
                query = query.where(AuditRecordRow.seq <= last)
            with self.db.session() as s:
                rows = s.execute(query.order_by(AuditRecordRow.seq).limit(batch)).all()
            if not rows:
                return
            for seq, line in rows:
                yield line
            at = rows[-1][0] + 1

    def hashes(self, log_id: str, last: int) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(AuditRecordRow.hash).where(AuditRecordRow.log_id == log_id,
                                                                     AuditRecordRow.seq <= last)
                                  .order_by(AuditRecordRow.seq)))

    def checkpoints(self, log_id: str) -> list[tuple[int, str]]:
        with self.db.session() as s:
            return [(r.tree_size, r.body) for r in s.scalars(
                select(AuditCheckpointRow).where(AuditCheckpointRow.log_id == log_id)
                .order_by(AuditCheckpointRow.tree_size))]

    def find(self, field: str, value: Any, limit: int | None = None) -> list[dict[str, Any]]:
        """Records whose top-level `field` equals `value`, oldest first (by time, then chain and
        seq). Indexed for the fields of `FINDABLE`; any other field is a scan of the lines
        holding the value's canonical JSON, checked field by field."""
        r = AuditRecordRow
        column = FINDABLE.get(field)
        if column is not None:
            where = column == value
        else:
            needle = json.dumps({field: value}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)[1:-1]
            where = r.line.contains(needle, autoescape=True)
        query = select(r.line).where(where).order_by(r.ts, r.log_id, r.seq)
        matches = []
        with self.db.session() as s:
            for line in s.scalars(query):
                record = json.loads(line)
                if record.get(field) == value:
                    matches.append(record)
                    if limit is not None and len(matches) >= limit:
                        break
        return matches

    def tenant_generations(self, tenant: str, *, twin: str | None = None, day_from: str | None = None,
                           day_to: str | None = None, job_id: str | None = None, offset: int = 0,
                           limit: int = 25) -> list[dict[str, Any]]:
        """A tenant's answered generations (`generation` records, `outcome = 'ok'`), newest
        first, a page at a time, by twin, UTC days (YYYY-MM-DD, inclusive) and job. Read
        through the (tenant, ts) index: never another tenant's records, never a whole log."""
        r = AuditRecordRow
        query = select(r.line).where(r.tenant == tenant, r.event == "generation", r.outcome == "ok")
        if twin is not None:
            query = query.where(r.twin_id == twin)
        if day_from is not None:
            query = query.where(r.day >= day_from)
        if day_to is not None:
            query = query.where(r.day <= day_to)
        if job_id is not None:  # canonical JSON: a quote inside a string value is escaped, so this is the field
            query = query.where(r.line.contains(f'"job_id":{json.dumps(job_id)}', autoescape=True))
        query = query.order_by(r.tenant.desc(), r.ts.desc(), r.log_id.desc(), r.seq.desc()).offset(offset).limit(limit)
        with self.db.session() as s:
            records = [json.loads(line) for line in s.scalars(query)]
        return [x for x in records if job_id is None or (x.get("job") or {}).get("job_id") == job_id]

    def iter_records(self, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Every record of the fleet, chain by chain, each chain in seq order."""
        for chain in self.chains():
            for line in self.lines(chain.log_id, batch=batch):
                yield json.loads(line)

    def count(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditRecordRow)))

    def total_bytes(self) -> int:
        """The size of every record's line (what the archive will hold, less newlines)."""
        with self.db.session() as s:
            return int(s.scalar(select(func.coalesce(func.sum(func.length(AuditRecordRow.line)), 0))))

    # ---- usage ---------------------------------------------------------------------------------

    def usage(self, *, twin: str | None = None, twins: frozenset[str] | None = None, date_from: str | None = None,
              date_to: str | None = None) -> list[dict[str, Any]]:
        """Rows `{day, tenant, twin_id, generations, images}`: records with `outcome = 'ok'` and
        an image count, per UTC day, tenant and twin, sorted by day, tenant, twin."""
        r = AuditRecordRow
        query = (select(r.day, r.tenant, r.twin_id, func.count(), func.sum(r.images))
                 .where(*counted(twin, twins, date_from, date_to))
                 .group_by(r.day, r.tenant, r.twin_id))
        with self.db.session() as s:
            rows = [{"day": day, "tenant": tenant or "", "twin_id": twin_id, "generations": int(n),
                     "images": int(images or 0)} for day, tenant, twin_id, n, images in s.execute(query)]
        rows.sort(key=lambda row: (row["day"], row["tenant"], row["twin_id"] or ""))
        return rows

    def statement(self, *, twins: frozenset[str] | None, date_from: str, date_to: str,
                  twin: str | None = None, brand: str | None = None) -> list[dict[str, Any]]:
        """A statement for a period: images per twin, brand (tenant), use and the consent
        version (paper) or licence (signed) in force, over `outcome = 'ok'` records only; a
        talent's (`twins`) or a brand's (`brand`: that tenant's rows only)."""
        r = AuditRecordRow
        query = (select(r.twin_id, r.tenant, r.use, r.consent_version, r.licence_id, func.count(), func.sum(r.images))
                 .where(*counted(twin, twins, date_from, date_to, brand), r.twin_id.is_not(None))
                 .group_by(r.twin_id, r.tenant, r.use, r.consent_version, r.licence_id))
        with self.db.session() as s:
            rows = [{"twin_id": twin_id, "brand": tenant or "", "use": use, "consent_version": version,
                     "licence_id": licence_id, "generations": int(n), "images": int(images or 0)}
                    for twin_id, tenant, use, version, licence_id, n, images in s.execute(query)]
        rows.sort(key=lambda row: (row["twin_id"], row["brand"], row["use"] or "", row["consent_version"] or 0,
                                   row["licence_id"] or ""))
        return rows


def counted(twin, twins, date_from, date_to, tenant: str | None = None) -> list:
    """The conditions of a counted record: answered with images (`outcome = 'ok'`), of
    `tenant`, `twin` and `twins` when given, on UTC days `date_from`..`date_to`."""
    r = AuditRecordRow
    where = [r.outcome == "ok", r.images.is_not(None)]
    if tenant is not None:
        where.append(r.tenant == tenant)
    if twin is not None:
        where.append(r.twin_id == twin)
    if twins is not None:
        where.append(r.twin_id.in_(sorted(twins)) if twins else and_(False))
    if date_from is not None:
        where.append(r.day >= date_from)
    if date_to is not None:
        where.append(r.day <= date_to)
    return where


class ChainConflict(RuntimeError):
    """A commit would fork or extend an ended chain: the writer must stop using it."""
