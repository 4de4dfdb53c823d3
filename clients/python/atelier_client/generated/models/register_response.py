from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.twin_state import TwinState


T = TypeVar("T", bound="RegisterResponse")


@_attrs_define
class RegisterResponse:
    """
    Attributes:
        twin (TwinState): A twin as the admin routes show it: one representation for register, list and revoke.
        created (bool):
        replaced_sha256 (None | str | Unset):
    """

    twin: TwinState
    created: bool
    replaced_sha256: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        twin = self.twin.to_dict()

        created = self.created

        replaced_sha256: None | str | Unset
        if isinstance(self.replaced_sha256, Unset):
            replaced_sha256 = UNSET
        else:
            replaced_sha256 = self.replaced_sha256

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "twin": twin,
                "created": created,
            }
        )
        if replaced_sha256 is not UNSET:
            field_dict["replaced_sha256"] = replaced_sha256

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.twin_state import TwinState

        d = dict(src_dict)
        twin = TwinState.from_dict(d.pop("twin"))

        created = d.pop("created")

        def _parse_replaced_sha256(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        replaced_sha256 = _parse_replaced_sha256(d.pop("replaced_sha256", UNSET))

        register_response = cls(
            twin=twin,
            created=created,
            replaced_sha256=replaced_sha256,
        )

        register_response.additional_properties = d
        return register_response

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
