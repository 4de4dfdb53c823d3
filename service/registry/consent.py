"""The consent repository: a twin's consent versions and the consent decision.

Owns: appending consent versions (the operator's path for paper contracts), amending and
signing drafts, a twin's history and its governing record, and the decision "may this
tenant use this twin for this use now?" over the paper record and the tenant's licences the
person signed (`licences.py`: an accepted licence allows what the paper record does not;
a refusal names the licence's own reason: pending, declined, revoked, expired, out of scope)
(`check_consent`, over a cached snapshot of the twin's consent facts). Must never UPDATE or
DELETE a signed record, return ORM rows, or change a record without bumping the registry
version in the same transaction. Timestamps default to the database's clock.

Rules it enforces:
- Consent is append-only. `add_consent_version` writes version = previous + 1; a signed
  record is immutable: `amend_consent` refuses it (`ConsentImmutable`), and a `before_flush`
  guard on every session of the database refuses any ORM change to a row whose stored
  `signed_at` is set, so no code path can emit that UPDATE. Drafts (`signed=False`) may be
  amended, then `sign_consent` seals them; only signed records ever govern a decision.
- The governing record at time `at` is the highest signed version with `signed_at <= at`
  that has started; a newer version supersedes older ones entirely.
- The decision reads its facts with the same five statements whatever the answer (unknown
  twin, another tenant's, revoked, allowed), so its timing tells no tenant which twin ids
  exist; a repeat at the same registry version costs one statement, whatever the answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import InvalidRequest, TwinNotFound
from service.registry.db import Database, strings
from service.registry.errors import AlreadyExists, ConsentImmutable, ConsentNotFound, TenantNotFound, TwinRevoked
from service.registry.licences import LicenceFacts, Licences
from service.registry.models import ConsentRow, ConsentTenantRow, TenantRow, TwinRow

CONSENT_FACTS_CACHED = 4096  # (twin, tenant) snapshots kept per process
AMENDABLE = frozenset({"uses", "territories", "valid_from", "valid_until", "pay_rate_ref", "excluded_categories",
                       "included_categories", "deny_terms", "recorded_by", "review_unverified_garments"})


@dataclass(frozen=True)
class ConsentRecord:
    id: int
    twin_id: str
    version: int
    tenants: frozenset[str]
    uses: tuple[str, ...]
    territories: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime | None
    pay_rate_ref: str | None
    excluded_categories: tuple[str, ...]
    included_categories: tuple[str, ...]
    deny_terms: tuple[str, ...]
    recorded_by: str
    signed_at: datetime | None
    review_unverified_garments: bool = False

    @classmethod
    def of(cls, row: ConsentRow, tenants: Iterable[str]) -> "ConsentRecord":
        return cls(id=row.id, twin_id=row.twin_id, version=row.version, tenants=frozenset(tenants),
                   uses=tuple(row.uses), territories=tuple(row.territories), valid_from=row.valid_from,
                   valid_until=row.valid_until, pay_rate_ref=row.pay_rate_ref,
                   excluded_categories=tuple(row.excluded_categories), included_categories=tuple(row.included_categories),
                   deny_terms=tuple(row.deny_terms), recorded_by=row.recorded_by, signed_at=row.signed_at,
                   review_unverified_garments=bool(row.review_unverified_garments))


@dataclass(frozen=True)
class ConsentDecision:
    ok: bool
    reason: str | None  # None when ok; else consent_missing | use_not_allowed | consent_expired | revoked
    consent_id: int | None = None
    version: int | None = None
    deny_terms: tuple[str, ...] = ()
    excluded_categories: tuple[str, ...] = ()
    included_categories: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()  # empty: worldwide
    tenant_named: bool = False  # some version of the twin's consent ever named this tenant
    review_unverified_garments: bool = False
    # A signed licence (migration 0011) allowed it, or is the reason it is refused:
    licence_id: str | None = None
    licence_sha256: str | None = None

    @property
    def basis(self) -> str | None:
        """`signed` (a licence the person accepted) or `paper` (a consent record an operator
        entered for a paper contract); None when nothing allows."""
        return "signed" if self.ok and self.licence_id else "paper" if self.ok else None


@dataclass(frozen=True)
class _ConsentFacts:
    """What the consent decision reads about one twin for one tenant, valid while the registry
    version it was read at holds: the twin's state and every signed version, newest first."""

    exists: bool
    deleted: bool
    revoked_at: datetime | None
    signed: tuple[ConsentRecord, ...]
    tenant_named: bool  # some version (drafts included) ever named this tenant
    licences: tuple[LicenceFacts, ...] = ()  # this tenant's licences for the twin, newest first

    def decide(self, tenant_id: str, use: str, at: datetime) -> ConsentDecision:
        """The paper consent's decision, or an accepted licence's when the paper one refuses;
        a refusal names the licence's own reason when the tenant has asked for one."""
        paper = self._paper(tenant_id, use, at)
        if paper.ok or paper.reason == "revoked" or not self.licences:
            return paper
        for licence in self.licences:
            if (licence.status == "accepted" and licence.valid_from <= at
                    and (licence.valid_until is None or at < licence.valid_until) and use in licence.uses):
                return ConsentDecision(True, None, excluded_categories=licence.excluded_categories,
                                       included_categories=licence.included_categories,
                                       territories=licence.territories, tenant_named=True,
                                       licence_id=licence.id, licence_sha256=licence.sha256)
        covering = [licence for licence in self.licences if use in licence.uses]
        if not covering:
            return ConsentDecision(False, "licence_out_of_scope", tenant_named=True, licence_id=self.licences[0].id)
        licence = covering[0]
        reason = {"requested": "licence_pending", "declined": "licence_declined", "revoked": "licence_revoked"}.get(
            licence.status, "licence_expired")
        return ConsentDecision(False, reason, tenant_named=True, licence_id=licence.id)

    def _paper(self, tenant_id: str, use: str, at: datetime) -> ConsentDecision:
        named = self.tenant_named
        signed = [r for r in self.signed if r.signed_at is not None and r.signed_at <= at]
        record = next((r for r in signed if r.valid_from <= at), signed[0] if signed else None)
        if not self.exists:
            return ConsentDecision(False, "consent_missing", tenant_named=named)
        if self.deleted or (self.revoked_at is not None and self.revoked_at <= at):
            return ConsentDecision(False, "revoked", tenant_named=named)
        if record is None or tenant_id not in record.tenants:
            return ConsentDecision(False, "consent_missing", tenant_named=named)
        ids = {"consent_id": record.id, "version": record.version, "tenant_named": named}
        if at < record.valid_from or (record.valid_until is not None and at >= record.valid_until):
            return ConsentDecision(False, "consent_expired", **ids)
        if use not in record.uses:
            return ConsentDecision(False, "use_not_allowed", **ids)
        return ConsentDecision(True, None, deny_terms=record.deny_terms, excluded_categories=record.excluded_categories,
                               included_categories=record.included_categories, territories=record.territories,
                               review_unverified_garments=record.review_unverified_garments, **ids)


