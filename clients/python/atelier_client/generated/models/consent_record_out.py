from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ConsentRecordOut")


@_attrs_define
class ConsentRecordOut:
    """
    Attributes:
        id (int):
        twin_id (str):
        version (int):
        tenants (list[str]):
        uses (list[str]):
        territories (list[str]):
        valid_from (str):
        valid_until (None | str):
        pay_rate_ref (None | str):
        excluded_categories (list[str]):
        included_categories (list[str]):
        deny_terms (list[str]):
        recorded_by (str):
        signed_at (None | str):
        review_unverified_garments (bool | Unset):  Default: False.
    """

    id: int
    twin_id: str
    version: int
    tenants: list[str]
    uses: list[str]
    territories: list[str]
    valid_from: str
    valid_until: None | str
    pay_rate_ref: None | str
    excluded_categories: list[str]
    included_categories: list[str]
    deny_terms: list[str]
    recorded_by: str
    signed_at: None | str
    review_unverified_garments: bool | Unset = False
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        twin_id = self.twin_id

        version = self.version

        tenants = self.tenants

        uses = self.uses

        territories = self.territories

        valid_from = self.valid_from

        valid_until: None | str
        valid_until = self.valid_until

        pay_rate_ref: None | str
        pay_rate_ref = self.pay_rate_ref

        excluded_categories = self.excluded_categories

        included_categories = self.included_categories

        deny_terms = self.deny_terms

        recorded_by = self.recorded_by

        signed_at: None | str
        signed_at = self.signed_at

        review_unverified_garments = self.review_unverified_garments

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "twin_id": twin_id,
                "version": version,
                "tenants": tenants,
                "uses": uses,
                "territories": territories,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "pay_rate_ref": pay_rate_ref,
                "excluded_categories": excluded_categories,
                "included_categories": included_categories,
                "deny_terms": deny_terms,
                "recorded_by": recorded_by,
                "signed_at": signed_at,
            }
        )
        if review_unverified_garments is not UNSET:
            field_dict["review_unverified_garments"] = review_unverified_garments

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        twin_id = d.pop("twin_id")

        version = d.pop("version")

        tenants = cast(list[str], d.pop("tenants"))

        uses = cast(list[str], d.pop("uses"))

        territories = cast(list[str], d.pop("territories"))

        valid_from = d.pop("valid_from")

        def _parse_valid_until(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        valid_until = _parse_valid_until(d.pop("valid_until"))

        def _parse_pay_rate_ref(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        pay_rate_ref = _parse_pay_rate_ref(d.pop("pay_rate_ref"))

        excluded_categories = cast(list[str], d.pop("excluded_categories"))

        included_categories = cast(list[str], d.pop("included_categories"))

        deny_terms = cast(list[str], d.pop("deny_terms"))

        recorded_by = d.pop("recorded_by")

        def _parse_signed_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        signed_at = _parse_signed_at(d.pop("signed_at"))

        review_unverified_garments = d.pop("review_unverified_garments", UNSET)

        consent_record_out = cls(
            id=id,
            twin_id=twin_id,
            version=version,
            tenants=tenants,
            uses=uses,
            territories=territories,
            valid_from=valid_from,
            valid_until=valid_until,
            pay_rate_ref=pay_rate_ref,
            excluded_categories=excluded_categories,
            included_categories=included_categories,
            deny_terms=deny_terms,
            recorded_by=recorded_by,
            signed_at=signed_at,
            review_unverified_garments=review_unverified_garments,
        )

        consent_record_out.additional_properties = d
        return consent_record_out

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
