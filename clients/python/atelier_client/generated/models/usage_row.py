from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="UsageRow")


@_attrs_define
class UsageRow:
    """
    Attributes:
        day (str): YYYY-MM-DD, or YYYY-MM with `period=month`.
        tenant (str):
        twin_id (None | str):
        generations (int):
        images (int):
    """

    day: str
    tenant: str
    twin_id: None | str
    generations: int
    images: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        day = self.day

        tenant = self.tenant

        twin_id: None | str
        twin_id = self.twin_id

        generations = self.generations

        images = self.images

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "day": day,
                "tenant": tenant,
                "twin_id": twin_id,
                "generations": generations,
                "images": images,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        day = d.pop("day")

        tenant = d.pop("tenant")

        def _parse_twin_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        twin_id = _parse_twin_id(d.pop("twin_id"))

        generations = d.pop("generations")

        images = d.pop("images")

        usage_row = cls(
            day=day,
            tenant=tenant,
            twin_id=twin_id,
            generations=generations,
            images=images,
        )

        usage_row.additional_properties = d
        return usage_row

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
