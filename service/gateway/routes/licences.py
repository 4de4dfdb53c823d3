"""Licences: a brand requests (`licensing` scope), the person decides, signs and ends (`talent`
scope), operators record persons (`admin`).

    POST /v1/licences                      request a licence for a twin (the person decides)
    GET  /v1/licences                      the brand's licences
    GET  /v1/licences/document             a signed licence, for `atelier licence verify FILE`
    GET  /v1/talent/me                     the person, their twins and registered signing keys
    POST /v1/talent/signing-key            register the key that signs the caller's decisions
    GET  /v1/talent/licences               licences of the person's twins
    GET  /v1/talent/licences/document      a signed licence of theirs
    POST /v1/talent/licences/decide        accept or decline, signed
    POST /v1/talent/licences/revoke        end one licence
    POST /v1/talent/twins/end-licences     end every licence of one of their twins
    POST /v1/admin/persons                 record a person (display name, representative, minor, guardian, estate)
    GET  /v1/admin/persons                 a person and their twins
    POST /v1/admin/twins/person            put a twin under a person
    GET  /v1/admin/licences                every brand's licences (by brand, twin, state)

Owns: HTTP to one `service.tenancy.licensing.Licensing` call and back. Must never hold logic.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from service.gateway.deps import AdminCaller, ClientIp, Core, LicensingCaller, TalentCaller
from service.gateway.errors import answers
from service.schemas import (LicenceDecisionBody, LicenceDocument, LicenceIdBody, LicenceList, LicenceOut,
                             LicenceRequestBody, LicencesEnded, PersonBody, PersonOut, SigningKeyBody,
                             TwinLicencesBody, TwinPersonBody)
from service.schemas import TENANT_ID_PATTERN, TWIN_ID_PATTERN
from service.schemas.licences import LICENCE_ID_PATTERN, PERSON_ID_PATTERN

router = APIRouter(tags=["licences"])


@router.post("/licences", status_code=201, operation_id="requestLicence", response_model=LicenceOut,
             responses=answers("twin_not_found", "twin_revoked", "tenant_not_found"))
def request_licence(body: LicenceRequestBody, core: Core, principal: LicensingCaller, ip: ClientIp) -> dict:
    """Ask the person for a licence to use their twin: uses, territories, dates, categories, a
    plain-language purpose and a rate per image. Nothing is admitted until the person accepts."""
    return core.licensing.request(principal, body, client_ip=ip)


@router.get("/licences", operation_id="listLicences", response_model=LicenceList)
def brand_licences(core: Core, principal: LicensingCaller) -> dict:
    """This tenant's licence requests and their state, newest first."""
    return core.licensing.brand_licences(principal)


@router.get("/licences/document", operation_id="getLicenceDocument", response_model=LicenceDocument,
            responses=answers("licence_not_found"))
def brand_document(core: Core, principal: LicensingCaller,
                   licence_id: str = Query(..., pattern=LICENCE_ID_PATTERN)) -> dict:
    """The signed licence (terms, hash, signatures and the keys they verify under)."""
    return core.licensing.document(principal, licence_id)


@router.get("/talent/me", operation_id="getTalentPerson", response_model=PersonOut,
            responses=answers("twin_not_found"))
def me(core: Core, principal: TalentCaller) -> dict:
    """The person this key acts for, their twins and the signing keys registered for them."""
    return core.licensing.me(principal)


@router.post("/talent/signing-key", operation_id="registerSigningKey", response_model=PersonOut,
             responses=answers("twin_not_found", "person_not_found"))
def signing_key(body: SigningKeyBody, core: Core, principal: TalentCaller, ip: ClientIp) -> dict:
    """Register the Ed25519 public key that signs this key's decisions, in its role (the person,
    their representative, or a minor's guardian). Decisions already made keep their key."""
    return core.licensing.register_key(principal, body.public_key, client_ip=ip)


@router.get("/talent/licences", operation_id="listTalentLicences", response_model=LicenceList)
def person_licences(core: Core, principal: TalentCaller) -> dict:
    """Licences of this person's twins: requests to decide, accepted, declined and ended ones."""
    return core.licensing.person_licences(principal)


@router.get("/talent/licences/document", operation_id="getTalentLicenceDocument", response_model=LicenceDocument,
            responses=answers("licence_not_found"))
def person_document(core: Core, principal: TalentCaller,
                    licence_id: str = Query(..., pattern=LICENCE_ID_PATTERN)) -> dict:
    """A signed licence of one of this person's twins."""
    return core.licensing.document(principal, licence_id)


@router.post("/talent/licences/decide", operation_id="decideLicence", response_model=LicenceOut,
             responses=answers("licence_not_found", "licence_not_pending", "invalid_signature"))
def decide(body: LicenceDecisionBody, core: Core, principal: TalentCaller, ip: ClientIp) -> dict:
    """Accept or decline a requested licence with a signature by the key registered for this
    key's role. Accepted once the person (or their representative) accepts and, for a minor,
    the guardian too; declined by any decline."""
    return core.licensing.decide(principal, body, client_ip=ip)


@router.post("/talent/licences/revoke", operation_id="revokeLicence", response_model=LicenceOut,
             responses=answers("licence_not_found", "licence_not_active"))
def revoke(body: LicenceIdBody, core: Core, principal: TalentCaller, ip: ClientIp) -> dict:
    """End a licence: no new request is admitted under it from now on, on every gateway, and the
    brand's webhook gets `licence.revoked`."""
    return core.licensing.revoke(principal, body.licence_id, client_ip=ip)


@router.post("/talent/twins/end-licences", operation_id="endTwinLicences", response_model=LicencesEnded,
             responses=answers("not_your_twin"))
def end_licences(body: TwinLicencesBody, core: Core, principal: TalentCaller, ip: ClientIp) -> dict:
    """End every requested or accepted licence of one of this person's twins."""
    return core.licensing.revoke_twin(principal, body.twin_id, client_ip=ip)


@router.post("/admin/persons", status_code=201, operation_id="createPerson", response_model=PersonOut,
             responses=answers("person_exists"))
def create_person(body: PersonBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    """Record a person: display name, representative, minor flag and guardian, estate contact."""
    return core.licensing.create_person(principal, body, client_ip=ip)


@router.get("/admin/persons", operation_id="getPerson", response_model=PersonOut,
            responses=answers("person_not_found"))
def get_person(core: Core, principal: AdminCaller, person_id: str = Query(..., pattern=PERSON_ID_PATTERN)) -> dict:
    """A person, their twins and their registered signing keys."""
    return core.licensing.get_person(person_id)


@router.post("/admin/twins/person", operation_id="setTwinPerson", response_model=PersonOut,
             responses=answers("twin_not_found", "person_not_found"))
def twin_person(body: TwinPersonBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    """Put a twin under a person (migrated twins start one person each)."""
    return core.licensing.assign_twin(principal, body, client_ip=ip)


@router.get("/admin/licences", operation_id="listAllLicences", response_model=LicenceList)
def all_licences(core: Core, principal: AdminCaller,
                 tenant_id: str | None = Query(None, pattern=TENANT_ID_PATTERN, description="One brand's."),
                 twin_id: str | None = Query(None, pattern=TWIN_ID_PATTERN, description="One twin's."),
                 status: Literal["requested", "accepted", "declined", "revoked"] | None = Query(None),
                 limit: int = Query(200, ge=1, le=1000)) -> dict:
    """Every brand's licences, newest first, for operators: which brand may use which twin,
    on what terms, and in which state (requested, accepted, declined or revoked)."""
    return core.licensing.all_licences(tenant_id=tenant_id, twin_id=twin_id, status=status, limit=limit)
