from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_summary_output import JobSummaryOutput
from ..types import UNSET, Unset

T = TypeVar("T", bound="JobSummary")


@_attrs_define
class JobSummary:
    """A catalogue job's state and counts (`GET /v1/jobs/status`, and the head of every job answer).

    Attributes:
        job_id (str):
        task_id (str): The same id (BentoML's task naming).
        status (str): queued, running, completed, failed or canceled.
        priority (int):
        items_total (int):
        items_done (int):
        items_failed (int):
        output (JobSummaryOutput):
        cancel_requested (bool):
        created_at (None | str):
        started_at (None | str):
        finished_at (None | str):
        review (bool | Unset): Present (true) on jobs submitted with `review: true`. Default: False.
        title (None | str | Unset): The job's title, when it was submitted with one.
        items_rejected (int | None | Unset): Review jobs only.
        items_awaiting_review (int | None | Unset): Review jobs only.
    """

    job_id: str
    task_id: str
    status: str
    priority: int
    items_total: int
    items_done: int
    items_failed: int
    output: JobSummaryOutput
    cancel_requested: bool
    created_at: None | str
    started_at: None | str
    finished_at: None | str
    review: bool | Unset = False
    title: None | str | Unset = UNSET
    items_rejected: int | None | Unset = UNSET
    items_awaiting_review: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        task_id = self.task_id

        status = self.status

        priority = self.priority

        items_total = self.items_total

        items_done = self.items_done

        items_failed = self.items_failed

        output = self.output.value

        cancel_requested = self.cancel_requested

        created_at: None | str
        created_at = self.created_at

        started_at: None | str
        started_at = self.started_at

        finished_at: None | str
        finished_at = self.finished_at

        review = self.review

        title: None | str | Unset
        if isinstance(self.title, Unset):
            title = UNSET
        else:
            title = self.title

        items_rejected: int | None | Unset
        if isinstance(self.items_rejected, Unset):
            items_rejected = UNSET
        else:
            items_rejected = self.items_rejected

        items_awaiting_review: int | None | Unset
        if isinstance(self.items_awaiting_review, Unset):
            items_awaiting_review = UNSET
        else:
            items_awaiting_review = self.items_awaiting_review

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "job_id": job_id,
                "task_id": task_id,
                "status": status,
                "priority": priority,
                "items_total": items_total,
                "items_done": items_done,
                "items_failed": items_failed,
                "output": output,
                "cancel_requested": cancel_requested,
                "created_at": created_at,
                "started_at": started_at,
                "finished_at": finished_at,
            }
        )
        if review is not UNSET:
            field_dict["review"] = review
        if title is not UNSET:
            field_dict["title"] = title
        if items_rejected is not UNSET:
            field_dict["items_rejected"] = items_rejected
        if items_awaiting_review is not UNSET:
            field_dict["items_awaiting_review"] = items_awaiting_review

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        job_id = d.pop("job_id")

        task_id = d.pop("task_id")

        status = d.pop("status")

        priority = d.pop("priority")

        items_total = d.pop("items_total")

        items_done = d.pop("items_done")

        items_failed = d.pop("items_failed")

        output = JobSummaryOutput(d.pop("output"))

        cancel_requested = d.pop("cancel_requested")

        def _parse_created_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        created_at = _parse_created_at(d.pop("created_at"))

        def _parse_started_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        started_at = _parse_started_at(d.pop("started_at"))

        def _parse_finished_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        review = d.pop("review", UNSET)

        def _parse_title(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        title = _parse_title(d.pop("title", UNSET))

        def _parse_items_rejected(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        items_rejected = _parse_items_rejected(d.pop("items_rejected", UNSET))

        def _parse_items_awaiting_review(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        items_awaiting_review = _parse_items_awaiting_review(d.pop("items_awaiting_review", UNSET))

        job_summary = cls(
            job_id=job_id,
            task_id=task_id,
            status=status,
            priority=priority,
            items_total=items_total,
            items_done=items_done,
            items_failed=items_failed,
            output=output,
            cancel_requested=cancel_requested,
            created_at=created_at,
            started_at=started_at,
            finished_at=finished_at,
            review=review,
            title=title,
            items_rejected=items_rejected,
            items_awaiting_review=items_awaiting_review,
        )

        job_summary.additional_properties = d
        return job_summary

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
