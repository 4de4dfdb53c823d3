from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="PresetBody")


@_attrs_define
class PresetBody:
    """
    Attributes:
        tenant_id (str):
        name (str):
        prompt (str):
        negative_prompt (None | str | Unset):
    """

    tenant_id: str
    name: str
    prompt: str
    negative_prompt: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        name = self.name

        prompt = self.prompt

        negative_prompt: None | str | Unset
        if isinstance(self.negative_prompt, Unset):
            negative_prompt = UNSET
        else:
            negative_prompt = self.negative_prompt

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenant_id": tenant_id,
                "name": name,
                "prompt": prompt,
            }
        )
        if negative_prompt is not UNSET:
            field_dict["negative_prompt"] = negative_prompt

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        name = d.pop("name")

        prompt = d.pop("prompt")

        def _parse_negative_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        negative_prompt = _parse_negative_prompt(d.pop("negative_prompt", UNSET))

        preset_body = cls(
            tenant_id=tenant_id,
            name=name,
            prompt=prompt,
            negative_prompt=negative_prompt,
        )

        return preset_body
