"""Likeness records: each twin's adapter fingerprint, and the twins that are one person.

Owns: the `twin_likeness` table's queries: which twins lack a fingerprint of a scheme, storing
one, the registration decision (in `put_twin`'s transaction: refuse 409 `likeness_in_use` an
adapter within the threshold of another person's twin, live or revoked, unless an admin named
that person's twin in `same_person_as`, which joins the new twin to its likeness group), and
the set a revocation reaches (in `revoke_likeness`'s transaction: every twin within the
threshold, every twin of the same group, every twin of the same bytes, to a fixed point).
A twin without a row is a group of its own, named by its id. Fingerprints are unit float32
vectors compared by 1 - cosine; they are computed by `service.twins.likeness` (never here:
the registry imports nothing above it). Reads and writes go through the twins repository's
`Database` (`twins.db`) and its `put_twin(within=)` / `revoke_likeness(related=)` hooks;
timestamps are that database's clock. Must never bump the registry version for a
fingerprint alone (serving does not read them), nor compare fingerprints of two schemes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import TwinNotFound
from service.registry.db import Database
from service.registry.errors import LikenessInUse, TwinRevoked
from service.registry.models import RegistryStateRow, TwinLikenessRow, TwinRow
from service.registry.twins import TwinInfo, Twins


@dataclass(frozen=True)
class LikenessMatch:
    twin_id: str
    likeness_id: str
    distance: float
    revoked: bool


def missing_fingerprints(twins: Twins, scheme: str) -> list[TwinInfo]:
    """Every twin (revoked and deleted too) with no fingerprint of `scheme`, by id."""
    with _db(twins).session() as s:
        query = (select(TwinRow).outerjoin(TwinLikenessRow, TwinLikenessRow.twin_id == TwinRow.id)
                 .where((TwinLikenessRow.twin_id.is_(None)) | (TwinLikenessRow.scheme != scheme)).order_by(TwinRow.id))
        return [TwinInfo.of(r) for r in s.scalars(query).all()]


def store_fingerprint(twins: Twins, twin_id: str, scheme: str, fingerprint: bytes) -> bool:
    """Record a twin's fingerprint (its group kept, or its own id); False if the twin is gone
    or another process stored one first."""
    db = _db(twins)
    try:
        with db.session() as s, s.begin():
            if s.get(TwinRow, twin_id) is None:
                return False
            _put(s, twin_id, scheme, fingerprint, likeness_id=None, now=db.now())
        return True
    except IntegrityError:
        return False


def likeness_group(twins: Twins, twin_id: str) -> list[str]:
    """The ids of the twins declared to be the same person as `twin_id` (itself included)."""
    with _db(twins).session() as s:
        return sorted(_members(s, _group_of(s, twin_id)) | {twin_id})


def check_registration(twins: Twins, twin_id: str, scheme: str, fingerprint: bytes, threshold: float,
                       same_person_as: str | None = None) -> str:
    """The registration decision alone, read-only (so a refused upload is never written); the
    same decision runs again in `put_twin`'s transaction (`registration_guard`). Returns the
    likeness group the twin would join."""
    with _db(twins).session() as s:
        return _decide(s, twin_id, scheme, fingerprint, threshold, same_person_as)


def registration_guard(scheme: str, fingerprint: bytes, threshold: float,
                       same_person_as: str | None = None) -> Callable[[Session, TwinRow], None]:
    """`put_twin(within=...)`: decide, then record the fingerprint and the group, merging the
    twin's former group into the one it joins."""

    def guard(s: Session, row: TwinRow) -> None:
        group = _decide(s, row.id, scheme, fingerprint, threshold, same_person_as)
        former = _group_of(s, row.id)
        if former != group:
            for member in _members(s, former):
                if (other := s.get(TwinLikenessRow, member)) is not None:
                    other.likeness_id = group
        _put(s, row.id, scheme, fingerprint, likeness_id=group, now=row.updated_at)
        s.flush()

    return guard


