from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ItemRedeliverBody")


@_attrs_define
class ItemRedeliverBody:
    """
    Attributes:
        job_id (str):
        index (int):
    """

    job_id: str
    index: int

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        index = self.index

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "job_id": job_id,
                "index": index,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        job_id = d.pop("job_id")

        index = d.pop("index")

        item_redeliver_body = cls(
            job_id=job_id,
            index=index,
        )

        return item_redeliver_body
