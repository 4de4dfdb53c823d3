"""Licence and person bodies and answers: a brand's request, the person's signed decision, the
signed document, and the persons operators record.

Owns: `LicenceRequestBody` (the terms a brand asks for: uses, territories, dates, categories,
a plain-language purpose, a rate per image and its currency), `LicenceDecisionBody` (the
person's signature), the licence as both sides read it, the signed document anyone can check
offline, and the person bodies. Must never import bentoml, torch, or anything that does work.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from service.schemas.common import TWIN_ID_PATTERN

LICENCE_ID_PATTERN = r"^lic_[0-9a-f]{24}$"
PERSON_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ITEMS = {"uses": r"^[a-z][a-z_]{0,31}$", "excluded_categories": r"^[a-z][a-z_]{0,31}$",
          "included_categories": r"^[a-z][a-z_]{0,31}$", "territories": r"^[A-Z]{2}$"}


class LicenceRequestBody(BaseModel):
    """What a brand asks the person for. The terms never change once requested."""

    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)
    purpose: str = Field(..., min_length=10, max_length=2000,
                         examples=["Product pages of the AW26 knitwear line on maison-lumen.com"])
    uses: list[str] = Field(..., min_length=1, max_length=32, examples=[["ecommerce"]])
    territories: list[str] = Field([], max_length=250, description="ISO 3166-1 alpha-2 codes; empty means worldwide.")
    valid_from: AwareDatetime | None = Field(None, description="Default: now.", strict=False)
    valid_until: AwareDatetime | None = Field(None, strict=False)
    excluded_categories: list[str] = Field([], max_length=32)
    included_categories: list[str] = Field([], max_length=32)
    rate_per_image: str = Field(..., pattern=r"^\d{1,6}(\.\d{1,4})?$", examples=["0.50"],
                                description="The amount paid to the person per image, a decimal string.")
    currency: str = Field(..., pattern=r"^[A-Z]{3}$", examples=["EUR"])

    @field_validator("uses", "excluded_categories", "included_categories", "territories")
    @classmethod
    def _items(cls, values: list[str], info: ValidationInfo) -> list[str]:
        for value in values:
            if not re.fullmatch(_ITEMS[info.field_name], value):
                raise ValueError(f"{value!r} is not valid in {info.field_name}")
        return values


class LicenceDecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    licence_id: str = Field(..., pattern=LICENCE_ID_PATTERN)
    decision: Literal["accept", "decline"]
    signature: str = Field(..., min_length=80, max_length=100,
                           description="Base64 Ed25519 signature, by the key registered for the caller's role, over "
                                       "`atelier.licence/1|<decision>|<role>|<licence sha256>`.")


class LicenceIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    licence_id: str = Field(..., pattern=LICENCE_ID_PATTERN)


class TwinLicencesBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)


class SigningKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    public_key: str = Field(..., min_length=43, max_length=44,
                            description="The raw 32-byte Ed25519 public key, base64.")


class LicenceSignatureOut(BaseModel):
    role: Literal["person", "representative", "guardian"]
    decision: Literal["accept", "decline"]
    public_key: str
    signature: str
    signed_at: str


class LicenceOut(BaseModel):
    licence_id: str
    twin_id: str
    tenant_id: str
    status: Literal["requested", "accepted", "declined", "revoked"]
    sha256: str = Field(..., description="sha256 of the canonical terms: what every signature covers.")
    terms: dict = Field(..., description="The canonical licence terms (schema `atelier.licence/1`).")
    requested_at: str
    decided_at: str | None
    revoked_at: str | None
    signatures: list[LicenceSignatureOut]


class LicenceList(BaseModel):
    licences: list[LicenceOut]


class LicenceDocument(BaseModel):
    """A signed licence, checkable offline with `atelier licence verify FILE`."""

    licence: dict
    sha256: str
    status: str
    signatures: list[LicenceSignatureOut]


class LicencesEnded(BaseModel):
    twin_id: str
    ended: list[str] = Field(..., description="The licence ids ended now.")


class PersonBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    person_id: str = Field(..., pattern=PERSON_ID_PATTERN)
    display_name: str = Field(..., min_length=1, max_length=200)
    representative: str | None = Field(None, max_length=200, description="An agency or counsel acting for them.")
    minor: bool = False
    guardian: str | None = Field(None, max_length=200)
    estate_contact: str | None = Field(None, max_length=500)


class TwinPersonBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)
    person_id: str = Field(..., pattern=PERSON_ID_PATTERN)


class PersonOut(BaseModel):
    person_id: str
    display_name: str
    representative: str | None
    minor: bool
    guardian: str | None
    estate_contact: str | None
    signing_keys: dict[str, str | None] = Field(..., description="role -> the registered public key (base64).")
    twin_ids: list[str]
