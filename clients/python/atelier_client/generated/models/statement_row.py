from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="StatementRow")


@_attrs_define
class StatementRow:
    """
    Attributes:
        twin_id (str):
        brand (str): The tenant that used the twin.
        use (None | str): The licensed use the generations named (e.g. `ecommerce`).
        consent_version (int | None): The version of the paper consent record in force when each generation was admitted
            (null under a signed licence).
        generations (int):
        images (int):
        licence_id (None | str | Unset): The signed licence the generations were admitted under.
        rate_per_image (None | str | Unset): The licence's accepted rate (decimal), if signed.
        currency (None | str | Unset):
        amount (None | str | Unset): images x rate_per_image (decimal), if signed.
    """

    twin_id: str
    brand: str
    use: None | str
    consent_version: int | None
    generations: int
    images: int
    licence_id: None | str | Unset = UNSET
    rate_per_image: None | str | Unset = UNSET
    currency: None | str | Unset = UNSET
    amount: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        twin_id = self.twin_id

        brand = self.brand

        use: None | str
        use = self.use

        consent_version: int | None
        consent_version = self.consent_version

        generations = self.generations

        images = self.images

        licence_id: None | str | Unset
        if isinstance(self.licence_id, Unset):
            licence_id = UNSET
        else:
            licence_id = self.licence_id

        rate_per_image: None | str | Unset
        if isinstance(self.rate_per_image, Unset):
            rate_per_image = UNSET
        else:
            rate_per_image = self.rate_per_image

        currency: None | str | Unset
        if isinstance(self.currency, Unset):
            currency = UNSET
        else:
            currency = self.currency

        amount: None | str | Unset
        if isinstance(self.amount, Unset):
            amount = UNSET
        else:
            amount = self.amount

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "twin_id": twin_id,
                "brand": brand,
                "use": use,
                "consent_version": consent_version,
                "generations": generations,
                "images": images,
            }
        )
        if licence_id is not UNSET:
            field_dict["licence_id"] = licence_id
        if rate_per_image is not UNSET:
            field_dict["rate_per_image"] = rate_per_image
        if currency is not UNSET:
            field_dict["currency"] = currency
        if amount is not UNSET:
            field_dict["amount"] = amount

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        twin_id = d.pop("twin_id")

        brand = d.pop("brand")

        def _parse_use(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        use = _parse_use(d.pop("use"))

        def _parse_consent_version(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        consent_version = _parse_consent_version(d.pop("consent_version"))

        generations = d.pop("generations")

        images = d.pop("images")

        def _parse_licence_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        licence_id = _parse_licence_id(d.pop("licence_id", UNSET))

        def _parse_rate_per_image(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        rate_per_image = _parse_rate_per_image(d.pop("rate_per_image", UNSET))

        def _parse_currency(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        currency = _parse_currency(d.pop("currency", UNSET))

        def _parse_amount(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        amount = _parse_amount(d.pop("amount", UNSET))

        statement_row = cls(
            twin_id=twin_id,
            brand=brand,
            use=use,
            consent_version=consent_version,
            generations=generations,
            images=images,
            licence_id=licence_id,
            rate_per_image=rate_per_image,
            currency=currency,
            amount=amount,
        )

        statement_row.additional_properties = d
        return statement_row

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
