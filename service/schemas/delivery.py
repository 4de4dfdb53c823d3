"""Delivery bodies and answers: where a tenant's job images go, presets, webhook deliveries.

Owns: the tenant delivery settings, prompt presets and webhook delivery log as the admin routes
take and show them. Must never import bentoml, torch, or anything that does work.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import TENANT_ID_PATTERN


class TenantDeliveryBody(BaseModel):
    """Where a tenant's job images go and where its job events are posted."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    output_target: str | None = Field(None, max_length=1024, examples=["inline", "s3://brand-bucket/atelier"])
    url_expiry_s: int | None = Field(None, ge=60, le=7 * 24 * 3600, description="Presigned URL lifetime.")
    webhook_url: str | None = Field(None, max_length=2048, description="https URL; empty string removes it.")
    rotate_webhook_secret: bool = Field(False, description="Mint a new signing secret (shown once).")


class PresetBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant_id: str = Field(..., pattern=TENANT_ID_PATTERN)
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]{0,63}$")
    prompt: str = Field(..., min_length=1, max_length=500)
    negative_prompt: str | None = Field(None, max_length=500)


class DeliveryIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    delivery_id: str = Field(..., pattern=r"^msg_[0-9a-f]{32}$")


class DeliverySettings(BaseModel):
    tenant_id: str
    output_target: str
    url_expiry_s: int
    webhook_url: str | None
    has_webhook_secret: bool


class DeliveryAnswer(BaseModel):
    delivery: DeliverySettings
    webhook_secret: str | None = Field(None, description="A new signing secret: present only when one was minted.")
    note: str | None = None


class Preset(BaseModel):
    prompt: str
    negative_prompt: str | None
    builtin: bool


class PresetList(BaseModel):
    tenant_id: str
    presets: dict[str, Preset]


class WebhookDelivery(BaseModel):
    """One webhook event's delivery: its payload, attempts and log."""

    id: str
    tenant_id: str
    job_id: str | None
    event_type: str
    url: str
    payload: dict
    status: str
    attempts: int
    next_attempt_at: str
    last_status_code: int | None
    last_error: str | None
    log: list[dict]
    created_at: str
    delivered_at: str | None


class WebhookDeliveryList(BaseModel):
    deliveries: list[WebhookDelivery]


class WebhookDeliveryAnswer(BaseModel):
    delivery: WebhookDelivery


class ItemDeliveryState(BaseModel):
    """A catalogue item's S3 delivery being retried (or given up after its deadline)."""

    attempts: int = Field(..., description="Tries so far.")
    next_attempt_at: str | None = Field(None, description="When the next try is due; null once it is settled.")
    deadline: str | None = Field(None, description="After this, the item is failed with delivery_failed.")
    last_error: str | None = None


class ItemRedeliverBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    job_id: str = Field(..., pattern=r"^[0-9a-f]{32}$")
    index: int = Field(..., ge=0, lt=2**31)


class ItemRedeliverAnswer(BaseModel):
    job_id: str
    index: int
    status: str = Field(..., description="delivering: the item is tried now, with a fresh deadline.")
    delivery: ItemDeliveryState | None = None
