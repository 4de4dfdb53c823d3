from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.licence_out import LicenceOut


T = TypeVar("T", bound="LicenceList")


@_attrs_define
class LicenceList:
    """
    Attributes:
        licences (list[LicenceOut]):
    """

    licences: list[LicenceOut]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        licences = []
        for licences_item_data in self.licences:
            licences_item = licences_item_data.to_dict()
            licences.append(licences_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "licences": licences,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.licence_out import LicenceOut

        d = dict(src_dict)
        licences = []
        _licences = d.pop("licences")
        for licences_item_data in _licences:
            licences_item = LicenceOut.from_dict(licences_item_data)

            licences.append(licences_item)

        licence_list = cls(
            licences=licences,
        )

        licence_list.additional_properties = d
        return licence_list

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
