"""Consent bodies and answers: a twin's consent versions and the terms a tenant sees.

Owns: `ConsentBody` (a new consent version and the checks on each of its lists), the recorded
versions as admins read them, and the twins and terms `/v1/twins` shows a tenant. Must never
import bentoml, torch, or anything that does work.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from service.schemas.common import TENANT_ID_PATTERN, TWIN_ID_PATTERN

_LABEL = (r"^[a-z][a-z_]{0,31}$", "a lowercase label")
_CONSENT_ITEMS = {
    "tenants": (TENANT_ID_PATTERN, "a tenant id"),
    "uses": _LABEL,
    "excluded_categories": _LABEL,
    "included_categories": _LABEL,
    "territories": (r"^[A-Z]{2}$", "an ISO 3166-1 alpha-2 code"),
}


class ConsentBody(BaseModel):
    """A new consent version for a twin; it is signed (immutable) when recorded."""

    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)
    tenants: list[str] = Field(..., min_length=1, max_length=1000)
    uses: list[str] = Field(..., min_length=1, max_length=32, examples=[["ecommerce", "lookbook"]])
    territories: list[str] = Field([], max_length=250, description="ISO 3166-1 alpha-2 codes; empty means worldwide.")
    # Not strict: JSON carries datetimes as ISO 8601 strings (checked for a time zone).
    valid_from: AwareDatetime | None = Field(None, description="Default: now.", strict=False)
    valid_until: AwareDatetime | None = Field(None, strict=False)
    pay_rate_ref: str | None = Field(None, max_length=200)
    excluded_categories: list[str] = Field([], max_length=32)
    included_categories: list[str] = Field([], max_length=32)
    deny_terms: list[str] = Field([], max_length=500)
    review_unverified_garments: bool = Field(
        False, description="Hold catalogue items whose garment images cannot be verified (no garment classifier "
                           "runs) for a person's review before delivery; synchronous generations and edits with "
                           "such garments are refused (403 garment_review_required).")
    recorded_by: str = Field(..., min_length=1, max_length=200)

    @field_validator("tenants", "uses", "excluded_categories", "included_categories", "territories")
    @classmethod
    def _items(cls, values: list[str], info: ValidationInfo) -> list[str]:
        pattern, what = _CONSENT_ITEMS[info.field_name]
        for value in values:
            if not re.fullmatch(pattern, value):
                raise ValueError(f"{value!r} is not {what}")
        return values

    @field_validator("deny_terms")
    @classmethod
    def _terms(cls, values: list[str]) -> list[str]:
        if any(not v.strip() or len(v) > 100 for v in values):
            raise ValueError("deny terms are 1-100 characters each")
        return values


class ConsentTerms(BaseModel):
    state: Literal["active", "not_yet_valid", "expired"]
    version: int | None = Field(..., description="The paper consent record's version (null under a signed licence).")
    licence_id: str | None = Field(None, description="The licence the person signed, when that is what allows it.")
    uses: list[str]
    territories: list[str]
    valid_from: str
    valid_until: str | None
    excluded_categories: list[str]
    included_categories: list[str]
    review_unverified_garments: bool = False


class TenantTwin(BaseModel):
    id: str
    display_name: str
    consent: ConsentTerms


class TenantTwinList(BaseModel):
    """`GET /v1/twins`: the twins this tenant may generate, with the consent terms of each."""

    tenant_id: str
    twins: list[TenantTwin]


class ConsentRecordOut(BaseModel):
    id: int
    twin_id: str
    version: int
    tenants: list[str]
    uses: list[str]
    territories: list[str]
    valid_from: str
    valid_until: str | None
    pay_rate_ref: str | None
    excluded_categories: list[str]
    included_categories: list[str]
    deny_terms: list[str]
    recorded_by: str
    signed_at: str | None
    review_unverified_garments: bool = False


class ConsentAnswer(BaseModel):
    consent: ConsentRecordOut


class ConsentHistory(BaseModel):
    twin_id: str
    versions: list[ConsentRecordOut]
