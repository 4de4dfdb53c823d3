from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_item_spec import JobItemSpec


T = TypeVar("T", bound="JobSubmitBody")


@_attrs_define
class JobSubmitBody:
    """
    Attributes:
        items (list[JobItemSpec]):
        title (None | str | Unset): A name for the job (up to 200 characters), shown in its status and in Studio.
        priority (int | Unset): Higher runs first; equal priorities run oldest first. Default: 5.
        webhook_per_item (bool | Unset): Also post a job.item.completed event per item. Default: False.
        review (bool | Unset): Hold each item's images until it is approved or rejected (Studio, or POST
            /v1/jobs/approve and /v1/jobs/reject); only approved images are delivered and announced in the webhook. Default:
            False.
    """

    items: list[JobItemSpec]
    title: None | str | Unset = UNSET
    priority: int | Unset = 5
    webhook_per_item: bool | Unset = False
    review: bool | Unset = False

    def to_dict(self) -> dict[str, Any]:
        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)

        title: None | str | Unset
        if isinstance(self.title, Unset):
            title = UNSET
        else:
            title = self.title

        priority = self.priority

        webhook_per_item = self.webhook_per_item

        review = self.review

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "items": items,
            }
        )
        if title is not UNSET:
            field_dict["title"] = title
        if priority is not UNSET:
            field_dict["priority"] = priority
        if webhook_per_item is not UNSET:
            field_dict["webhook_per_item"] = webhook_per_item
        if review is not UNSET:
            field_dict["review"] = review

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job_item_spec import JobItemSpec

        d = dict(src_dict)
        items = []
        _items = d.pop("items")
        for items_item_data in _items:
            items_item = JobItemSpec.from_dict(items_item_data)

            items.append(items_item)

        def _parse_title(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        title = _parse_title(d.pop("title", UNSET))

        priority = d.pop("priority", UNSET)

        webhook_per_item = d.pop("webhook_per_item", UNSET)

        review = d.pop("review", UNSET)

        job_submit_body = cls(
            items=items,
            title=title,
            priority=priority,
            webhook_per_item=webhook_per_item,
            review=review,
        )

        return job_submit_body
