"""Twin administration bodies and answers: register, list, evict, prefetch, revoke.

Owns: `TwinState`, the one representation of a twin the admin routes show, and the bodies of
`/v1/admin/twins*`. Must never import bentoml, torch, or anything that does work.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import TWIN_ID_PATTERN


class TwinIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)


class PrefetchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_ids: list[str] = Field(..., min_length=1, max_length=100)


class TwinState(BaseModel):
    """A twin as the admin routes show it: one representation for register, list and revoke."""

    id: str
    display_name: str
    adapter_key: str = Field(..., description="The adapter file's key in the adapter store.")
    adapter_sha256: str = Field(..., description="The sha256 of the adapter's bytes (one likeness, one twin).")
    rank: int | None
    revoked_at: str | None = Field(None, description="When the twin was revoked (ISO 8601); null while it may serve.")
    deleted: bool = Field(False, description="Revoked with `delete: true`: its adapter bytes left the store.")
    tiers: list[str] | None = Field(None, description="Cache tiers holding the adapter on the renderer worker asked "
                                                      "(device, host, disk); null unless asked for.")
    in_slot: bool | None = Field(None, description="The adapter is the one in that worker's slot; null unless asked for.")


class TwinListResponse(BaseModel):
    twins: list[TwinState]
    cache: dict


class RegisterByKeyBody(BaseModel):
    """`POST /v1/admin/twins` as JSON: a twin from an adapter already in the store."""

    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = ""
    display_name: str = ""
    adapter_key: str = ""


class RegisterResponse(BaseModel):
    twin: TwinState
    created: bool
    replaced_sha256: str | None = None


class EvictResponse(BaseModel):
    twin_id: str
    evicted_from: list[str]


class PrefetchResponse(BaseModel):
    results: dict[str, str]


class TwinRevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    twin_id: str = Field(..., pattern=TWIN_ID_PATTERN)
    delete: bool = Field(False, description="Also delete the adapter file from the store.")


class TwinRevokeResponse(BaseModel):
    twin: TwinState
