from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_image_format import JobImageFormat
from ..types import UNSET, Unset

T = TypeVar("T", bound="JobImage")


@_attrs_define
class JobImage:
    """One image of a job item: its URL (presigned S3, or `/v1/jobs/image` for inline delivery).

    Attributes:
        n (int):
        format_ (JobImageFormat):
        width (int):
        height (int):
        seed (int):
        sha256 (str):
        watermark_id (None | str | Unset):
        url (None | str | Unset):
        sidecar_url (None | str | Unset): S3 delivery: the sidecar JSON's presigned URL.
        key (None | str | Unset): S3 delivery: the image's object key.
        sidecar_key (None | str | Unset):
    """

    n: int
    format_: JobImageFormat
    width: int
    height: int
    seed: int
    sha256: str
    watermark_id: None | str | Unset = UNSET
    url: None | str | Unset = UNSET
    sidecar_url: None | str | Unset = UNSET
    key: None | str | Unset = UNSET
    sidecar_key: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        n = self.n

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

        url: None | str | Unset
        if isinstance(self.url, Unset):
            url = UNSET
        else:
            url = self.url

        sidecar_url: None | str | Unset
        if isinstance(self.sidecar_url, Unset):
            sidecar_url = UNSET
        else:
            sidecar_url = self.sidecar_url

        key: None | str | Unset
        if isinstance(self.key, Unset):
            key = UNSET
        else:
            key = self.key

        sidecar_key: None | str | Unset
        if isinstance(self.sidecar_key, Unset):
            sidecar_key = UNSET
        else:
            sidecar_key = self.sidecar_key

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "n": n,
                "format": format_,
                "width": width,
                "height": height,
                "seed": seed,
                "sha256": sha256,
            }
        )
        if watermark_id is not UNSET:
            field_dict["watermark_id"] = watermark_id
        if url is not UNSET:
            field_dict["url"] = url
        if sidecar_url is not UNSET:
            field_dict["sidecar_url"] = sidecar_url
        if key is not UNSET:
            field_dict["key"] = key
        if sidecar_key is not UNSET:
            field_dict["sidecar_key"] = sidecar_key

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        n = d.pop("n")

        format_ = JobImageFormat(d.pop("format"))

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

        def _parse_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        url = _parse_url(d.pop("url", UNSET))

        def _parse_sidecar_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sidecar_url = _parse_sidecar_url(d.pop("sidecar_url", UNSET))

        def _parse_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        key = _parse_key(d.pop("key", UNSET))

        def _parse_sidecar_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sidecar_key = _parse_sidecar_key(d.pop("sidecar_key", UNSET))

        job_image = cls(
            n=n,
            format_=format_,
            width=width,
            height=height,
            seed=seed,
            sha256=sha256,
            watermark_id=watermark_id,
            url=url,
            sidecar_url=sidecar_url,
            key=key,
            sidecar_key=sidecar_key,
        )

        job_image.additional_properties = d
        return job_image

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
