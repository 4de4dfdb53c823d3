from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="RegisterTwinJsonRegisterByKeyBody")


@_attrs_define
class RegisterTwinJsonRegisterByKeyBody:
    """`POST /v1/admin/twins` as JSON: a twin from an adapter already in the store.

    Attributes:
        twin_id (str | Unset):  Default: ''.
        display_name (str | Unset):  Default: ''.
        adapter_key (str | Unset):  Default: ''.
    """

    twin_id: str | Unset = ""
    display_name: str | Unset = ""
    adapter_key: str | Unset = ""

    def to_dict(self) -> dict[str, Any]:
        twin_id = self.twin_id

        display_name = self.display_name

        adapter_key = self.adapter_key

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if twin_id is not UNSET:
            field_dict["twin_id"] = twin_id
        if display_name is not UNSET:
            field_dict["display_name"] = display_name
        if adapter_key is not UNSET:
            field_dict["adapter_key"] = adapter_key

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        twin_id = d.pop("twin_id", UNSET)

        display_name = d.pop("display_name", UNSET)

        adapter_key = d.pop("adapter_key", UNSET)

        register_twin_json_register_by_key_body = cls(
            twin_id=twin_id,
            display_name=display_name,
            adapter_key=adapter_key,
        )

        return register_twin_json_register_by_key_body
