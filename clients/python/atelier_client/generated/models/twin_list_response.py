from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.twin_list_response_cache import TwinListResponseCache
    from ..models.twin_state import TwinState


T = TypeVar("T", bound="TwinListResponse")


@_attrs_define
class TwinListResponse:
    """
    Attributes:
        twins (list[TwinState]):
        cache (TwinListResponseCache):
    """

    twins: list[TwinState]
    cache: TwinListResponseCache
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        twins = []
        for twins_item_data in self.twins:
            twins_item = twins_item_data.to_dict()
            twins.append(twins_item)

        cache = self.cache.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "twins": twins,
                "cache": cache,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.twin_list_response_cache import TwinListResponseCache
        from ..models.twin_state import TwinState

        d = dict(src_dict)
        twins = []
        _twins = d.pop("twins")
        for twins_item_data in _twins:
            twins_item = TwinState.from_dict(twins_item_data)

            twins.append(twins_item)

        cache = TwinListResponseCache.from_dict(d.pop("cache"))

        twin_list_response = cls(
            twins=twins,
            cache=cache,
        )

        twin_list_response.additional_properties = d
        return twin_list_response

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
