from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.add_asset_json_body_kind import AddAssetJsonBodyKind

T = TypeVar("T", bound="AddAssetJsonBody")


@_attrs_define
class AddAssetJsonBody:
    """
    Attributes:
        url (str): https URL of the image (fetched through the SSRF guard)
        kind (AddAssetJsonBodyKind):
    """

    url: str
    kind: AddAssetJsonBodyKind
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        url = self.url

        kind = self.kind.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "url": url,
                "kind": kind,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        url = d.pop("url")

        kind = AddAssetJsonBodyKind(d.pop("kind"))

        add_asset_json_body = cls(
            url=url,
            kind=kind,
        )

        add_asset_json_body.additional_properties = d
        return add_asset_json_body

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
