"""Patterns, bounds and the error body that every area of the API shares.

Owns: the id patterns (twins, tenants, assets), prompt and seed bounds, the image formats and
their media types, and `ErrorBody`, the one error shape of every route. Must never import
bentoml, torch, or anything that does work: these are plain data models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

TWIN_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**53 - 1  # the largest integer a JavaScript client can send exactly
OutputFormat = Literal["png", "jpeg", "webp"]
ASSET_ID_PATTERN = r"^[0-9a-f]{64}$"
TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class ErrorDetail(BaseModel):
    code: str = Field(..., examples=["invalid_field"])
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