def refuse_signed_consent_updates(session: Session, _ctx, _instances) -> None:
    """The `before_flush` guard: no change to a signed record, no deletion of any record."""
    for obj in session.dirty:
        if isinstance(obj, ConsentRow) and session.is_modified(obj):
            stored = inspect(obj).attrs.signed_at.history
            before = stored.unchanged or stored.deleted
            if before and before[0] is not None:
                raise ConsentImmutable(f"consent record {obj.id} is signed and cannot change")
    for obj in session.deleted:
        if isinstance(obj, ConsentRow):
            raise ConsentImmutable("consent records are never deleted")


class Consent:
    def __init__(self, db: Database | Engine):
        self.db = Database.of(db)
        self.db.guard_flush(refuse_signed_consent_updates)
        self.licences = Licences(self.db)
        self._facts: OrderedDict[tuple[str, str], tuple[int, _ConsentFacts]] = OrderedDict()
        self._lock = threading.Lock()

    def add_consent_version(
        self,
        twin_id: str,
        *,
        tenants: Iterable[str],
        uses: Iterable[str],
        recorded_by: str,
        valid_from: datetime,
        valid_until: datetime | None = None,
        territories: Iterable[str] = (),
        pay_rate_ref: str | None = None,
        excluded_categories: Iterable[str] = (),
        included_categories: Iterable[str] = (),
        deny_terms: Iterable[str] = (),
        signed: bool = True,
        signed_at: datetime | None = None,
        review_unverified_garments: bool = False,
    ) -> ConsentRecord:
        """Append the next consent version for a twin (previous + 1). Signed unless `signed=False`."""
        tenant_ids = strings(tenants, "tenants")
        use_list = strings(uses, "uses")
        if not use_list:
            raise InvalidRequest("a consent record allows at least one use", field="uses")
        valid_from = self.db.at(valid_from)
        if valid_until is not None and self.db.at(valid_until) <= valid_from:
            raise InvalidRequest("valid_until must be after valid_from", field="valid_until")
        now = self.db.now()
        with self.db.session() as s, s.begin():
            twin = s.get(TwinRow, twin_id, with_for_update=True)
            if twin is None or twin.deleted:
                raise TwinNotFound(f"no twin {twin_id!r}")
            if twin.revoked_at is not None:
                raise TwinRevoked(f"twin {twin_id!r} is revoked; it takes no new consent")
            known = set(s.scalars(select(TenantRow.id).where(TenantRow.id.in_(tenant_ids))))
            if missing := sorted(set(tenant_ids) - known):
                raise TenantNotFound(f"unknown tenants: {missing}")
            previous = s.scalar(select(func.max(ConsentRow.version)).where(ConsentRow.twin_id == twin_id)) or 0
            row = ConsentRow(
                twin_id=twin_id, version=previous + 1, uses=use_list, territories=strings(territories, "territories"),
                valid_from=valid_from, valid_until=None if valid_until is None else self.db.at(valid_until),
                pay_rate_ref=pay_rate_ref, excluded_categories=strings(excluded_categories, "excluded_categories"),
                included_categories=strings(included_categories, "included_categories"),
                deny_terms=strings(deny_terms, "deny_terms"), recorded_by=recorded_by,
                signed_at=(self.db.at(signed_at) if signed_at else now) if signed else None,
                review_unverified_garments=bool(review_unverified_garments), created_at=now,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError as exc:  # a concurrent writer took this version number
                raise AlreadyExists("consent version was taken concurrently; retry", code="consent_conflict") from exc
            s.add_all(ConsentTenantRow(consent_id=row.id, tenant_id=t) for t in tenant_ids)
            self.db.bump_version(s)
            return ConsentRecord.of(row, tenant_ids)

    def amend_consent(self, consent_id: int, **changes: Any) -> ConsentRecord:
        """Change fields of an unsigned draft. A signed record raises `ConsentImmutable`."""
        if unknown := set(changes) - AMENDABLE:
            raise InvalidRequest(f"cannot amend {sorted(unknown)}", field=sorted(unknown)[0])
        with self.db.session() as s, s.begin():
            row = s.get(ConsentRow, consent_id, with_for_update=True)
            if row is None:
                raise ConsentNotFound(f"no consent record {consent_id}")
            if row.signed_at is not None:
                raise ConsentImmutable(f"consent record {consent_id} is signed; add a new version instead")
            for name, value in changes.items():
                if name in {"valid_from", "valid_until"} and value is not None:
                    value = self.db.at(value)
                elif name == "review_unverified_garments":
                    value = bool(value)
                elif name not in {"pay_rate_ref", "recorded_by"}:
                    value = strings(value, name)
                setattr(row, name, value)
            self.db.bump_version(s)
            return ConsentRecord.of(row, _tenants_of(s, row.id))

    def sign_consent(self, consent_id: int, *, at: datetime | None = None) -> ConsentRecord:
        """Seal a draft (at `at`, default now): from then on it may govern, and never changes."""
        with self.db.session() as s, s.begin():
            row = s.get(ConsentRow, consent_id, with_for_update=True)
            if row is None:
                raise ConsentNotFound(f"no consent record {consent_id}")
            if row.signed_at is not None:
                raise ConsentImmutable(f"consent record {consent_id} is already signed")
            row.signed_at = self.db.at(at)
            self.db.bump_version(s)
            return ConsentRecord.of(row, _tenants_of(s, row.id))

    def consent_history(self, twin_id: str) -> list[ConsentRecord]:
        """Every version of a twin's consent, drafts included, oldest first."""
        with self.db.session() as s:
            rows = s.scalars(select(ConsentRow).where(ConsentRow.twin_id == twin_id).order_by(ConsentRow.version)).all()
            return [ConsentRecord.of(r, _tenants_of(s, r.id)) for r in rows]

    def current_consent(self, twin_id: str, at: datetime | None = None) -> ConsentRecord | None:
        """The governing record at `at`: the highest signed version (signed at or before `at`)
        that has started (`valid_from <= at`). A renewal signed today that starts next month
        does not cut off today's use; it governs from its start. When no signed version has
        started yet, the highest signed one is returned (and reads as not yet valid)."""
        at = self.db.at(at)
        with self.db.session() as s:
            signed = select(ConsentRow).where(
                ConsentRow.twin_id == twin_id, ConsentRow.signed_at.is_not(None), ConsentRow.signed_at <= at
            ).order_by(ConsentRow.version.desc()).limit(1)
            row = s.scalars(signed.where(ConsentRow.valid_from <= at)).first() or s.scalars(signed).first()
            return None if row is None else ConsentRecord.of(row, _tenants_of(s, row.id))

    def check_consent(self, twin_id: str, tenant_id: str, use: str, at: datetime | None = None) -> ConsentDecision:
        """May `tenant_id` use `twin_id` for `use` at `at`? Reasons, checked in this order:
        revoked (twin revoked/deleted), consent_missing (no governing record, or it does not
        name this tenant: another tenant's twin looks absent), consent_expired (outside
        valid_from..valid_until, "not yet valid" included), use_not_allowed.

        The decision is a pure function of `at` and a snapshot of the twin's consent facts
        (`_ConsentFacts`). A snapshot is read with the same five statements whatever the
        answer, so an unknown, another tenant's and a revoked twin cost the same; it is kept
        per (twin, tenant) while the registry version it was read at holds (every change to a
        twin or its consent bumps that version), so a repeat check costs one statement
        whatever the answer. A generation checks twice (admission and before delivery)."""
        at = self.db.at(at)
        version = self.db.version()
        key = (twin_id, tenant_id)
        with self._lock:
            cached = self._facts.get(key)
            if cached is not None and cached[0] == version:
                self._facts.move_to_end(key)
                facts = cached[1]
            else:
                facts = None
        if facts is None:
            facts = self._read_facts(twin_id, tenant_id)  # read after the version: never older than it
            with self._lock:
                self._facts[key] = (version, facts)
                self._facts.move_to_end(key)
                while len(self._facts) > CONSENT_FACTS_CACHED:
                    self._facts.popitem(last=False)
        return facts.decide(tenant_id, use, at)

    def _read_facts(self, twin_id: str, tenant_id: str) -> _ConsentFacts:
        with self.db.session() as s:
            twin = s.execute(select(TwinRow.deleted, TwinRow.revoked_at).where(TwinRow.id == twin_id)).first()
            signed = s.scalars(select(ConsentRow).where(
                ConsentRow.twin_id == twin_id, ConsentRow.signed_at.is_not(None)
            ).order_by(ConsentRow.version.desc())).all()
            tenants: dict[int, set[str]] = {row.id: set() for row in signed}
            for consent_id, tenant in s.execute(select(ConsentTenantRow.consent_id, ConsentTenantRow.tenant_id).where(
                    ConsentTenantRow.consent_id.in_([row.id for row in signed] or [-1]))):
                tenants[consent_id].add(tenant)
            named = s.scalar(select(func.count()).select_from(ConsentTenantRow).join(
                ConsentRow, ConsentRow.id == ConsentTenantRow.consent_id).where(
                ConsentRow.twin_id == twin_id, ConsentTenantRow.tenant_id == tenant_id)) > 0
            licences = self.licences.facts_for(s, twin_id, tenant_id)
        return _ConsentFacts(
            licences=licences,
            exists=twin is not None,
            deleted=bool(twin is not None and twin.deleted),
            revoked_at=None if twin is None or twin.revoked_at is None else self.db.at(twin.revoked_at),
            signed=tuple(ConsentRecord.of(row, tenants[row.id]) for row in signed),
            tenant_named=named,
        )


def _tenants_of(s: Session, consent_id: int) -> list[str]:
    return list(s.scalars(select(ConsentTenantRow.tenant_id).where(ConsentTenantRow.consent_id == consent_id)))
