from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="JobAccepted")


@_attrs_define
class JobAccepted:
    """`POST /v1/jobs/submit` (202): the new job and where to poll it.

    Attributes:
        job_id (str):
        task_id (str):
        status (str):
        items_total (int):
        status_url (str):
        result_url (str):
    """

    job_id: str
    task_id: str
    status: str
    items_total: int
    status_url: str
    result_url: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        task_id = self.task_id

        status = self.status

        items_total = self.items_total

        status_url = self.status_url

        result_url = self.result_url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job_id": job_id,
                "task_id": task_id,
                "status": status,
                "items_total": items_total,
                "status_url": status_url,
                "result_url": result_url,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        job_id = d.pop("job_id")

        task_id = d.pop("task_id")

        status = d.pop("status")

        items_total = d.pop("items_total")

        status_url = d.pop("status_url")

        result_url = d.pop("result_url")

        job_accepted = cls(
            job_id=job_id,
            task_id=task_id,
            status=status,
            items_total=items_total,
            status_url=status_url,
            result_url=result_url,
        )

        job_accepted.additional_properties = d
        return job_accepted

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
