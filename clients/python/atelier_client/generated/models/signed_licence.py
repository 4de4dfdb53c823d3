from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="SignedLicence")


@_attrs_define
class SignedLicence:
    """A licence the person accepted with their own key, as a C2PA manifest names it
    (`com.atelier.licence`): opaque ids, never personal data.

        Attributes:
            basis (Literal['signed']):
            licence_id (str): The signed licence's id.
            licence_sha256 (str): The sha256 of the licence's accepted terms: the hash the person's signature covers.
    """

    basis: Literal["signed"]
    licence_id: str
    licence_sha256: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        basis = self.basis

        licence_id = self.licence_id

        licence_sha256 = self.licence_sha256

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "basis": basis,
                "licence_id": licence_id,
                "licence_sha256": licence_sha256,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        basis = cast(Literal["signed"], d.pop("basis"))
        if basis != "signed":
            raise ValueError(f"basis must match const 'signed', got '{basis}'")

        licence_id = d.pop("licence_id")

        licence_sha256 = d.pop("licence_sha256")

        signed_licence = cls(
            basis=basis,
            licence_id=licence_id,
            licence_sha256=licence_sha256,
        )

        signed_licence.additional_properties = d
        return signed_licence

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
