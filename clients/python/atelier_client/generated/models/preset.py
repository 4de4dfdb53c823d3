from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Preset")


@_attrs_define
class Preset:
    """
    Attributes:
        prompt (str):
        negative_prompt (None | str):
        builtin (bool):
    """

    prompt: str
    negative_prompt: None | str
    builtin: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        prompt = self.prompt

        negative_prompt: None | str
        negative_prompt = self.negative_prompt

        builtin = self.builtin

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "prompt": prompt,
                "negative_prompt": negative_prompt,
                "builtin": builtin,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        prompt = d.pop("prompt")

        def _parse_negative_prompt(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        negative_prompt = _parse_negative_prompt(d.pop("negative_prompt"))

        builtin = d.pop("builtin")

        preset = cls(
            prompt=prompt,
            negative_prompt=negative_prompt,
            builtin=builtin,
        )

        preset.additional_properties = d
        return preset

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
