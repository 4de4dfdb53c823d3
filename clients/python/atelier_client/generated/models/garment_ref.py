from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.garment_ref_category import GarmentRefCategory
from ..types import UNSET, Unset

T = TypeVar("T", bound="GarmentRef")


@_attrs_define
class GarmentRef:
    """The brand's own garment image (an asset id, or an https URL fetched through the SSRF guard).

    Attributes:
        category (GarmentRefCategory):
        asset_id (None | str | Unset): A garment asset of this tenant.
        url (None | str | Unset): An https URL of the garment image.
        strength (float | Unset): How strongly the garment image steers the picture. Default: 0.8.
    """

    category: GarmentRefCategory
    asset_id: None | str | Unset = UNSET
    url: None | str | Unset = UNSET
    strength: float | Unset = 0.8

    def to_dict(self) -> dict[str, Any]:
        category = self.category.value

        asset_id: None | str | Unset
        if isinstance(self.asset_id, Unset):
            asset_id = UNSET
        else:
            asset_id = self.asset_id

        url: None | str | Unset
        if isinstance(self.url, Unset):
            url = UNSET
        else:
            url = self.url

        strength = self.strength

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "category": category,
            }
        )
        if asset_id is not UNSET:
            field_dict["asset_id"] = asset_id
        if url is not UNSET:
            field_dict["url"] = url
        if strength is not UNSET:
            field_dict["strength"] = strength

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        category = GarmentRefCategory(d.pop("category"))

        def _parse_asset_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        asset_id = _parse_asset_id(d.pop("asset_id", UNSET))

        def _parse_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        url = _parse_url(d.pop("url", UNSET))

        strength = d.pop("strength", UNSET)

        garment_ref = cls(
            category=category,
            asset_id=asset_id,
            url=url,
            strength=strength,
        )

        return garment_ref