def revocation_related(scheme: str, threshold: float) -> Callable[[Session, TwinRow], Iterable[str]]:
    """`revoke_likeness(related=...)`: the twins one revocation reaches besides the named one."""

    def related(s: Session, row: TwinRow) -> set[str]:
        # Taken after the registrations' first lock (the version row): one that committed first is seen here.
        s.execute(select(RegistryStateRow.id).where(RegistryStateRow.id == 1).with_for_update())
        ids, vectors = _fingerprints(s, scheme)
        index = {t: i for i, t in enumerate(ids)}
        shas = dict(s.execute(select(TwinRow.id, TwinRow.adapter_sha256)).all())
        reached, frontier = {row.id}, [row.id]
        while frontier:
            found: set[str] = set()
            for twin in frontier:
                found |= _members(s, _group_of(s, twin))
                found |= {t for t, sha in shas.items() if sha == shas.get(twin)}
                if twin in index and len(ids):
                    near = 1.0 - vectors @ vectors[index[twin]] <= threshold
                    found |= {ids[i] for i in np.flatnonzero(near)} if np.any(vectors[index[twin]]) else set()
            frontier = sorted(found - reached)
            reached |= found
        return reached - {row.id}

    return related


# -- inside a session -------------------------------------------------------------------------


def _db(twins: Twins) -> Database:
    """The database of the twins repository (the `Registry` handle, which holds the same one,
    is accepted too)."""
    return twins.db


def _put(s: Session, twin_id: str, scheme: str, fingerprint: bytes, likeness_id: str | None, now: datetime) -> None:
    row = s.get(TwinLikenessRow, twin_id)
    if row is None:
        s.add(TwinLikenessRow(twin_id=twin_id, likeness_id=likeness_id or twin_id, scheme=scheme,
                              fingerprint=fingerprint, created_at=now))
        return
    row.scheme, row.fingerprint = scheme, fingerprint
    if likeness_id is not None:
        row.likeness_id = likeness_id


def _group_of(s: Session, twin_id: str) -> str:
    row = s.get(TwinLikenessRow, twin_id)
    return row.likeness_id if row is not None else twin_id


def _members(s: Session, group: str) -> set[str]:
    members = set(s.scalars(select(TwinLikenessRow.twin_id).where(TwinLikenessRow.likeness_id == group)))
    if s.get(TwinLikenessRow, group) is None and s.get(TwinRow, group) is not None:
        members.add(group)  # a twin without a row is its own group
    return members


def _fingerprints(s: Session, scheme: str) -> tuple[list[str], np.ndarray]:
    rows = s.execute(select(TwinLikenessRow.twin_id, TwinLikenessRow.fingerprint)
                     .where(TwinLikenessRow.scheme == scheme).order_by(TwinLikenessRow.twin_id)).all()
    if not rows:
        return [], np.zeros((0, 0))
    return [r[0] for r in rows], np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float64)


def _near(s: Session, scheme: str, fingerprint: bytes, threshold: float, exclude: str) -> list[LikenessMatch]:
    """Twins (revoked ones too) whose fingerprint is within `threshold`, nearest first."""
    probe = np.frombuffer(fingerprint, dtype="<f4").astype(np.float64)
    ids, vectors = _fingerprints(s, scheme)
    if not ids or not np.any(probe) or vectors.shape[1] != probe.shape[0]:
        return []
    distances = 1.0 - vectors @ probe
    matches = []
    for i in np.argsort(distances, kind="stable"):
        if distances[i] > threshold:
            break
        if ids[i] == exclude:
            continue
        twin = s.get(TwinRow, ids[i])
        matches.append(LikenessMatch(ids[i], _group_of(s, ids[i]), float(distances[i]),
                                     twin is None or twin.deleted or twin.revoked_at is not None))
    return matches


def _decide(s: Session, twin_id: str, scheme: str, fingerprint: bytes, threshold: float,
            same_person_as: str | None) -> str:
    group = _group_of(s, twin_id)
    if same_person_as is not None and same_person_as != twin_id:
        target = s.get(TwinRow, same_person_as)
        if target is None:
            raise TwinNotFound(f"no twin {same_person_as!r} to attach this likeness to", field="same_person_as")
        if target.deleted or target.revoked_at is not None:
            raise TwinRevoked(f"twin {same_person_as!r} is revoked: its likeness takes no new twin",
                              field="same_person_as")
        group = _group_of(s, same_person_as)
    for match in _near(s, scheme, fingerprint, threshold, exclude=twin_id):
        if match.revoked:
            raise LikenessInUse(f"this adapter is a likeness of twin {match.twin_id!r}, which is revoked; "
                                "a revoked likeness takes no new twin", field="adapter")
        if match.likeness_id != group:
            raise LikenessInUse(f"this adapter is a likeness of twin {match.twin_id!r} (another person's); "
                                "if it is the same person, register it with same_person_as="
                                f"{match.twin_id}", field="adapter")
    return group
