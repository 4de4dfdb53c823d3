from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="LicenceRequestBody")


@_attrs_define
class LicenceRequestBody:
    """What a brand asks the person for. The terms never change once requested.

    Attributes:
        twin_id (str):
        purpose (str):
        uses (list[str]):
        rate_per_image (str): The amount paid to the person per image, a decimal string.
        currency (str):
        territories (list[str] | Unset): ISO 3166-1 alpha-2 codes; empty means worldwide.
        valid_from (datetime.datetime | None | Unset): Default: now.
        valid_until (datetime.datetime | None | Unset):
        excluded_categories (list[str] | Unset):
        included_categories (list[str] | Unset):
    """

    twin_id: str
    purpose: str
    uses: list[str]
    rate_per_image: str
    currency: str
    territories: list[str] | Unset = UNSET
    valid_from: datetime.datetime | None | Unset = UNSET
    valid_until: datetime.datetime | None | Unset = UNSET
    excluded_categories: list[str] | Unset = UNSET
    included_categories: list[str] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        twin_id = self.twin_id

        purpose = self.purpose

        uses = self.uses

        rate_per_image = self.rate_per_image

        currency = self.currency

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

        excluded_categories: list[str] | Unset = UNSET
        if not isinstance(self.excluded_categories, Unset):
            excluded_categories = self.excluded_categories

        included_categories: list[str] | Unset = UNSET
        if not isinstance(self.included_categories, Unset):
            included_categories = self.included_categories

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "twin_id": twin_id,
                "purpose": purpose,
                "uses": uses,
                "rate_per_image": rate_per_image,
                "currency": currency,
            }
        )
        if territories is not UNSET:
            field_dict["territories"] = territories
        if valid_from is not UNSET:
            field_dict["valid_from"] = valid_from
        if valid_until is not UNSET:
            field_dict["valid_until"] = valid_until
        if excluded_categories is not UNSET:
            field_dict["excluded_categories"] = excluded_categories
        if included_categories is not UNSET:
            field_dict["included_categories"] = included_categories

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        twin_id = d.pop("twin_id")

        purpose = d.pop("purpose")

        uses = cast(list[str], d.pop("uses"))

        rate_per_image = d.pop("rate_per_image")

        currency = d.pop("currency")

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

        excluded_categories = cast(list[str], d.pop("excluded_categories", UNSET))

        included_categories = cast(list[str], d.pop("included_categories", UNSET))

        licence_request_body = cls(
            twin_id=twin_id,
            purpose=purpose,
            uses=uses,
            rate_per_image=rate_per_image,
            currency=currency,
            territories=territories,
            valid_from=valid_from,
            valid_until=valid_until,
            excluded_categories=excluded_categories,
            included_categories=included_categories,
        )

        return licence_request_body
