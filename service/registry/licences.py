"""The licences repository: a brand's request for a person's twin, the person's signed decision,
and the person's revocation.

Owns: requesting a licence (its canonical terms and their hash, `service.licence_document`),
deciding it with a signature checked against the person's registered key for the signer's
role (the licence is accepted once the person or their representative accepted and, for a
minor, the guardian too; any decline declines it), revoking one licence or every licence of a
twin, the brand's `licence.revoked` webhook queued in the revocation's transaction, the
signed document of a licence, and the facts the consent decision reads (`facts_for`). Every
change bumps the registry version, so every gateway's consent cache sees it at once.

Must never change a licence's terms (a wider scope is a new request), decide a licence that
is not `requested`, accept a signature under a key other than the one registered for its role,
or return ORM rows.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import AtelierError, InvalidRequest, TwinNotFound
from service.licence_document import (
    DECISIONS, ROLES, SCHEMA, LicenceSignatureError, check_signature, licence_hash,
)
from service.registry.db import Database, strings
from service.registry.deliveries import queue_event
from service.registry.errors import TenantNotFound, TwinRevoked
from service.registry.models import LicenceRow, LicenceSignatureRow, PersonRow, TenantRow, TwinRow
from service.registry.persons import KEY_COLUMNS

CURRENCIES = frozenset({"EUR", "USD", "GBP", "CHF", "JPY", "CNY", "SEK", "DKK", "NOK", "PLN", "CAD", "AUD"})


class LicenceNotFound(AtelierError):
    status = 404
    code = "licence_not_found"


class LicenceNotPending(AtelierError):
    status = 409
    code = "licence_not_pending"


class LicenceNotActive(AtelierError):
    status = 409
    code = "licence_not_active"


@dataclass(frozen=True)
class LicenceSignature:
    role: str
    decision: str
    public_key: str
    signature: str
    signed_at: datetime


@dataclass(frozen=True)
class Licence:
    id: str
    twin_id: str
    person_id: str
    tenant_id: str
    terms: dict[str, Any]
    sha256: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_at: datetime | None
    revoked_at: datetime | None
    signatures: tuple[LicenceSignature, ...] = ()

    def document(self) -> dict[str, Any]:
        """The signed licence as anyone can check it offline (`atelier licence verify FILE`)."""
        return {"licence": self.terms, "sha256": self.sha256, "status": self.status,
                "signatures": [{"role": g.role, "decision": g.decision, "public_key": g.public_key,
                                "signature": g.signature, "signed_at": g.signed_at.isoformat()} for g in self.signatures]}


@dataclass(frozen=True)
class LicenceFacts:
    """What the consent decision needs of one licence."""

    id: str
    sha256: str
    status: str
    uses: tuple[str, ...]
    territories: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime | None
    excluded_categories: tuple[str, ...]
    included_categories: tuple[str, ...]
    requested_at: datetime


def _licence(row: LicenceRow, signatures=()) -> Licence:
    return Licence(row.id, row.twin_id, row.person_id, row.tenant_id, dict(row.terms), row.sha256, row.status,
                   row.requested_by, row.requested_at, row.decided_at, row.revoked_at,
                   tuple(LicenceSignature(g.role, g.decision, g.public_key, g.signature, g.signed_at) for g in signatures))


def facts_of(row: LicenceRow, at) -> LicenceFacts:
    t = row.terms
    return LicenceFacts(row.id, row.sha256, row.status, tuple(t["uses"]), tuple(t["territories"]),
                        at(datetime.fromisoformat(t["valid_from"])),
                        None if t["valid_until"] is None else at(datetime.fromisoformat(t["valid_until"])),
                        tuple(t["excluded_categories"]), tuple(t["included_categories"]), row.requested_at)


def rate_text(rate: Any) -> str:
    try:
        value = Decimal(str(rate))
    except (InvalidOperation, ValueError):
        raise InvalidRequest("rate_per_image must be a decimal amount, e.g. \"0.50\"", field="rate_per_image") from None
    if not value.is_finite() or value < 0 or value > Decimal("100000") or value.as_tuple().exponent < -4:
        raise InvalidRequest("rate_per_image must be between 0 and 100000, with at most 4 decimals",
                             field="rate_per_image")
    return format(value.normalize(), "f")


class Licences:
    def __init__(self, db: Database):
        self.db = db

    def request(self, tenant_id: str, key_id: str, twin_id: str, *, purpose: str, uses, rate_per_image, currency: str,
                valid_from: datetime | None = None, valid_until: datetime | None = None, territories=(),
                excluded_categories=(), included_categories=()) -> Licence:
        """A brand's request: the person decides it. The terms are fixed here."""
        purpose = (purpose or "").strip()
        if not 10 <= len(purpose) <= 2000:
            raise InvalidRequest("purpose says in plain words what the images are for (10-2000 characters)",
                                 field="purpose")
        if currency not in CURRENCIES:
            raise InvalidRequest(f"currency must be one of {sorted(CURRENCIES)}", field="currency")
        use_list = strings(uses, "uses")
        if not use_list:
            raise InvalidRequest("a licence names at least one use", field="uses")
        now = self.db.now()
        start = self.db.at(valid_from) if valid_from is not None else now
        end = None if valid_until is None else self.db.at(valid_until)
        if end is not None and end <= start:
            raise InvalidRequest("valid_until must be after valid_from", field="valid_until")
        with self.db.session() as s, s.begin():
            twin = s.get(TwinRow, twin_id)
            if twin is None or twin.deleted:
                raise TwinNotFound(f"no twin {twin_id!r}")
            if twin.revoked_at is not None:
                raise TwinRevoked(f"twin {twin_id!r} is revoked")
            if s.get(TenantRow, tenant_id) is None:
                raise TenantNotFound(f"no tenant {tenant_id!r}")
            person = s.get(PersonRow, twin.person_id)
            licence_id = "lic_" + secrets.token_hex(12)
            terms = {"schema": SCHEMA, "licence_id": licence_id, "twin_id": twin_id, "person_id": person.id,
                     "minor": bool(person.minor), "representative": person.representative,
                     "tenant_id": tenant_id, "purpose": purpose, "uses": use_list,
                     "territories": strings(territories, "territories"), "valid_from": start.isoformat(),
                     "valid_until": None if end is None else end.isoformat(),
                     "excluded_categories": strings(excluded_categories, "excluded_categories"),
                     "included_categories": strings(included_categories, "included_categories"),
                     "rate_per_image": rate_text(rate_per_image), "currency": currency,
                     "requested_by": key_id, "requested_at": now.isoformat()}
            row = LicenceRow(id=licence_id, twin_id=twin_id, person_id=person.id, tenant_id=tenant_id, terms=terms,
                             sha256=licence_hash(terms), status="requested", requested_by=key_id, requested_at=now)
            s.add(row)
            self.db.bump_version(s)
            return _licence(row)

    def get(self, licence_id: str) -> Licence:
        with self.db.session() as s:
            row = s.get(LicenceRow, licence_id)
            if row is None:
                raise LicenceNotFound(f"no licence {licence_id!r}")
            return _licence(row, self._signatures(s, licence_id))

    def listed(self, *, tenant_id: str | None = None, twin_ids: frozenset[str] | None = None,
               status: str | None = None, limit: int = 200) -> list[Licence]:
        """Licences of a brand (`tenant_id`), of a person's twins (`twin_ids`), in one state
        (`status`), or all of them (an operator's view), newest first."""
        query = select(LicenceRow).order_by(LicenceRow.requested_at.desc()).limit(limit)
        if tenant_id is not None:
            query = query.where(LicenceRow.tenant_id == tenant_id)
        if twin_ids is not None:
            query = query.where(LicenceRow.twin_id.in_(sorted(twin_ids) or [""]))
        if status is not None:
            query = query.where(LicenceRow.status == status)
        with self.db.session() as s:
            return [_licence(row, self._signatures(s, row.id)) for row in s.scalars(query)]

    def decide(self, licence_id: str, *, role: str, decision: str, signature: str) -> Licence:
        """Record a signed decision by `role`, checked against the key the person registered
        for that role; the licence becomes `accepted` or `declined` when the rules say so."""
        if role not in ROLES or decision not in DECISIONS:
            raise InvalidRequest(f"role must be one of {list(ROLES)} and decision one of {list(DECISIONS)}",
                                 field="decision")
        now = self.db.now()
        with self.db.session() as s, s.begin():
            row = s.get(LicenceRow, licence_id, with_for_update=True)
            if row is None:
                raise LicenceNotFound(f"no licence {licence_id!r}")
            if row.status != "requested":
                raise LicenceNotPending(f"licence {licence_id} is {row.status}; only a requested licence is decided",
                                        field="licence_id")
            person = s.get(PersonRow, row.person_id)
            public_key = getattr(person, KEY_COLUMNS[role])
            if public_key is None:
                raise InvalidRequest(f"no signing key is registered for the {role} of this person: register one "
                                     "first (POST /v1/talent/signing-key)", field="signature")
            try:
                check_signature(public_key, signature, decision, role, row.sha256)
            except LicenceSignatureError as exc:
                raise InvalidRequest(str(exc), field="signature", code="invalid_signature") from None
            if s.get(LicenceSignatureRow, (licence_id, role)) is not None:
                raise LicenceNotPending(f"the {role} has already decided licence {licence_id}", field="licence_id")
            s.add(LicenceSignatureRow(licence_id=licence_id, role=role, decision=decision, public_key=public_key,
                                      signature=signature, signed_at=now))
            s.flush()
            roles = {g.role: g.decision for g in self._signatures(s, licence_id)}
            if "decline" in roles.values():
                row.status, row.decided_at = "declined", now
            elif ({"person", "representative"} & {r for r, d in roles.items() if d == "accept"}
                  and (not row.terms.get("minor") or roles.get("guardian") == "accept")):
                row.status, row.decided_at = "accepted", now
            self.db.bump_version(s)
            return _licence(row, self._signatures(s, licence_id))

    def revoke(self, licence_id: str, *, twin_ids: frozenset[str] | None = None, by: str) -> Licence:
        """The person ends a licence (requested or accepted): no new request is admitted under
        it, and the brand's webhook gets `licence.revoked`."""
        now = self.db.now()
        with self.db.session() as s, s.begin():
            row = s.get(LicenceRow, licence_id, with_for_update=True)
            if row is None or (twin_ids is not None and row.twin_id not in twin_ids):
                raise LicenceNotFound(f"no licence {licence_id!r}")
            if row.status not in ("requested", "accepted"):
                raise LicenceNotActive(f"licence {licence_id} is {row.status}", field="licence_id")
            self._revoke(s, row, now, by)
            self.db.bump_version(s)
            return _licence(row, self._signatures(s, licence_id))

    def revoke_twin(self, twin_id: str, *, by: str) -> list[Licence]:
        """Every open licence of a twin ends (the person's "stop all use of my twin")."""
        now = self.db.now()
        with self.db.session() as s, s.begin():
            rows = s.scalars(select(LicenceRow).where(LicenceRow.twin_id == twin_id,
                                                      LicenceRow.status.in_(("requested", "accepted")))
                             .with_for_update()).all()
            for row in rows:
                self._revoke(s, row, now, by)
            self.db.bump_version(s)
            return [_licence(row) for row in rows]

    def revoked_since(self, since: datetime) -> frozenset[str]:
        """The ids of licences revoked at or after `since` (what a renderer's in-flight work
        must stop for: nothing admitted earlier than that is still rendering)."""
        with self.db.session() as s:
            return frozenset(s.scalars(select(LicenceRow.id).where(LicenceRow.status == "revoked",
                                                                   LicenceRow.revoked_at >= since)))

    def facts_for(self, s: Session, twin_id: str, tenant_id: str) -> tuple[LicenceFacts, ...]:
        """The licences of (twin, tenant), newest first, in the caller's session (one statement)."""
        rows = s.scalars(select(LicenceRow).where(LicenceRow.twin_id == twin_id, LicenceRow.tenant_id == tenant_id)
                         .order_by(LicenceRow.requested_at.desc())).all()
        return tuple(facts_of(row, self.db.at) for row in rows)

    def rates(self, licence_ids) -> dict[str, tuple[str, str]]:
        """licence id -> (rate per image, currency)."""
        with self.db.session() as s:
            rows = s.execute(select(LicenceRow.id, LicenceRow.terms).where(LicenceRow.id.in_(sorted(licence_ids) or [""])))
            return {licence_id: (terms["rate_per_image"], terms["currency"]) for licence_id, terms in rows}

    @staticmethod
    def _revoke(s: Session, row: LicenceRow, now: datetime, by: str) -> None:
        was = row.status
        row.status, row.revoked_at = "revoked", now
        if was == "accepted":
            queue_event(s, row.tenant_id, None, "licence.revoked", now,
                        {"licence_id": row.id, "twin_id": row.twin_id, "licence_sha256": row.sha256,
                         "revoked_at": now.isoformat(), "revoked_by": by})

    @staticmethod
    def _signatures(s: Session, licence_id: str):
        return s.scalars(select(LicenceSignatureRow).where(LicenceSignatureRow.licence_id == licence_id)
                         .order_by(LicenceSignatureRow.signed_at)).all()
