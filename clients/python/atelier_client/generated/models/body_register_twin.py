from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from .. import types
from ..types import UNSET, Unset

T = TypeVar("T", bound="BodyRegisterTwin")


@_attrs_define
class BodyRegisterTwin:
    """
    Attributes:
        twin_id (str | Unset):  Default: ''.
        display_name (str | Unset):  Default: ''.
        adapter_key (str | Unset):  Default: ''.
        adapter (None | str | Unset):
        same_person_as (str | Unset):  Default: ''.
    """

    twin_id: str | Unset = ""
    display_name: str | Unset = ""
    adapter_key: str | Unset = ""
    adapter: None | str | Unset = UNSET
    same_person_as: str | Unset = ""
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        twin_id = self.twin_id

        display_name = self.display_name

        adapter_key = self.adapter_key

        adapter: None | str | Unset
        if isinstance(self.adapter, Unset):
            adapter = UNSET
        else:
            adapter = self.adapter

        same_person_as = self.same_person_as

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if twin_id is not UNSET:
            field_dict["twin_id"] = twin_id
        if display_name is not UNSET:
            field_dict["display_name"] = display_name
        if adapter_key is not UNSET:
            field_dict["adapter_key"] = adapter_key
        if adapter is not UNSET:
            field_dict["adapter"] = adapter
        if same_person_as is not UNSET:
            field_dict["same_person_as"] = same_person_as

        return field_dict

    def to_multipart(self) -> types.RequestFiles:
        files: types.RequestFiles = []

        if not isinstance(self.twin_id, Unset):
            files.append(("twin_id", (None, str(self.twin_id).encode(), "text/plain")))

        if not isinstance(self.display_name, Unset):
            files.append(("display_name", (None, str(self.display_name).encode(), "text/plain")))

        if not isinstance(self.adapter_key, Unset):
            files.append(("adapter_key", (None, str(self.adapter_key).encode(), "text/plain")))

        if not isinstance(self.adapter, Unset):
            if isinstance(self.adapter, str):
                files.append(("adapter", (None, str(self.adapter).encode(), "text/plain")))
            else:
                files.append(("adapter", (None, str(self.adapter).encode(), "text/plain")))

        if not isinstance(self.same_person_as, Unset):
            files.append(("same_person_as", (None, str(self.same_person_as).encode(), "text/plain")))

        for prop_name, prop in self.additional_properties.items():
            files.append((prop_name, (None, str(prop).encode(), "text/plain")))

        return files

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        twin_id = d.pop("twin_id", UNSET)

        display_name = d.pop("display_name", UNSET)

        adapter_key = d.pop("adapter_key", UNSET)

        def _parse_adapter(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        adapter = _parse_adapter(d.pop("adapter", UNSET))

        same_person_as = d.pop("same_person_as", UNSET)

        body_register_twin = cls(
            twin_id=twin_id,
            display_name=display_name,
            adapter_key=adapter_key,
            adapter=adapter,
            same_person_as=same_person_as,
        )

        body_register_twin.additional_properties = d
        return body_register_twin

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
