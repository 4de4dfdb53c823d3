from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.image_out_format import ImageOutFormat
from ..types import UNSET, Unset

T = TypeVar("T", bound="ImageOut")


@_attrs_define
class ImageOut:
    """
    Attributes:
        index (int):
        format_ (ImageOutFormat):
        width (int):
        height (int):
        seed (int):
        sha256 (str):
        watermark_id (None | str | Unset):
        data_base64 (None | str | Unset):
        url (None | str | Unset):
    """

    index: int
    format_: ImageOutFormat
    width: int
    height: int
    seed: int
    sha256: str
    watermark_id: None | str | Unset = UNSET
    data_base64: None | str | Unset = UNSET
    url: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        index = self.index

        format_ = self.format_.value

        width = self.width

        height = self.height

        seed = self.seed

        sha256 = self.sha256

        watermark_id: None | str | Unset
        if isinstance(self.watermark_id, Unset):
            watermark_id = UNSET
        else:
            watermark_id = self.watermark_id

        data_base64: None | str | Unset
        if isinstance(self.data_base64, Unset):
            data_base64 = UNSET
        else:
            data_base64 = self.data_base64

        url: None | str | Unset
        if isinstance(self.url, Unset):
            url = UNSET
        else:
            url = self.url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "index": index,
                "format": format_,
                "width": width,
                "height": height,
                "seed": seed,
                "sha256": sha256,
            }
        )
        if watermark_id is not UNSET:
            field_dict["watermark_id"] = watermark_id
        if data_base64 is not UNSET:
            field_dict["data_base64"] = data_base64
        if url is not UNSET:
            field_dict["url"] = url

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        index = d.pop("index")

        format_ = ImageOutFormat(d.pop("format"))

        width = d.pop("width")

        height = d.pop("height")

        seed = d.pop("seed")

        sha256 = d.pop("sha256")

        def _parse_watermark_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        watermark_id = _parse_watermark_id(d.pop("watermark_id", UNSET))

        def _parse_data_base64(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        data_base64 = _parse_data_base64(d.pop("data_base64", UNSET))

        def _parse_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        url = _parse_url(d.pop("url", UNSET))

        image_out = cls(
            index=index,
            format_=format_,
            width=width,
            height=height,
            seed=seed,
            sha256=sha256,
            watermark_id=watermark_id,
            data_base64=data_base64,
            url=url,
        )

        image_out.additional_properties = d
        return image_out

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
