from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.item_delivery_state import ItemDeliveryState


T = TypeVar("T", bound="ItemRedeliverAnswer")


@_attrs_define
class ItemRedeliverAnswer:
    """
    Attributes:
        job_id (str):
        index (int):
        status (str): delivering: the item is tried now, with a fresh deadline.
        delivery (ItemDeliveryState | None | Unset):
    """

    job_id: str
    index: int
    status: str
    delivery: ItemDeliveryState | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.item_delivery_state import ItemDeliveryState

        job_id = self.job_id

        index = self.index

        status = self.status

        delivery: dict[str, Any] | None | Unset
        if isinstance(self.delivery, Unset):
            delivery = UNSET
        elif isinstance(self.delivery, ItemDeliveryState):
            delivery = self.delivery.to_dict()
        else:
            delivery = self.delivery

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job_id": job_id,
                "index": index,
                "status": status,
            }
        )
        if delivery is not UNSET:
            field_dict["delivery"] = delivery

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.item_delivery_state import ItemDeliveryState

        d = dict(src_dict)
        job_id = d.pop("job_id")

        index = d.pop("index")

        status = d.pop("status")

        def _parse_delivery(data: object) -> ItemDeliveryState | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                delivery_type_0 = ItemDeliveryState.from_dict(data)

                return delivery_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ItemDeliveryState | None | Unset, data)

        delivery = _parse_delivery(d.pop("delivery", UNSET))

        item_redeliver_answer = cls(
            job_id=job_id,
            index=index,
            status=status,
            delivery=delivery,
        )

        item_redeliver_answer.additional_properties = d
        return item_redeliver_answer

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
