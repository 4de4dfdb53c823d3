from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="TwinRevokeBody")


@_attrs_define
class TwinRevokeBody:
    """
    Attributes:
        twin_id (str):
        delete (bool | Unset): Also delete the adapter file from the store. Default: False.
    """

    twin_id: str
    delete: bool | Unset = False

    def to_dict(self) -> dict[str, Any]:
        twin_id = self.twin_id

        delete = self.delete

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "twin_id": twin_id,
            }
        )
        if delete is not UNSET:
            field_dict["delete"] = delete

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        twin_id = d.pop("twin_id")

        delete = d.pop("delete", UNSET)

        twin_revoke_body = cls(
            twin_id=twin_id,
            delete=delete,
        )

        return twin_revoke_body
