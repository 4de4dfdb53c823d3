from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.consent_terms import ConsentTerms


T = TypeVar("T", bound="TenantTwin")


@_attrs_define
class TenantTwin:
    """
    Attributes:
        id (str):
        display_name (str):
        consent (ConsentTerms):
    """

    id: str
    display_name: str
    consent: ConsentTerms
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        display_name = self.display_name

        consent = self.consent.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "display_name": display_name,
                "consent": consent,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.consent_terms import ConsentTerms

        d = dict(src_dict)
        id = d.pop("id")

        display_name = d.pop("display_name")

        consent = ConsentTerms.from_dict(d.pop("consent"))

        tenant_twin = cls(
            id=id,
            display_name=display_name,
            consent=consent,
        )

        tenant_twin.additional_properties = d
        return tenant_twin

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
