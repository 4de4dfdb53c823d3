"""Licensing: brands ask for a person's twin, the person decides, signs and ends, on the record.

Owns: the audited actions of the licence routes and Studio: a brand's request (a key with the
`licensing` scope, for its own tenant), the person's signing key, their signed decision (a
talent key decides only licences of its own twins, in the role its scopes give it: person,
representative or guardian), ending one licence or every licence of a twin, and reading
licences as each side may (a brand its own tenant's, a person their twins'). Each action is
one audit record (`licence.*`); a decision's record carries the signed licence and its hash.

Must never verify a signature itself (`service.registry.licences` checks it against the key
registered for the role), let one brand read another's licences, or let a person act on a
twin that is not theirs (another's licence id reads as absent: 404).
"""

from __future__ import annotations

from collections.abc import Callable

from service.audit.actions import audited_action
from service.audit.events import licence_event
from service.errors import Forbidden
from service.registry import Registry
from service.registry.licences import Licence, LicenceNotFound
from service.registry.persons import Person
from service.tenancy.auth import Principal


def licence_out(licence: Licence) -> dict:
    return {"licence_id": licence.id, "twin_id": licence.twin_id, "tenant_id": licence.tenant_id,
            "status": licence.status, "sha256": licence.sha256, "terms": licence.terms,
            "requested_at": licence.requested_at.isoformat(),
            "decided_at": licence.decided_at and licence.decided_at.isoformat(),
            "revoked_at": licence.revoked_at and licence.revoked_at.isoformat(),
            "signatures": licence.document()["signatures"]}


def person_out(person: Person, twin_ids: list[str]) -> dict:
    return {"person_id": person.id, "display_name": person.display_name, "representative": person.representative,
            "minor": person.minor, "guardian": person.guardian, "estate_contact": person.estate_contact,
            "signing_keys": person.public_keys, "twin_ids": twin_ids}


