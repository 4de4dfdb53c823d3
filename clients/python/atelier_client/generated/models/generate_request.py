from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.generate_request_output_format import GenerateRequestOutputFormat
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.garment_ref import GarmentRef
    from ..models.pose_ref import PoseRef


T = TypeVar("T", bound="GenerateRequest")


@_attrs_define
class GenerateRequest:
    """Body of `POST /v1/generate` and `POST /v1/generate/image`.

    Attributes:
        twin_id (None | str): The twin to render; null renders the base model without any twin (admin only).
        prompt (str):
        negative_prompt (None | str | Unset):
        width (int | Unset):  Default: 1024.
        height (int | Unset):  Default: 1024.
        steps (int | Unset):  Default: 30.
        guidance_scale (float | Unset):  Default: 5.0.
        seed (int | None | Unset): Same seed, twin and parameters give the same image.
        num_images (int | Unset):  Default: 1.
        output_format (GenerateRequestOutputFormat | Unset):  Default: GenerateRequestOutputFormat.PNG.
        use (str | Unset): Declared use, checked against consent. Default: 'ecommerce'.
        territory (None | str | Unset): ISO 3166-1 alpha-2 country where the image will be used; required when the
            consent lists territories.
        garments (list[GarmentRef] | Unset): The brand's garments to put on the twin.
        pose (None | PoseRef | Unset):
    """

    twin_id: None | str
    prompt: str
    negative_prompt: None | str | Unset = UNSET
    width: int | Unset = 1024
    height: int | Unset = 1024
    steps: int | Unset = 30
    guidance_scale: float | Unset = 5.0
    seed: int | None | Unset = UNSET
    num_images: int | Unset = 1
    output_format: GenerateRequestOutputFormat | Unset = GenerateRequestOutputFormat.PNG
    use: str | Unset = "ecommerce"
    territory: None | str | Unset = UNSET
    garments: list[GarmentRef] | Unset = UNSET
    pose: None | PoseRef | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.pose_ref import PoseRef

        twin_id: None | str
        twin_id = self.twin_id

        prompt = self.prompt

        negative_prompt: None | str | Unset
        if isinstance(self.negative_prompt, Unset):
            negative_prompt = UNSET
        else:
            negative_prompt = self.negative_prompt

        width = self.width

        height = self.height

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

        garments: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.garments, Unset):
            garments = []
            for garments_item_data in self.garments:
                garments_item = garments_item_data.to_dict()
                garments.append(garments_item)

        pose: dict[str, Any] | None | Unset
        if isinstance(self.pose, Unset):
            pose = UNSET
        elif isinstance(self.pose, PoseRef):
            pose = self.pose.to_dict()
        else:
            pose = self.pose

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "twin_id": twin_id,
                "prompt": prompt,
            }
        )
        if negative_prompt is not UNSET:
            field_dict["negative_prompt"] = negative_prompt
        if width is not UNSET:
            field_dict["width"] = width
        if height is not UNSET:
            field_dict["height"] = height
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
        if garments is not UNSET:
            field_dict["garments"] = garments
        if pose is not UNSET:
            field_dict["pose"] = pose

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.garment_ref import GarmentRef
        from ..models.pose_ref import PoseRef

        d = dict(src_dict)

        def _parse_twin_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        twin_id = _parse_twin_id(d.pop("twin_id"))

        prompt = d.pop("prompt")

        def _parse_negative_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        negative_prompt = _parse_negative_prompt(d.pop("negative_prompt", UNSET))

        width = d.pop("width", UNSET)

        height = d.pop("height", UNSET)

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
        output_format: GenerateRequestOutputFormat | Unset
        if isinstance(_output_format, Unset):
            output_format = UNSET
        else:
            output_format = GenerateRequestOutputFormat(_output_format)

        use = d.pop("use", UNSET)

        def _parse_territory(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        territory = _parse_territory(d.pop("territory", UNSET))

        _garments = d.pop("garments", UNSET)
        garments: list[GarmentRef] | Unset = UNSET
        if _garments is not UNSET:
            garments = []
            for garments_item_data in _garments:
                garments_item = GarmentRef.from_dict(garments_item_data)

                garments.append(garments_item)

        def _parse_pose(data: object) -> None | PoseRef | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                pose_type_0 = PoseRef.from_dict(data)

                return pose_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PoseRef | Unset, data)

        pose = _parse_pose(d.pop("pose", UNSET))

        generate_request = cls(
            twin_id=twin_id,
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance_scale,
            seed=seed,
            num_images=num_images,
            output_format=output_format,
            use=use,
            territory=territory,
            garments=garments,
            pose=pose,
        )

        return generate_request
