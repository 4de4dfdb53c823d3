"""`GET /v1/twins`: the twins the caller's tenant may use, with its consent terms for each.

Owns: the brand's view of the twin catalogue: each twin whose governing consent names the
caller's tenant (another tenant's twins stay invisible), with that consent's uses,
territories, validity, excluded and included categories, and whether it holds now. Must
never hold consent logic (`service.registry`'s governing record, `service.tenancy`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter

from service.gateway.deps import Core, GenerateCaller
from service.schemas import TenantTwinList

router = APIRouter(tags=["twins"])


def consent_terms(record, now: datetime) -> dict:
    """A consent record's terms as a brand (or the talent) reads them, with its state now."""
    if now < record.valid_from:
        state = "not_yet_valid"
    elif record.valid_until is not None and now >= record.valid_until:
        state = "expired"
    else:
        state = "active"
    return {"state": state, "version": record.version, "uses": list(record.uses),
            "territories": list(record.territories), "valid_from": record.valid_from.isoformat(),
            "valid_until": record.valid_until.isoformat() if record.valid_until else None,
            "excluded_categories": list(record.excluded_categories),
            "included_categories": list(record.included_categories),
            "review_unverified_garments": record.review_unverified_garments}


def tenant_twins(core, tenant_id: str, only: frozenset[str] | None = None) -> list[dict]:
    """Twins whose governing consent names `tenant_id` (`only`: restrict to these ids)."""
    now = datetime.now(timezone.utc)
    twins = []
    for twin in core.registry.list_twins():
        if only is not None and twin.id not in only:
            continue
        record = core.registry.current_consent(twin.id, now)
        if record is None or tenant_id not in record.tenants:
            continue
        twins.append({"id": twin.id, "display_name": twin.display_name, "consent": consent_terms(record, now)})
    return twins


@router.get("/twins", operation_id="listTwins", response_model=TenantTwinList)
def list_twins(core: Core, principal: GenerateCaller) -> dict:
    """Twins this tenant may generate, each with the consent terms that apply to it."""
    return {"tenant_id": principal.tenant_id, "twins": tenant_twins(core, principal.tenant_id)}
