from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.consent_terms_state import ConsentTermsState
from ..types import UNSET, Unset

T = TypeVar("T", bound="ConsentTerms")


@_attrs_define
class ConsentTerms:
    """
    Attributes:
        state (ConsentTermsState):
        version (int | None): The paper consent record's version (null under a signed licence).
        uses (list[str]):
        territories (list[str]):
        valid_from (str):
        valid_until (None | str):
        excluded_categories (list[str]):
        included_categories (list[str]):
        licence_id (None | str | Unset): The licence the person signed, when that is what allows it.
        review_unverified_garments (bool | Unset):  Default: False.
    """

    state: ConsentTermsState
    version: int | None
    uses: list[str]
    territories: list[str]
    valid_from: str
    valid_until: None | str
    excluded_categories: list[str]
    included_categories: list[str]
    licence_id: None | str | Unset = UNSET
    review_unverified_garments: bool | Unset = False
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        state = self.state.value

        version: int | None
        version = self.version

        uses = self.uses

        territories = self.territories

        valid_from = self.valid_from

        valid_until: None | str
        valid_until = self.valid_until

        excluded_categories = self.excluded_categories

        included_categories = self.included_categories

        licence_id: None | str | Unset
        if isinstance(self.licence_id, Unset):
            licence_id = UNSET
        else:
            licence_id = self.licence_id

        review_unverified_garments = self.review_unverified_garments

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "state": state,
                "version": version,
                "uses": uses,
                "territories": territories,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "excluded_categories": excluded_categories,
                "included_categories": included_categories,
            }
        )
        if licence_id is not UNSET:
            field_dict["licence_id"] = licence_id
        if review_unverified_garments is not UNSET:
            field_dict["review_unverified_garments"] = review_unverified_garments

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        state = ConsentTermsState(d.pop("state"))

        def _parse_version(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        version = _parse_version(d.pop("version"))

        uses = cast(list[str], d.pop("uses"))

        territories = cast(list[str], d.pop("territories"))

        valid_from = d.pop("valid_from")

        def _parse_valid_until(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        valid_until = _parse_valid_until(d.pop("valid_until"))

        excluded_categories = cast(list[str], d.pop("excluded_categories"))

        included_categories = cast(list[str], d.pop("included_categories"))

        def _parse_licence_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        licence_id = _parse_licence_id(d.pop("licence_id", UNSET))

        review_unverified_garments = d.pop("review_unverified_garments", UNSET)

        consent_terms = cls(
            state=state,
            version=version,
            uses=uses,
            territories=territories,
            valid_from=valid_from,
            valid_until=valid_until,
            excluded_categories=excluded_categories,
            included_categories=included_categories,
            licence_id=licence_id,
            review_unverified_garments=review_unverified_garments,
        )

        consent_terms.additional_properties = d
        return consent_terms

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
