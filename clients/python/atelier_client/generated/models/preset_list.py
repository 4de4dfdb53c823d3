from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.preset_list_presets import PresetListPresets


T = TypeVar("T", bound="PresetList")


@_attrs_define
class PresetList:
    """
    Attributes:
        tenant_id (str):
        presets (PresetListPresets):
    """

    tenant_id: str
    presets: PresetListPresets
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        presets = self.presets.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "tenant_id": tenant_id,
                "presets": presets,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.preset_list_presets import PresetListPresets

        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        presets = PresetListPresets.from_dict(d.pop("presets"))

        preset_list = cls(
            tenant_id=tenant_id,
            presets=presets,
        )

        preset_list.additional_properties = d
        return preset_list

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
