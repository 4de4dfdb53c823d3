from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="TenantDeliveryBody")


@_attrs_define
class TenantDeliveryBody:
    """Where a tenant's job images go and where its job events are posted.

    Attributes:
        tenant_id (str):
        output_target (None | str | Unset):
        url_expiry_s (int | None | Unset): Presigned URL lifetime.
        webhook_url (None | str | Unset): https URL; empty string removes it.
        rotate_webhook_secret (bool | Unset): Mint a new signing secret (shown once). Default: False.
    """

    tenant_id: str
    output_target: None | str | Unset = UNSET
    url_expiry_s: int | None | Unset = UNSET
    webhook_url: None | str | Unset = UNSET
    rotate_webhook_secret: bool | Unset = False

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        output_target: None | str | Unset
        if isinstance(self.output_target, Unset):
            output_target = UNSET
        else:
            output_target = self.output_target

        url_expiry_s: int | None | Unset
        if isinstance(self.url_expiry_s, Unset):
            url_expiry_s = UNSET
        else:
            url_expiry_s = self.url_expiry_s

        webhook_url: None | str | Unset
        if isinstance(self.webhook_url, Unset):
            webhook_url = UNSET
        else:
            webhook_url = self.webhook_url

        rotate_webhook_secret = self.rotate_webhook_secret

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenant_id": tenant_id,
            }
        )
        if output_target is not UNSET:
            field_dict["output_target"] = output_target
        if url_expiry_s is not UNSET:
            field_dict["url_expiry_s"] = url_expiry_s
        if webhook_url is not UNSET:
            field_dict["webhook_url"] = webhook_url
        if rotate_webhook_secret is not UNSET:
            field_dict["rotate_webhook_secret"] = rotate_webhook_secret

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        def _parse_output_target(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        output_target = _parse_output_target(d.pop("output_target", UNSET))

        def _parse_url_expiry_s(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        url_expiry_s = _parse_url_expiry_s(d.pop("url_expiry_s", UNSET))

        def _parse_webhook_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        webhook_url = _parse_webhook_url(d.pop("webhook_url", UNSET))

        rotate_webhook_secret = d.pop("rotate_webhook_secret", UNSET)

        tenant_delivery_body = cls(
            tenant_id=tenant_id,
            output_target=output_target,
            url_expiry_s=url_expiry_s,
            webhook_url=webhook_url,
            rotate_webhook_secret=rotate_webhook_secret,
        )

        return tenant_delivery_body
