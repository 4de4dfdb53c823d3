from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="KeyRevoked")


@_attrs_define
class KeyRevoked:
    """
    Attributes:
        key_id (str):
        revoked (bool):
        already_revoked (bool):
    """

    key_id: str
    revoked: bool
    already_revoked: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        key_id = self.key_id

        revoked = self.revoked

        already_revoked = self.already_revoked

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key_id": key_id,
                "revoked": revoked,
                "already_revoked": already_revoked,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        key_id = d.pop("key_id")

        revoked = d.pop("revoked")

        already_revoked = d.pop("already_revoked")

        key_revoked = cls(
            key_id=key_id,
            revoked=revoked,
            already_revoked=already_revoked,
        )

        key_revoked.additional_properties = d
        return key_revoked

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
