from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.person_out_signing_keys import PersonOutSigningKeys


T = TypeVar("T", bound="PersonOut")


@_attrs_define
class PersonOut:
    """
    Attributes:
        person_id (str):
        display_name (str):
        representative (None | str):
        minor (bool):
        guardian (None | str):
        estate_contact (None | str):
        signing_keys (PersonOutSigningKeys): role -> the registered public key (base64).
        twin_ids (list[str]):
    """

    person_id: str
    display_name: str
    representative: None | str
    minor: bool
    guardian: None | str
    estate_contact: None | str
    signing_keys: PersonOutSigningKeys
    twin_ids: list[str]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        person_id = self.person_id

        display_name = self.display_name

        representative: None | str
        representative = self.representative

        minor = self.minor

        guardian: None | str
        guardian = self.guardian

        estate_contact: None | str
        estate_contact = self.estate_contact

        signing_keys = self.signing_keys.to_dict()

        twin_ids = self.twin_ids

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "person_id": person_id,
                "display_name": display_name,
                "representative": representative,
                "minor": minor,
                "guardian": guardian,
                "estate_contact": estate_contact,
                "signing_keys": signing_keys,
                "twin_ids": twin_ids,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.person_out_signing_keys import PersonOutSigningKeys

        d = dict(src_dict)
        person_id = d.pop("person_id")

        display_name = d.pop("display_name")

        def _parse_representative(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        representative = _parse_representative(d.pop("representative"))

        minor = d.pop("minor")

        def _parse_guardian(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        guardian = _parse_guardian(d.pop("guardian"))

        def _parse_estate_contact(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        estate_contact = _parse_estate_contact(d.pop("estate_contact"))

        signing_keys = PersonOutSigningKeys.from_dict(d.pop("signing_keys"))

        twin_ids = cast(list[str], d.pop("twin_ids"))

        person_out = cls(
            person_id=person_id,
            display_name=display_name,
            representative=representative,
            minor=minor,
            guardian=guardian,
            estate_contact=estate_contact,
            signing_keys=signing_keys,
            twin_ids=twin_ids,
        )

        person_out.additional_properties = d
        return person_out

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
