from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ConsentBody")


@_attrs_define
class ConsentBody:
    """A new consent version for a twin; it is signed (immutable) when recorded.

    Attributes:
        twin_id (str):
        tenants (list[str]):
        uses (list[str]):
        recorded_by (str):
        territories (list[str] | Unset): ISO 3166-1 alpha-2 codes; empty means worldwide.
        valid_from (datetime.datetime | None | Unset): Default: now.
        valid_until (datetime.datetime | None | Unset):
        pay_rate_ref (None | str | Unset):
        excluded_categories (list[str] | Unset):
        included_categories (list[str] | Unset):
        deny_terms (list[str] | Unset):
        review_unverified_garments (bool | Unset): Hold catalogue items whose garment images cannot be verified (no
            garment classifier runs) for a person's review before delivery; synchronous generations and edits with such
            garments are refused (403 garment_review_required). Default: False.
    """

    twin_id: str
    tenants: list[str]
    uses: list[str]
    recorded_by: str
    territories: list[str] | Unset = UNSET
    valid_from: datetime.datetime | None | Unset = UNSET
    valid_until: datetime.datetime | None | Unset = UNSET
    pay_rate_ref: None | str | Unset = UNSET
    excluded_categories: list[str] | Unset = UNSET
    included_categories: list[str] | Unset = UNSET
    deny_terms: list[str] | Unset = UNSET
    review_unverified_garments: bool | Unset = False

    def to_dict(self) -> dict[str, Any]:
        twin_id = self.twin_id

        tenants = self.tenants

        uses = self.uses

        recorded_by = self.recorded_by

        territories: list[str] | Unset = UNSET
        if not isinstance(self.territories, Unset):
            territories = self.territories

        valid_from: None | str | Unset
        if isinstance(self.valid_from, Unset):
            valid_from = UNSET
        elif isinstance(self.valid_from, datetime.datetime):
            valid_from = self.valid_from.isoformat()
        else:
            valid_from = self.valid_from

        valid_until: None | str | Unset
        if isinstance(self.valid_until, Unset):
            valid_until = UNSET
        elif isinstance(self.valid_until, datetime.datetime):
            valid_until = self.valid_until.isoformat()
        else:
            valid_until = self.valid_until

        pay_rate_ref: None | str | Unset
        if isinstance(self.pay_rate_ref, Unset):
            pay_rate_ref = UNSET
        else:
            pay_rate_ref = self.pay_rate_ref

        excluded_categories: list[str] | Unset = UNSET
        if not isinstance(self.excluded_categories, Unset):
            excluded_categories = self.excluded_categories

        included_categories: list[str] | Unset = UNSET
        if not isinstance(self.included_categories, Unset):
            included_categories = self.included_categories

        deny_terms: list[str] | Unset = UNSET
        if not isinstance(self.deny_terms, Unset):
            deny_terms = self.deny_terms

        review_unverified_garments = self.review_unverified_garments

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "twin_id": twin_id,
                "tenants": tenants,
                "uses": uses,
                "recorded_by": recorded_by,
            }
        )
        if territories is not UNSET:
            field_dict["territories"] = territories
        if valid_from is not UNSET:
            field_dict["valid_from"] = valid_from
        if valid_until is not UNSET:
            field_dict["valid_until"] = valid_until
        if pay_rate_ref is not UNSET:
            field_dict["pay_rate_ref"] = pay_rate_ref
        if excluded_categories is not UNSET:
            field_dict["excluded_categories"] = excluded_categories
        if included_categories is not UNSET:
            field_dict["included_categories"] = included_categories
        if deny_terms is not UNSET:
            field_dict["deny_terms"] = deny_terms
        if review_unverified_garments is not UNSET:
            field_dict["review_unverified_garments"] = review_unverified_garments

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        twin_id = d.pop("twin_id")

        tenants = cast(list[str], d.pop("tenants"))

        uses = cast(list[str], d.pop("uses"))

        recorded_by = d.pop("recorded_by")

        territories = cast(list[str], d.pop("territories", UNSET))

        def _parse_valid_from(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                valid_from_type_0 = datetime.datetime.fromisoformat(data)

                return valid_from_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        valid_from = _parse_valid_from(d.pop("valid_from", UNSET))

        def _parse_valid_until(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                valid_until_type_0 = datetime.datetime.fromisoformat(data)

                return valid_until_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        valid_until = _parse_valid_until(d.pop("valid_until", UNSET))

        def _parse_pay_rate_ref(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        pay_rate_ref = _parse_pay_rate_ref(d.pop("pay_rate_ref", UNSET))

        excluded_categories = cast(list[str], d.pop("excluded_categories", UNSET))

        included_categories = cast(list[str], d.pop("included_categories", UNSET))

        deny_terms = cast(list[str], d.pop("deny_terms", UNSET))

        review_unverified_garments = d.pop("review_unverified_garments", UNSET)

        consent_body = cls(
            twin_id=twin_id,
            tenants=tenants,
            uses=uses,
            recorded_by=recorded_by,
            territories=territories,
            valid_from=valid_from,
            valid_until=valid_until,
            pay_rate_ref=pay_rate_ref,
            excluded_categories=excluded_categories,
            included_categories=included_categories,
            deny_terms=deny_terms,
            review_unverified_garments=review_unverified_garments,
        )

        return consent_body
