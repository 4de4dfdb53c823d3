from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="PrefetchBody")


@_attrs_define
class PrefetchBody:
    """
    Attributes:
        twin_ids (list[str]):
    """

    twin_ids: list[str]

    def to_dict(self) -> dict[str, Any]:
        twin_ids = self.twin_ids

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "twin_ids": twin_ids,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        twin_ids = cast(list[str], d.pop("twin_ids"))

        prefetch_body = cls(
            twin_ids=twin_ids,
        )

        return prefetch_body
