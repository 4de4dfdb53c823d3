from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="LicenceIdBody")


@_attrs_define
class LicenceIdBody:
    """
    Attributes:
        licence_id (str):
    """

    licence_id: str

    def to_dict(self) -> dict[str, Any]:
        licence_id = self.licence_id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "licence_id": licence_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        licence_id = d.pop("licence_id")

        licence_id_body = cls(
            licence_id=licence_id,
        )

        return licence_id_body
