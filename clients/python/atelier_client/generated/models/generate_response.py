from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.image_out import ImageOut
    from ..models.timings import Timings


T = TypeVar("T", bound="GenerateResponse")


@_attrs_define
class GenerateResponse:
    """
    Attributes:
        generation_id (str):
        twin_id (None | str):
        seed (int):
        images (list[ImageOut]):
        timings_ms (Timings): Milliseconds spent in each stage of one generation.
    """

    generation_id: str
    twin_id: None | str
    seed: int
    images: list[ImageOut]
    timings_ms: Timings
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        generation_id = self.generation_id

        twin_id: None | str
        twin_id = self.twin_id

        seed = self.seed

        images = []
        for images_item_data in self.images:
            images_item = images_item_data.to_dict()
            images.append(images_item)

        timings_ms = self.timings_ms.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "generation_id": generation_id,
                "twin_id": twin_id,
                "seed": seed,
                "images": images,
                "timings_ms": timings_ms,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.image_out import ImageOut
        from ..models.timings import Timings

        d = dict(src_dict)
        generation_id = d.pop("generation_id")

        def _parse_twin_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        twin_id = _parse_twin_id(d.pop("twin_id"))

        seed = d.pop("seed")

        images = []
        _images = d.pop("images")
        for images_item_data in _images:
            images_item = ImageOut.from_dict(images_item_data)

            images.append(images_item)

        timings_ms = Timings.from_dict(d.pop("timings_ms"))

        generate_response = cls(
            generation_id=generation_id,
            twin_id=twin_id,
            seed=seed,
            images=images,
            timings_ms=timings_ms,
        )

        generate_response.additional_properties = d
        return generate_response

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
