"""The persons repository: who a twin shows, and the keys that sign for them.

Owns: creating and reading persons (migration 0011), a twin's person, and the Ed25519 public
keys that check a person's licence decisions: their own (`person`), their recorded
representative's (`representative`: an agency or counsel acting for them) and a minor's
guardian's (`guardian`). Must never decide a licence (`licences.py`) or return ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from service.errors import AtelierError, InvalidRequest, TwinNotFound
from service.licence_document import LicenceSignatureError, ROLES, encode_public_key, public_key_of
from service.registry.db import Database
from service.registry.errors import AlreadyExists
from service.registry.models import PersonRow, TwinRow

KEY_COLUMNS = {"person": "public_key", "representative": "representative_public_key", "guardian": "guardian_public_key"}


class PersonNotFound(AtelierError):
    status = 404
    code = "person_not_found"


@dataclass(frozen=True)
class Person:
    id: str
    display_name: str
    representative: str | None
    minor: bool
    guardian: str | None
    estate_contact: str | None
    public_keys: dict[str, str | None]  # role -> base64 raw Ed25519 key
    created_at: datetime


def person_of(row: PersonRow) -> Person:
    return Person(row.id, row.display_name, row.representative, bool(row.minor), row.guardian, row.estate_contact,
                  {role: getattr(row, column) for role, column in KEY_COLUMNS.items()}, row.created_at)


class Persons:
    def __init__(self, db: Database):
        self.db = db

    def create_person(self, person_id: str, display_name: str, *, representative: str | None = None,
                      minor: bool = False, guardian: str | None = None, estate_contact: str | None = None) -> Person:
        if minor and not guardian:
            raise InvalidRequest("a minor's record names their guardian", field="guardian")
        with self.db.session() as s, s.begin():
            if s.get(PersonRow, person_id) is not None:
                raise AlreadyExists(f"person {person_id!r} exists", code="person_exists")
            row = PersonRow(id=person_id, display_name=display_name, representative=representative, minor=minor,
                            guardian=guardian, estate_contact=estate_contact, created_at=self.db.now())
            s.add(row)
            self.db.bump_version(s)
            return person_of(row)

    def get_person(self, person_id: str) -> Person:
        with self.db.session() as s:
            row = s.get(PersonRow, person_id)
            if row is None:
                raise PersonNotFound(f"no person {person_id!r}")
            return person_of(row)

    def person_of_twin(self, twin_id: str) -> Person:
        with self.db.session() as s:
            person_id = s.scalar(select(TwinRow.person_id).where(TwinRow.id == twin_id, TwinRow.deleted.is_(False)))
            if person_id is None:
                raise TwinNotFound(f"no twin {twin_id!r}")
            return person_of(s.get(PersonRow, person_id))

    def twins_of(self, person_id: str) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(TwinRow.id).where(TwinRow.person_id == person_id).order_by(TwinRow.id)))

    def assign_twin(self, twin_id: str, person_id: str) -> None:
        """Put a twin under a person (an operator's correction of the one-person-per-twin default)."""
        with self.db.session() as s, s.begin():
            twin = s.get(TwinRow, twin_id, with_for_update=True)
            if twin is None:
                raise TwinNotFound(f"no twin {twin_id!r}")
            if s.get(PersonRow, person_id) is None:
                raise PersonNotFound(f"no person {person_id!r}")
            twin.person_id = person_id
            self.db.bump_version(s)

    def set_public_key(self, person_id: str, role: str, public_key: str) -> Person:
        """Register the key that signs `role`'s decisions for this person (replacing an older
        one: licences already decided keep the key they were signed with)."""
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {list(ROLES)}", field="role")
        try:
            normalised = encode_public_key(public_key_of(public_key))
        except LicenceSignatureError as exc:
            raise InvalidRequest(str(exc), field="public_key") from None
        with self.db.session() as s, s.begin():
            row = s.get(PersonRow, person_id, with_for_update=True)
            if row is None:
                raise PersonNotFound(f"no person {person_id!r}")
            if role == "guardian" and not row.minor:
                raise InvalidRequest("only a minor's record has a guardian", field="role")
            if role == "representative" and not row.representative:
                raise InvalidRequest("this person has no recorded representative", field="role")
            setattr(row, KEY_COLUMNS[role], normalised)
            self.db.bump_version(s)
            return person_of(row)
