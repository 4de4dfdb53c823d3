from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.audit_records_records_item import AuditRecordsRecordsItem


T = TypeVar("T", bound="AuditRecords")


@_attrs_define
class AuditRecords:
    """A generation's audit records in sequence order (each a JSON object with its chain hash).

    Attributes:
        generation_id (str):
        records (list[AuditRecordsRecordsItem]):
    """

    generation_id: str
    records: list[AuditRecordsRecordsItem]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        generation_id = self.generation_id

        records = []
        for records_item_data in self.records:
            records_item = records_item_data.to_dict()
            records.append(records_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "generation_id": generation_id,
                "records": records,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.audit_records_records_item import AuditRecordsRecordsItem

        d = dict(src_dict)
        generation_id = d.pop("generation_id")

        records = []
        _records = d.pop("records")
        for records_item_data in _records:
            records_item = AuditRecordsRecordsItem.from_dict(records_item_data)

            records.append(records_item)

        audit_records = cls(
            generation_id=generation_id,
            records=records,
        )

        audit_records.additional_properties = d
        return audit_records

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
