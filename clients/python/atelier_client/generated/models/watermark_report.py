from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="WatermarkReport")


@_attrs_define
class WatermarkReport:
    """
    Attributes:
        found (bool):
        watermark_id (None | str):
        bit_errors_corrected (int | None):
    """

    found: bool
    watermark_id: None | str
    bit_errors_corrected: int | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        found = self.found

        watermark_id: None | str
        watermark_id = self.watermark_id

        bit_errors_corrected: int | None
        bit_errors_corrected = self.bit_errors_corrected

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "found": found,
                "watermark_id": watermark_id,
                "bit_errors_corrected": bit_errors_corrected,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        found = d.pop("found")

        def _parse_watermark_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        watermark_id = _parse_watermark_id(d.pop("watermark_id"))

        def _parse_bit_errors_corrected(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        bit_errors_corrected = _parse_bit_errors_corrected(d.pop("bit_errors_corrected"))

        watermark_report = cls(
            found=found,
            watermark_id=watermark_id,
            bit_errors_corrected=bit_errors_corrected,
        )

        watermark_report.additional_properties = d
        return watermark_report

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
