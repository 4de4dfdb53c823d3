from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Timings")


@_attrs_define
class Timings:
    """Milliseconds spent in each stage of one generation.

    Attributes:
        queue (float):
        adapter (float):
        encode (float):
        denoise (float):
        decode (float):
        postprocess (float):
        total (float):
        adapter_wait (float | None | Unset):
        mark (float | None | Unset):
    """

    queue: float
    adapter: float
    encode: float
    denoise: float
    decode: float
    postprocess: float
    total: float
    adapter_wait: float | None | Unset = UNSET
    mark: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        queue = self.queue

        adapter = self.adapter

        encode = self.encode

        denoise = self.denoise

        decode = self.decode

        postprocess = self.postprocess

        total = self.total

        adapter_wait: float | None | Unset
        if isinstance(self.adapter_wait, Unset):
            adapter_wait = UNSET
        else:
            adapter_wait = self.adapter_wait

        mark: float | None | Unset
        if isinstance(self.mark, Unset):
            mark = UNSET
        else:
            mark = self.mark

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "queue": queue,
                "adapter": adapter,
                "encode": encode,
                "denoise": denoise,
                "decode": decode,
                "postprocess": postprocess,
                "total": total,
            }
        )
        if adapter_wait is not UNSET:
            field_dict["adapter_wait"] = adapter_wait
        if mark is not UNSET:
            field_dict["mark"] = mark

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        queue = d.pop("queue")

        adapter = d.pop("adapter")

        encode = d.pop("encode")

        denoise = d.pop("denoise")

        decode = d.pop("decode")

        postprocess = d.pop("postprocess")

        total = d.pop("total")

        def _parse_adapter_wait(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        adapter_wait = _parse_adapter_wait(d.pop("adapter_wait", UNSET))

        def _parse_mark(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        mark = _parse_mark(d.pop("mark", UNSET))

        timings = cls(
            queue=queue,
            adapter=adapter,
            encode=encode,
            denoise=denoise,
            decode=decode,
            postprocess=postprocess,
            total=total,
            adapter_wait=adapter_wait,
            mark=mark,
        )

        timings.additional_properties = d
        return timings

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
