from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="PersonBody")


@_attrs_define
class PersonBody:
    """
    Attributes:
        person_id (str):
        display_name (str):
        representative (None | str | Unset): An agency or counsel acting for them.
        minor (bool | Unset):  Default: False.
        guardian (None | str | Unset):
        estate_contact (None | str | Unset):
    """

    person_id: str
    display_name: str
    representative: None | str | Unset = UNSET
    minor: bool | Unset = False
    guardian: None | str | Unset = UNSET
    estate_contact: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        person_id = self.person_id

        display_name = self.display_name

        representative: None | str | Unset
        if isinstance(self.representative, Unset):
            representative = UNSET
        else:
            representative = self.representative

        minor = self.minor

        guardian: None | str | Unset
        if isinstance(self.guardian, Unset):
            guardian = UNSET
        else:
            guardian = self.guardian

        estate_contact: None | str | Unset
        if isinstance(self.estate_contact, Unset):
            estate_contact = UNSET
        else:
            estate_contact = self.estate_contact

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "person_id": person_id,
                "display_name": display_name,
            }
        )
        if representative is not UNSET:
            field_dict["representative"] = representative
        if minor is not UNSET:
            field_dict["minor"] = minor
        if guardian is not UNSET:
            field_dict["guardian"] = guardian
        if estate_contact is not UNSET:
            field_dict["estate_contact"] = estate_contact

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        person_id = d.pop("person_id")

        display_name = d.pop("display_name")

        def _parse_representative(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        representative = _parse_representative(d.pop("representative", UNSET))

        minor = d.pop("minor", UNSET)

        def _parse_guardian(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        guardian = _parse_guardian(d.pop("guardian", UNSET))

        def _parse_estate_contact(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        estate_contact = _parse_estate_contact(d.pop("estate_contact", UNSET))

        person_body = cls(
            person_id=person_id,
            display_name=display_name,
            representative=representative,
            minor=minor,
            guardian=guardian,
            estate_contact=estate_contact,
        )

        return person_body
