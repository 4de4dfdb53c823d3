"""`GET /v1/twins`: the twins the caller's tenant may use, with its consent terms for each.

Owns: the brand's view of the twin catalogue: each twin whose governing consent names the
caller's tenant (another tenant's twins stay invisible), with that consent's uses,
territories, validity, excluded and included categories, and whether it holds now. Must
never hold consent logic: the reads are `service.twins.views.TwinViews`' (Studio's too).
"""

from __future__ import annotations

from fastapi import APIRouter

from service.gateway.deps import Core, GenerateCaller
from service.schemas import TenantTwinList

router = APIRouter(tags=["twins"])


@router.get("/twins", operation_id="listTwins", response_model=TenantTwinList)
def list_twins(core: Core, principal: GenerateCaller) -> dict:
    """Twins this tenant may generate, each with the consent terms that apply to it."""
    return {"tenant_id": principal.tenant_id, "twins": core.twin_views.for_tenant(principal.tenant_id)}
