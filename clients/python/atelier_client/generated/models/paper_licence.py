from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="PaperLicence")


@_attrs_define
class PaperLicence:
    """A consent record an operator entered for a paper contract, as a C2PA manifest names it
    (`com.atelier.licence`): opaque ids, never personal data.

        Attributes:
            basis (Literal['paper']):
            consent_id (int): The paper consent record's id.
            consent_version (int): The paper consent record's version.
    """

    basis: Literal["paper"]
    consent_id: int
    consent_version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        basis = self.basis

        consent_id = self.consent_id

        consent_version = self.consent_version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "basis": basis,
                "consent_id": consent_id,
                "consent_version": consent_version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        basis = cast(Literal["paper"], d.pop("basis"))
        if basis != "paper":
            raise ValueError(f"basis must match const 'paper', got '{basis}'")

        consent_id = d.pop("consent_id")

        consent_version = d.pop("consent_version")

        paper_licence = cls(
            basis=basis,
            consent_id=consent_id,
            consent_version=consent_version,
        )

        paper_licence.additional_properties = d
        return paper_licence

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
