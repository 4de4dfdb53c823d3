from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.twin_state import TwinState


T = TypeVar("T", bound="TwinRevokeResponse")


@_attrs_define
class TwinRevokeResponse:
    """
    Attributes:
        twin (TwinState): A twin as the admin routes show it: one representation for register, list and revoke.
    """

    twin: TwinState
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        twin = self.twin.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "twin": twin,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.twin_state import TwinState

        d = dict(src_dict)
        twin = TwinState.from_dict(d.pop("twin"))

        twin_revoke_response = cls(
            twin=twin,
        )

        twin_revoke_response.additional_properties = d
        return twin_revoke_response

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
