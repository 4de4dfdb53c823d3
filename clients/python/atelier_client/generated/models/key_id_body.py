from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="KeyIdBody")


@_attrs_define
class KeyIdBody:
    """
    Attributes:
        key_id (str):
    """

    key_id: str

    def to_dict(self) -> dict[str, Any]:
        key_id = self.key_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "key_id": key_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        key_id = d.pop("key_id")

        key_id_body = cls(
            key_id=key_id,
        )

        return key_id_body
