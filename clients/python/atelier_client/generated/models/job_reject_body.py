from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_reject_body_reasons import JobRejectBodyReasons


T = TypeVar("T", bound="JobRejectBody")


@_attrs_define
class JobRejectBody:
    """Reject items awaiting review, optionally saying why: `reason` for every item of the call,
    `reasons` for some items (by index, as a string key); an item's own reason wins.

        Attributes:
            job_id (str):
            items (list[int]): Item indexes, each awaiting review.
            reason (None | str | Unset): Why these items were rejected (up to 500 characters, no control characters).
            reasons (JobRejectBodyReasons | Unset): Why each item was rejected, by item index (a key of `items`, written as
                a string).
    """

    job_id: str
    items: list[int]
    reason: None | str | Unset = UNSET
    reasons: JobRejectBodyReasons | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        job_id = self.job_id

        items = self.items

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        reasons: dict[str, Any] | Unset = UNSET
        if not isinstance(self.reasons, Unset):
            reasons = self.reasons.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "job_id": job_id,
                "items": items,
            }
        )
        if reason is not UNSET:
            field_dict["reason"] = reason
        if reasons is not UNSET:
            field_dict["reasons"] = reasons

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job_reject_body_reasons import JobRejectBodyReasons

        d = dict(src_dict)
        job_id = d.pop("job_id")

        items = cast(list[int], d.pop("items"))

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        _reasons = d.pop("reasons", UNSET)
        reasons: JobRejectBodyReasons | Unset
        if isinstance(_reasons, Unset):
            reasons = UNSET
        else:
            reasons = JobRejectBodyReasons.from_dict(_reasons)

        job_reject_body = cls(
            job_id=job_id,
            items=items,
            reason=reason,
            reasons=reasons,
        )

        return job_reject_body