class Licensing:
    def __init__(self, registry: Registry, record: Callable[[dict], object]):
        self.registry = registry
        self.record = record

    # -- a brand ---------------------------------------------------------------------------

    def request(self, principal: Principal, body, *, client_ip: str | None) -> dict:
        with audited_action(self.record, licence_event, action="request", client_ip=client_ip,
                            actor=principal.audit_fields(), twin_id=body.twin_id) as details:
            licence = self.registry.licences.request(
                principal.tenant_id, principal.key_id, body.twin_id, purpose=body.purpose, uses=body.uses,
                territories=body.territories, valid_from=body.valid_from, valid_until=body.valid_until,
                excluded_categories=body.excluded_categories, included_categories=body.included_categories,
                rate_per_image=body.rate_per_image, currency=body.currency)
            details.update(licence_id=licence.id, licence_sha256=licence.sha256, terms=licence.terms)
            return licence_out(licence)

    def brand_licences(self, principal: Principal) -> dict:
        return {"licences": [licence_out(x) for x in self.registry.licences.listed(tenant_id=principal.tenant_id)]}

    def all_licences(self, *, tenant_id: str | None, twin_id: str | None, status: str | None, limit: int) -> dict:
        """Every brand's licences, for an operator: by brand, twin or state, newest first."""
        return {"licences": [licence_out(x) for x in self.registry.licences.listed(
            tenant_id=tenant_id, twin_ids=frozenset({twin_id}) if twin_id else None, status=status, limit=limit)]}

    # -- the person --------------------------------------------------------------------------

    def person_licences(self, principal: Principal) -> dict:
        return {"licences": [licence_out(x) for x in self.registry.licences.listed(twin_ids=self._twins(principal))]}

    def document(self, principal: Principal, licence_id: str) -> dict:
        """The signed licence, for its brand or its person."""
        licence = self._readable(principal, licence_id)
        return licence.document()

    def register_key(self, principal: Principal, public_key: str, *, client_ip: str | None) -> dict:
        with audited_action(self.record, licence_event, action="signing_key", client_ip=client_ip,
                            actor=principal.audit_fields(), role=principal.signs_as) as details:
            person = self._person(principal)
            person = self.registry.persons.set_public_key(person.id, principal.signs_as, public_key)
            details.update(person_id=person.id, public_key=person.public_keys[principal.signs_as])
            return person_out(person, self.registry.persons.twins_of(person.id))

    def me(self, principal: Principal) -> dict:
        person = self._person(principal)
        return person_out(person, self.registry.persons.twins_of(person.id))

    def decide(self, principal: Principal, body, *, client_ip: str | None) -> dict:
        with audited_action(self.record, licence_event, action=body.decision, client_ip=client_ip,
                            actor=principal.audit_fields(), licence_id=body.licence_id,
                            role=principal.signs_as) as details:
            self._own(principal, body.licence_id)
            licence = self.registry.licences.decide(body.licence_id, role=principal.signs_as,
                                                    decision=body.decision, signature=body.signature)
            details.update(twin_id=licence.twin_id, tenant_id=licence.tenant_id, licence_sha256=licence.sha256,
                           status=licence.status, signed_licence=licence.document())
            return licence_out(licence)

    def revoke(self, principal: Principal, licence_id: str, *, client_ip: str | None) -> dict:
        with audited_action(self.record, licence_event, action="revoke", client_ip=client_ip,
                            actor=principal.audit_fields(), licence_id=licence_id) as details:
            self._own(principal, licence_id)
            licence = self.registry.licences.revoke(licence_id, twin_ids=self._twins(principal),
                                                    by=principal.signs_as)
            details.update(twin_id=licence.twin_id, tenant_id=licence.tenant_id, licence_sha256=licence.sha256)
            return licence_out(licence)

    def revoke_twin(self, principal: Principal, twin_id: str, *, client_ip: str | None) -> dict:
        with audited_action(self.record, licence_event, action="revoke_all", client_ip=client_ip,
                            actor=principal.audit_fields(), twin_id=twin_id) as details:
            if twin_id not in self._twins(principal):
                raise Forbidden(f"twin {twin_id!r} is not one of this key's twins", field="twin_id",
                                code="not_your_twin")
            ended = self.registry.licences.revoke_twin(twin_id, by=principal.signs_as)
            details.update(ended=[x.id for x in ended])
            return {"twin_id": twin_id, "ended": [x.id for x in ended]}

    # -- the operator ------------------------------------------------------------------------

    def create_person(self, principal: Principal, body, *, client_ip: str | None) -> dict:
        with audited_action(self.record, licence_event, action="person_create", client_ip=client_ip,
                            actor=principal.audit_fields(), person_id=body.person_id):
            person = self.registry.persons.create_person(
                body.person_id, body.display_name, representative=body.representative, minor=body.minor,
                guardian=body.guardian, estate_contact=body.estate_contact)
            return person_out(person, [])

    def get_person(self, person_id: str) -> dict:
        return person_out(self.registry.persons.get_person(person_id), self.registry.persons.twins_of(person_id))

    def assign_twin(self, principal: Principal, body, *, client_ip: str | None) -> dict:
        with audited_action(self.record, licence_event, action="twin_person", client_ip=client_ip,
                            actor=principal.audit_fields(), twin_id=body.twin_id, person_id=body.person_id):
            self.registry.persons.assign_twin(body.twin_id, body.person_id)
            return self.get_person(body.person_id)

    # -- who may see what -------------------------------------------------------------------------

    @staticmethod
    def _twins(principal: Principal) -> frozenset[str]:
        return principal.twin_ids or frozenset()

    def _person(self, principal: Principal) -> Person:
        twins = sorted(self._twins(principal))
        if not twins:
            raise Forbidden("this key names no twin", code="insufficient_scope")
        return self.registry.persons.person_of_twin(twins[0])

    def _own(self, principal: Principal, licence_id: str) -> Licence:
        licence = self.registry.licences.get(licence_id)
        if licence.twin_id not in self._twins(principal):
            raise LicenceNotFound(f"no licence {licence_id!r}", field="licence_id")
        return licence

    def _readable(self, principal: Principal, licence_id: str) -> Licence:
        licence = self.registry.licences.get(licence_id)
        if principal.twin_ids is not None:
            if licence.twin_id not in principal.twin_ids:
                raise LicenceNotFound(f"no licence {licence_id!r}", field="licence_id")
        elif licence.tenant_id != principal.tenant_id:
            raise LicenceNotFound(f"no licence {licence_id!r}", field="licence_id")
        return licence
