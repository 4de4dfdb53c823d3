from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.edit_request_output_format import EditRequestOutputFormat
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.edit_source import EditSource
    from ..models.garment_ref import GarmentRef


T = TypeVar("T", bound="EditRequest")


@_attrs_define
class EditRequest:
    """Body of `POST /v1/edit`: repaint the mask's area of a photo of the twin (re-dress), or,
    with `invert_mask`, everything outside a person mask (a background swap).

        Attributes:
            twin_id (str): The twin the source photo shows.
            source (EditSource):
            mask_asset_id (str): A mask asset: white is repainted.
            prompt (str):
            invert_mask (bool | Unset): Repaint outside the mask instead (background swap). Default: False.
            negative_prompt (None | str | Unset):
            garments (list[GarmentRef] | Unset):
            steps (int | Unset):  Default: 30.
            guidance_scale (float | Unset):  Default: 5.0.
            seed (int | None | Unset):
            num_images (int | Unset):  Default: 1.
            output_format (EditRequestOutputFormat | Unset):  Default: EditRequestOutputFormat.PNG.
            use (str | Unset):  Default: 'ecommerce'.
            territory (None | str | Unset):
    """

    twin_id: str
    source: EditSource
    mask_asset_id: str
    prompt: str
    invert_mask: bool | Unset = False
    negative_prompt: None | str | Unset = UNSET
    garments: list[GarmentRef] | Unset = UNSET
    steps: int | Unset = 30
    guidance_scale: float | Unset = 5.0
    seed: int | None | Unset = UNSET
    num_images: int | Unset = 1
    output_format: EditRequestOutputFormat | Unset = EditRequestOutputFormat.PNG
    use: str | Unset = "ecommerce"
    territory: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        twin_id = self.twin_id

        source = self.source.to_dict()

        mask_asset_id = self.mask_asset_id

        prompt = self.prompt

        invert_mask = self.invert_mask

        negative_prompt: None | str | Unset
        if isinstance(self.negative_prompt, Unset):
            negative_prompt = UNSET
        else:
            negative_prompt = self.negative_prompt

        garments: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.garments, Unset):
            garments = []
            for garments_item_data in self.garments:
                garments_item = garments_item_data.to_dict()
                garments.append(garments_item)

        steps = self.steps

        guidance_scale = self.guidance_scale

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        num_images = self.num_images

        output_format: str | Unset = UNSET
        if not isinstance(self.output_format, Unset):
            output_format = self.output_format.value

        use = self.use

        territory: None | str | Unset
        if isinstance(self.territory, Unset):
            territory = UNSET
        else:
            territory = self.territory

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "twin_id": twin_id,
                "source": source,
                "mask_asset_id": mask_asset_id,
                "prompt": prompt,
            }
        )
        if invert_mask is not UNSET:
            field_dict["invert_mask"] = invert_mask
        if negative_prompt is not UNSET:
            field_dict["negative_prompt"] = negative_prompt
        if garments is not UNSET:
            field_dict["garments"] = garments
        if steps is not UNSET:
            field_dict["steps"] = steps
        if guidance_scale is not UNSET:
            field_dict["guidance_scale"] = guidance_scale
        if seed is not UNSET:
            field_dict["seed"] = seed
        if num_images is not UNSET:
            field_dict["num_images"] = num_images
        if output_format is not UNSET:
            field_dict["output_format"] = output_format
        if use is not UNSET:
            field_dict["use"] = use
        if territory is not UNSET:
            field_dict["territory"] = territory

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.edit_source import EditSource
        from ..models.garment_ref import GarmentRef

        d = dict(src_dict)
        twin_id = d.pop("twin_id")

        source = EditSource.from_dict(d.pop("source"))

        mask_asset_id = d.pop("mask_asset_id")

        prompt = d.pop("prompt")

        invert_mask = d.pop("invert_mask", UNSET)

        def _parse_negative_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        negative_prompt = _parse_negative_prompt(d.pop("negative_prompt", UNSET))

        _garments = d.pop("garments", UNSET)
        garments: list[GarmentRef] | Unset = UNSET
        if _garments is not UNSET:
            garments = []
            for garments_item_data in _garments:
                garments_item = GarmentRef.from_dict(garments_item_data)

                garments.append(garments_item)

        steps = d.pop("steps", UNSET)

        guidance_scale = d.pop("guidance_scale", UNSET)

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        num_images = d.pop("num_images", UNSET)

        _output_format = d.pop("output_format", UNSET)
        output_format: EditRequestOutputFormat | Unset
        if isinstance(_output_format, Unset):
            output_format = UNSET
        else:
            output_format = EditRequestOutputFormat(_output_format)

        use = d.pop("use", UNSET)

        def _parse_territory(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        territory = _parse_territory(d.pop("territory", UNSET))

        edit_request = cls(
            twin_id=twin_id,
            source=source,
            mask_asset_id=mask_asset_id,
            prompt=prompt,
            invert_mask=invert_mask,
            negative_prompt=negative_prompt,
            garments=garments,
            steps=steps,
            guidance_scale=guidance_scale,
            seed=seed,
            num_images=num_images,
            output_format=output_format,
            use=use,
            territory=territory,
        )

        return edit_request
