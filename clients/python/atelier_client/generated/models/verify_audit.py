from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="VerifyAudit")


@_attrs_define
class VerifyAudit:
    """
    Attributes:
        generation_id (str):
        tenant (str):
        twin_id (None | str):
        image_index (int):
        ts (str):
        outcome (str):
    """

    generation_id: str
    tenant: str
    twin_id: None | str
    image_index: int
    ts: str
    outcome: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        generation_id = self.generation_id

        tenant = self.tenant

        twin_id: None | str
        twin_id = self.twin_id

        image_index = self.image_index

        ts = self.ts

        outcome = self.outcome

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "generation_id": generation_id,
                "tenant": tenant,
                "twin_id": twin_id,
                "image_index": image_index,
                "ts": ts,
                "outcome": outcome,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        generation_id = d.pop("generation_id")

        tenant = d.pop("tenant")

        def _parse_twin_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        twin_id = _parse_twin_id(d.pop("twin_id"))

        image_index = d.pop("image_index")

        ts = d.pop("ts")

        outcome = d.pop("outcome")

        verify_audit = cls(
            generation_id=generation_id,
            tenant=tenant,
            twin_id=twin_id,
            image_index=image_index,
            ts=ts,
            outcome=outcome,
        )

        verify_audit.additional_properties = d
        return verify_audit

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
