from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="UsageRow")


@_attrs_define
class UsageRow:
    """
    Attributes:
        day (str): The UTC day the images were generated, YYYY-MM-DD, or YYYY-MM with `period=month`.
        tenant (str): The brand (tenant) that made them.
        twin_id (None | str): The twin; null for the base model.
        generations (int): Generations answered with images.
        images (int): Images generated: every image of those generations, whatever became of it.
        use (None | str | Unset): The use the generations declared (e.g. `ecommerce`, `social_ads`).
        delivered (int | None | Unset): Of those, images of catalogue job items delivered to the job's target (in a
            review job, once approved). Null where the job tables no longer hold the day (see `decided_complete_from`).
        rejected (int | None | Unset): Of those, images of catalogue job items the reviewer rejected (never delivered).
            Null like `delivered`.
    """

    day: str
    tenant: str
    twin_id: None | str
    generations: int
    images: int
    use: None | str | Unset = UNSET
    delivered: int | None | Unset = UNSET
    rejected: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        day = self.day

        tenant = self.tenant

        twin_id: None | str
        twin_id = self.twin_id

        generations = self.generations

        images = self.images

        use: None | str | Unset
        if isinstance(self.use, Unset):
            use = UNSET
        else:
            use = self.use

        delivered: int | None | Unset
        if isinstance(self.delivered, Unset):
            delivered = UNSET
        else:
            delivered = self.delivered

        rejected: int | None | Unset
        if isinstance(self.rejected, Unset):
            rejected = UNSET
        else:
            rejected = self.rejected

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "day": day,
                "tenant": tenant,
                "twin_id": twin_id,
                "generations": generations,
                "images": images,
            }
        )
        if use is not UNSET:
            field_dict["use"] = use
        if delivered is not UNSET:
            field_dict["delivered"] = delivered
        if rejected is not UNSET:
            field_dict["rejected"] = rejected

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        day = d.pop("day")

        tenant = d.pop("tenant")

        def _parse_twin_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        twin_id = _parse_twin_id(d.pop("twin_id"))

        generations = d.pop("generations")

        images = d.pop("images")

        def _parse_use(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        use = _parse_use(d.pop("use", UNSET))

        def _parse_delivered(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        delivered = _parse_delivered(d.pop("delivered", UNSET))

        def _parse_rejected(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        rejected = _parse_rejected(d.pop("rejected", UNSET))

        usage_row = cls(
            day=day,
            tenant=tenant,
            twin_id=twin_id,
            generations=generations,
            images=images,
            use=use,
            delivered=delivered,
            rejected=rejected,
        )

        usage_row.additional_properties = d
        return usage_row

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
