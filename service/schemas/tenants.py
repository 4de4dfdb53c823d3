"""Tenant and API key bodies and answers (`/v1/admin/tenants*`, `/v1/admin/keys*`).

Owns: the scopes a key may hold, the bodies that create, list, disable and revoke, and the
tenant and key answers (a key never with its secret, but for the one answer that mints it).
Must never import bentoml, torch, or anything that does work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import TENANT_ID_PATTERN

Scope = Literal["generate", "verify", "admin", "talent", "licensing", "representative", "guardian", "usage"]


class TenantCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN, examples=["maison-lumen"])
    name: str = Field(..., min_length=1, max_length=200)


class TenantDisableBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    disabled: bool = True


class KeyCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    scopes: list[Scope] = Field(..., min_length=1, max_length=4)
    name: str = Field("", max_length=200)
    twin_ids: list[str] | None = Field(None, min_length=1, max_length=32,
                                       description="A `talent` key's twins (one person's); only talent keys take them.")
    person_id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
                                  description="A `talent` key for this person: its twins are the person's (instead of "
                                              "`twin_ids`).")
    requests_per_minute: int = Field(60, ge=1, le=100_000)
    max_concurrent_jobs: int = Field(4, ge=1, le=1000)


class KeyListBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str | None = Field(None, pattern=TENANT_ID_PATTERN)


class KeyIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    key_id: str = Field(..., pattern=r"^[0-9a-f]{12}$")


class Tenant(BaseModel):
    id: str
    name: str
    disabled: bool
    created_at: str


class TenantAnswer(BaseModel):
    tenant: Tenant


class TenantList(BaseModel):
    tenants: list[Tenant]


class ApiKey(BaseModel):
    """An API key as operators see it: never its secret."""

    key_id: str
    tenant_id: str
    name: str
    scopes: list[str]
    requests_per_minute: int
    max_concurrent_jobs: int
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    twin_ids: list[str] | None = None


class KeyCreated(BaseModel):
    key: ApiKey
    token: str = Field(..., description="The key's secret: shown once, never stored in clear.")
    note: str


class KeyList(BaseModel):
    keys: list[ApiKey]


class KeyRevoked(BaseModel):
    key_id: str
    revoked: bool
    already_revoked: bool
