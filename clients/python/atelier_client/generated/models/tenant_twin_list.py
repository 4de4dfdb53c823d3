from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.tenant_twin import TenantTwin


T = TypeVar("T", bound="TenantTwinList")


@_attrs_define
class TenantTwinList:
    """`GET /v1/twins`: the twins this tenant may generate, with the consent terms of each.

    Attributes:
        tenant_id (str):
        twins (list[TenantTwin]):
    """

    tenant_id: str
    twins: list[TenantTwin]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        twins = []
        for twins_item_data in self.twins:
            twins_item = twins_item_data.to_dict()
            twins.append(twins_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "tenant_id": tenant_id,
                "twins": twins,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.tenant_twin import TenantTwin

        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        twins = []
        _twins = d.pop("twins")
        for twins_item_data in _twins:
            twins_item = TenantTwin.from_dict(twins_item_data)

            twins.append(twins_item)

        tenant_twin_list = cls(
            tenant_id=tenant_id,
            twins=twins,
        )

        tenant_twin_list.additional_properties = d
        return tenant_twin_list

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
