"""The twins repository: twins, likeness-level revocation and the watermark index.

Owns: registering a twin (create, or replace its adapter and metadata), reading and listing
twins, revoking a likeness (the named twin and every twin of the same adapter bytes, plus
what a `related` hook names in the same transaction), and the watermark index (a delivered
image's watermark id -> its generation, tenant and twin). Must never return ORM rows
(callers get frozen dataclasses), never un-revoke a twin, never update or delete a
watermark row, and never change a twin without bumping the registry version in the same
transaction. Timestamps default to the database's clock.

Rules it enforces:
- Revocation is final and applies to the likeness: `revoke_likeness` sets `revoked_at` (and
  `deleted` on request) on the twin and on every other twin serving the same adapter bytes
  (sha256), bumps their `revision`, and none of them takes new consent or an adapter again;
  `service.registry.likeness` adds, through `related`, every twin whose fingerprint is near
  or that an admin linked as the same person.
- One likeness, one set of bytes: `put_twin` refuses (409 `adapter_in_use`) adapter bytes
  already bound to another twin, live or revoked. Its `within(session, row)` hook (the
  likeness decision) runs last in the same transaction; what it raises undoes the write.
- Watermark rows are only ever added: a repeated id is refused, not overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from service.errors import InvalidRequest, TwinNotFound
from service.registry.db import Database
from service.registry.errors import AdapterInUse, TwinRevoked
from service.registry.models import PersonRow, TwinRow, WatermarkRow


@dataclass(frozen=True)
class TwinInfo:
    id: str
    display_name: str
    adapter_key: str
    adapter_sha256: str
    rank: int
    deleted: bool
    revision: int
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: TwinRow) -> "TwinInfo":
        return cls(id=row.id, display_name=row.display_name, adapter_key=row.adapter_key,
                   adapter_sha256=row.adapter_sha256, rank=row.rank, deleted=row.deleted, revision=row.revision,
                   revoked_at=row.revoked_at)


@dataclass(frozen=True)
class WatermarkInfo:
    """A delivered image, found by its watermark id."""

    watermark_id: str
    generation_id: str
    tenant_id: str
    twin_id: str | None
    image_index: int
    created_at: datetime


class Twins:
    def __init__(self, db: Database | Engine):
        self.db = Database.of(db)

    # -- twins ----------------------------------------------------------------------------

    def put_twin(
        self,
        twin_id: str,
        *,
        display_name: str,
        adapter_key: str,
        adapter_sha256: str,
        rank: int,
        now: datetime | None = None,
        within: Callable[[Session, TwinRow], None] | None = None,
        person_id: str | None = None,
    ) -> TwinInfo:
        """Create a twin or replace its adapter/metadata; each write bumps its revision.
        `within(session, row)` runs last in the same transaction (`service.registry.likeness`
        checks and records the likeness there); what it raises undoes the write."""
        if len(adapter_sha256) != 64 or any(c not in "0123456789abcdef" for c in adapter_sha256):
            raise InvalidRequest("adapter_sha256 must be 64 lowercase hex characters", field="adapter_sha256")
        if rank < 1:
            raise InvalidRequest("rank must be positive", field="rank")
        now = self.db.at(now)
        with self.db.session() as s, s.begin():
            self.db.bump_version(s)  # first: on PostgreSQL this row lock orders concurrent registrations
            row = s.get(TwinRow, twin_id, with_for_update=True)
            if row is not None and (row.deleted or row.revoked_at is not None):
                raise TwinRevoked(f"twin {twin_id!r} is revoked")
            other = s.scalars(select(TwinRow).where(TwinRow.adapter_sha256 == adapter_sha256, TwinRow.id != twin_id)
                              .order_by(TwinRow.id).limit(1)).first()
            if other is not None:
                state = "a revoked twin" if other.revoked_at is not None or other.deleted else "another twin"
                raise AdapterInUse(f"these adapter bytes are bound to {state} (one likeness, one twin); "
                                   "a person's twin is registered once", field="adapter")
            if row is None:
                row = TwinRow(id=twin_id, created_at=now, deleted=False, revision=0, person_id=person_id or twin_id)
                if s.get(PersonRow, row.person_id) is None:  # a twin shows a person: one of its own by default
                    if person_id is not None:
                        raise InvalidRequest(f"no person {person_id!r}", field="person_id")
                    s.add(PersonRow(id=twin_id, display_name=display_name, minor=False, created_at=now))
                s.add(row)
            elif row.person_id is None:  # a twin from before persons existed
                row.person_id = twin_id
                if s.get(PersonRow, twin_id) is None:
                    s.add(PersonRow(id=twin_id, display_name=display_name, minor=False, created_at=now))
            row.display_name = display_name
            row.adapter_key = adapter_key
            row.adapter_sha256 = adapter_sha256
            row.rank = rank
            row.revision = row.revision + 1
            row.updated_at = now
            s.flush()
            if within is not None:
                within(s, row)
            return TwinInfo.of(row)

    def twins_with_adapter(self, adapter_sha256: str) -> list[TwinInfo]:
        """Every twin (revoked and deleted ones too) whose adapter has these bytes."""
        with self.db.session() as s:
            rows = s.scalars(select(TwinRow).where(TwinRow.adapter_sha256 == adapter_sha256).order_by(TwinRow.id))
            return [TwinInfo.of(r) for r in rows.all()]

    def get_twin(self, twin_id: str, *, include_deleted: bool = False) -> TwinInfo | None:
        with self.db.session() as s:
            row = s.get(TwinRow, twin_id)
            if row is None or (row.deleted and not include_deleted):
                return None
            return TwinInfo.of(row)

    def list_twins(self, *, include_revoked: bool = False) -> list[TwinInfo]:
        """Twins by id; revoked and deleted ones only when asked for."""
        with self.db.session() as s:
            query = select(TwinRow).order_by(TwinRow.id)
            if not include_revoked:
                query = query.where(TwinRow.revoked_at.is_(None), TwinRow.deleted.is_(False))
            return [TwinInfo.of(r) for r in s.scalars(query).all()]

    def revoked_twins(self) -> list[TwinInfo]:
        """Every revoked or deleted twin (what a replica must hold no adapter for)."""
        with self.db.session() as s:
            query = select(TwinRow).where((TwinRow.revoked_at.is_not(None)) | (TwinRow.deleted.is_(True)))
            return [TwinInfo.of(r) for r in s.scalars(query.order_by(TwinRow.id)).all()]

    def revoke_twin(self, twin_id: str, *, delete: bool = False, now: datetime | None = None) -> TwinInfo:
        """Withdraw all consent for a twin (final), and for every twin serving the same
        adapter bytes (`revoke_likeness`). Returns the named twin."""
        return self.revoke_likeness(twin_id, delete=delete, now=now)[0]

    def revoke_likeness(self, twin_id: str, *, delete: bool = False, now: datetime | None = None,
                        related: Callable[[Session, TwinRow], Iterable[str]] | None = None) -> list[TwinInfo]:
        """Revoke a twin and every twin with the same adapter sha256 (one person's likeness,
        whatever id it was registered under), and the twins `related(session, row)` names in the
        same transaction (`service.registry.likeness`: near fingerprints, one likeness group);
        `delete=True` also hides them from `get_twin`.
        Idempotent: repeating it changes nothing (and bumps no version) unless it adds
        `delete`. Returns the named twin first, then the others by id."""
        now = self.db.at(now)
        with self.db.session() as s, s.begin():
            row = s.get(TwinRow, twin_id, with_for_update=True)
            if row is None:
                raise TwinNotFound(f"no twin {twin_id!r}")
            rows = [row] + list(s.scalars(select(TwinRow).where(TwinRow.adapter_sha256 == row.adapter_sha256,
                                                                 TwinRow.id != twin_id).order_by(TwinRow.id)
                                          .with_for_update()).all())
            for other in sorted(set(related(s, row) if related is not None else ()) - {t.id for t in rows}):
                if (twin := s.get(TwinRow, other, with_for_update=True)) is not None:
                    rows.append(twin)
            changed = False
            for twin in rows:
                if twin.revoked_at is not None and (twin.deleted or not delete):
                    continue
                if twin.revoked_at is None:
                    twin.revoked_at = now
                twin.deleted = twin.deleted or delete
                twin.revision = twin.revision + 1
                twin.updated_at = now
                changed = True
            if changed:
                self.db.bump_version(s)
                s.flush()
            return [TwinInfo.of(t) for t in rows]

    # -- watermark index ------------------------------------------------------------------

    def index_watermarks(self, marks: Iterable[tuple[str, str, str, str | None, int]], *,
                         now: datetime | None = None) -> int:
        """Index delivered images: (watermark_id, generation_id, tenant_id, twin_id, image_index)
        each. Rows are only added; a watermark id already indexed is refused (ids are random
        64-bit values: a repeat means a bug, not a collision to paper over)."""
        now = self.db.at(now)
        rows = [{"watermark_id": w, "generation_id": g, "tenant_id": t, "twin_id": tw, "image_index": i, "created_at": now}
                for w, g, t, tw, i in marks]
        if not rows:
            return 0
        with self.db.session() as s, s.begin():
            s.execute(insert(WatermarkRow), rows)  # one INSERT, no unit of work: on every delivery's path
        return len(rows)

    def taken_watermarks(self, watermark_ids: Iterable[str]) -> set[str]:
        """The ids among `watermark_ids` that the index holds already (one primary-key read)."""
        ids = sorted(set(watermark_ids))
        if not ids:
            return set()
        with self.db.reading() as conn:
            return set(conn.scalars(select(WatermarkRow.watermark_id).where(WatermarkRow.watermark_id.in_(ids))))

    def find_watermark(self, watermark_id: str) -> WatermarkInfo | None:
        """The delivered image with this watermark id (one primary-key lookup), or None."""
        if not isinstance(watermark_id, str) or len(watermark_id) != 16:
            return None
        with self.db.reading() as conn:
            row = conn.execute(select(WatermarkRow.__table__).where(
                WatermarkRow.watermark_id == watermark_id.lower())).first()
            if row is None:
                return None
            return WatermarkInfo(row.watermark_id, row.generation_id, row.tenant_id, row.twin_id, row.image_index,
                                 row.created_at)
