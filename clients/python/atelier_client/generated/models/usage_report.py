from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.usage_report_counted import UsageReportCounted
    from ..models.usage_row import UsageRow


T = TypeVar("T", bound="UsageReport")


@_attrs_define
class UsageReport:
    """Images per day (or month), tenant, twin and use: generated, delivered and rejected,
    counted in the shared database over every gateway's records.

        Attributes:
            rows (list[UsageRow]):
            counted (UsageReportCounted | Unset): What each count counts, in words.
            decided_complete_from (None | str | Unset): The first UTC day whose delivered and rejected counts are complete:
                finished jobs are kept for the job retention (ATELIER_JOB_RETENTION_DAYS), so rows before it say null.
    """

    rows: list[UsageRow]
    counted: UsageReportCounted | Unset = UNSET
    decided_complete_from: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for rows_item_data in self.rows:
            rows_item = rows_item_data.to_dict()
            rows.append(rows_item)

        counted: dict[str, Any] | Unset = UNSET
        if not isinstance(self.counted, Unset):
            counted = self.counted.to_dict()

        decided_complete_from: None | str | Unset
        if isinstance(self.decided_complete_from, Unset):
            decided_complete_from = UNSET
        else:
            decided_complete_from = self.decided_complete_from

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "rows": rows,
            }
        )
        if counted is not UNSET:
            field_dict["counted"] = counted
        if decided_complete_from is not UNSET:
            field_dict["decided_complete_from"] = decided_complete_from

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.usage_report_counted import UsageReportCounted
        from ..models.usage_row import UsageRow

        d = dict(src_dict)
        rows = []
        _rows = d.pop("rows")
        for rows_item_data in _rows:
            rows_item = UsageRow.from_dict(rows_item_data)

            rows.append(rows_item)

        _counted = d.pop("counted", UNSET)
        counted: UsageReportCounted | Unset
        if isinstance(_counted, Unset):
            counted = UNSET
        else:
            counted = UsageReportCounted.from_dict(_counted)

        def _parse_decided_complete_from(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        decided_complete_from = _parse_decided_complete_from(d.pop("decided_complete_from", UNSET))

        usage_report = cls(
            rows=rows,
            counted=counted,
            decided_complete_from=decided_complete_from,
        )

        usage_report.additional_properties = d
        return usage_report

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
