from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="EditSource")


@_attrs_define
class EditSource:
    """
    Attributes:
        generation_id (None | str | Unset): An earlier Atelier generation of this tenant.
        asset_id (None | str | Unset): An uploaded photo of the twin (kind source).
    """

    generation_id: None | str | Unset = UNSET
    asset_id: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        generation_id: None | str | Unset
        if isinstance(self.generation_id, Unset):
            generation_id = UNSET
        else:
            generation_id = self.generation_id

        asset_id: None | str | Unset
        if isinstance(self.asset_id, Unset):
            asset_id = UNSET
        else:
            asset_id = self.asset_id

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if generation_id is not UNSET:
            field_dict["generation_id"] = generation_id
        if asset_id is not UNSET:
            field_dict["asset_id"] = asset_id

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_generation_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        generation_id = _parse_generation_id(d.pop("generation_id", UNSET))

        def _parse_asset_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        asset_id = _parse_asset_id(d.pop("asset_id", UNSET))

        edit_source = cls(
            generation_id=generation_id,
            asset_id=asset_id,
        )

        return edit_source
