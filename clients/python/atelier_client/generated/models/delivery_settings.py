from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="DeliverySettings")


@_attrs_define
class DeliverySettings:
    """
    Attributes:
        tenant_id (str):
        output_target (str):
        url_expiry_s (int):
        webhook_url (None | str):
        has_webhook_secret (bool):
    """

    tenant_id: str
    output_target: str
    url_expiry_s: int
    webhook_url: None | str
    has_webhook_secret: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        output_target = self.output_target

        url_expiry_s = self.url_expiry_s

        webhook_url: None | str
        webhook_url = self.webhook_url

        has_webhook_secret = self.has_webhook_secret

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "tenant_id": tenant_id,
                "output_target": output_target,
                "url_expiry_s": url_expiry_s,
                "webhook_url": webhook_url,
                "has_webhook_secret": has_webhook_secret,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        output_target = d.pop("output_target")

        url_expiry_s = d.pop("url_expiry_s")

        def _parse_webhook_url(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        webhook_url = _parse_webhook_url(d.pop("webhook_url"))

        has_webhook_secret = d.pop("has_webhook_secret")

        delivery_settings = cls(
            tenant_id=tenant_id,
            output_target=output_target,
            url_expiry_s=url_expiry_s,
            webhook_url=webhook_url,
            has_webhook_secret=has_webhook_secret,
        )

        delivery_settings.additional_properties = d
        return delivery_settings

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
