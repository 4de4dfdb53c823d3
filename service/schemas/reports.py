"""Read answers: what `/v1/verify`, `/v1/usage` and the audit records route report.

Owns: the verify report (watermark, C2PA, the generation's audit summary), usage rows and the
audit records answer. Must never import bentoml, torch, or anything that does work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class WatermarkReport(BaseModel):
    found: bool
    watermark_id: str | None
    bit_errors_corrected: int | None


class C2paReport(BaseModel):
    state: str = Field(..., description="The C2PA manifest's validation state (Trusted, Valid, Invalid, none).")
    reasons: list[str]


class VerifyAudit(BaseModel):
    generation_id: str
    tenant: str
    twin_id: str | None
    image_index: int
    ts: str
    outcome: str


class VerifyResponse(BaseModel):
    """`POST /v1/verify`: what the image carries, and whether (and what) this service made it."""

    format: str
    width: int
    height: int
    watermark: WatermarkReport
    c2pa: C2paReport
    generation_id: str | None
    digital_source_type: str | None
    audit: VerifyAudit | None = Field(None, description="The generation's summary: for its own tenant and admins.")
    made_by_this_service: bool
    found_by: Literal["watermark", "manifest"] | None


class UsageRow(BaseModel):
    day: str = Field(..., description="YYYY-MM-DD, or YYYY-MM with `period=month`.")
    tenant: str
    twin_id: str | None
    generations: int
    images: int


class UsageReport(BaseModel):
    rows: list[UsageRow]


class StatementRow(BaseModel):
    twin_id: str
    brand: str = Field(..., description="The tenant that used the twin.")
    use: str | None = Field(..., description="The licensed use the generations named (e.g. `ecommerce`).")
    consent_version: int | None = Field(..., description="The version of the person's consent in force when "
                                                         "each generation was admitted.")
    generations: int
    images: int


class TalentStatement(BaseModel):
    """A talent's statement for a period: images per twin, brand, use and consent version,
    counted over every gateway's audit record; the same query later gives the same numbers."""

    from_: str = Field(..., alias="from", description="First day (UTC), YYYY-MM-DD.")
    to: str = Field(..., description="Last day (UTC), inclusive.")
    rows: list[StatementRow]
    images: int = Field(..., description="Images in the period, all rows.")
    counted: str = Field(..., description="What the numbers count.")

    model_config = {"populate_by_name": True}


class AuditRecords(BaseModel):
    """A generation's audit records in sequence order (each a JSON object with its chain hash)."""

    generation_id: str
    records: list[dict]
