from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.prefetch_response_results import PrefetchResponseResults


T = TypeVar("T", bound="PrefetchResponse")


@_attrs_define
class PrefetchResponse:
    """
    Attributes:
        results (PrefetchResponseResults):
    """

    results: PrefetchResponseResults
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        results = self.results.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "results": results,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.prefetch_response_results import PrefetchResponseResults

        d = dict(src_dict)
        results = PrefetchResponseResults.from_dict(d.pop("results"))

        prefetch_response = cls(
            results=results,
        )

        prefetch_response.additional_properties = d
        return prefetch_response

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
