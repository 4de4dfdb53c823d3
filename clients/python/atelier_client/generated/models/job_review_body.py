from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="JobReviewBody")


@_attrs_define
class JobReviewBody:
    """Approve or reject items of a job submitted with `review: true`.

    Attributes:
        job_id (str):
        items (list[int]): Item indexes, each awaiting review.
    """

    job_id: str
    items: list[int]

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        items = self.items

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "job_id": job_id,
                "items": items,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        job_id = d.pop("job_id")

        items = cast(list[int], d.pop("items"))

        job_review_body = cls(
            job_id=job_id,
            items=items,
        )

        return job_review_body
