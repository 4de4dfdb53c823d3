from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.asset_out_kind import AssetOutKind
from ..types import UNSET, Unset

T = TypeVar("T", bound="AssetOut")


@_attrs_define
class AssetOut:
    """
    Attributes:
        asset_id (str): The sha256 of the image bytes.
        kind (AssetOutKind):
        format_ (str):
        media_type (str):
        width (int):
        height (int):
        bytes_ (int):
        created_at (str):
        source_url (None | str | Unset):
    """

    asset_id: str
    kind: AssetOutKind
    format_: str
    media_type: str
    width: int
    height: int
    bytes_: int
    created_at: str
    source_url: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        asset_id = self.asset_id

        kind = self.kind.value

        format_ = self.format_

        media_type = self.media_type

        width = self.width

        height = self.height

        bytes_ = self.bytes_

        created_at = self.created_at

        source_url: None | str | Unset
        if isinstance(self.source_url, Unset):
            source_url = UNSET
        else:
            source_url = self.source_url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "asset_id": asset_id,
                "kind": kind,
                "format": format_,
                "media_type": media_type,
                "width": width,
                "height": height,
                "bytes": bytes_,
                "created_at": created_at,
            }
        )
        if source_url is not UNSET:
            field_dict["source_url"] = source_url

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        asset_id = d.pop("asset_id")

        kind = AssetOutKind(d.pop("kind"))

        format_ = d.pop("format")

        media_type = d.pop("media_type")

        width = d.pop("width")

        height = d.pop("height")

        bytes_ = d.pop("bytes")

        created_at = d.pop("created_at")

        def _parse_source_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        source_url = _parse_source_url(d.pop("source_url", UNSET))

        asset_out = cls(
            asset_id=asset_id,
            kind=kind,
            format_=format_,
            media_type=media_type,
            width=width,
            height=height,
            bytes_=bytes_,
            created_at=created_at,
            source_url=source_url,
        )

        asset_out.additional_properties = d
        return asset_out

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
