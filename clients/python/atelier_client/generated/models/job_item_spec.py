from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.job_item_spec_output_format import JobItemSpecOutputFormat
from ..models.job_item_spec_size_type_0 import JobItemSpecSizeType0
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.garment_ref import GarmentRef
    from ..models.job_item_spec_metadata import JobItemSpecMetadata
    from ..models.pose_ref import PoseRef


T = TypeVar("T", bound="JobItemSpec")


@_attrs_define
class JobItemSpec:
    """One catalogue item: a twin wearing a garment in a scene, `count` images of it.

    Attributes:
        twin_id (str):
        prompt (None | str | Unset):
        negative_prompt (None | str | Unset):
        garment_description (None | str | Unset):
        scene (None | str | Unset):
        sku (None | str | Unset):
        metadata (JobItemSpecMetadata | Unset): Passed through to results and sidecars.
        size (JobItemSpecSizeType0 | None | Unset): A named size; or give width and height.
        width (int | None | Unset):
        height (int | None | Unset):
        steps (int | Unset):  Default: 30.
        guidance_scale (float | Unset):  Default: 5.0.
        seed (int | None | Unset):
        count (int | Unset):  Default: 1.
        output_format (JobItemSpecOutputFormat | Unset):  Default: JobItemSpecOutputFormat.PNG.
        use (str | Unset):  Default: 'ecommerce'.
        territory (None | str | Unset):
        garments (list[GarmentRef] | Unset): Garment images (asset ids or https URLs).
        pose (None | PoseRef | Unset):
        alt_text (None | str | Unset): The image's alt text for the shop page (up to 250 characters); default: made from
            the twin, the garment and the scene.
    """

    twin_id: str
    prompt: None | str | Unset = UNSET
    negative_prompt: None | str | Unset = UNSET
    garment_description: None | str | Unset = UNSET
    scene: None | str | Unset = UNSET
    sku: None | str | Unset = UNSET
    metadata: JobItemSpecMetadata | Unset = UNSET
    size: JobItemSpecSizeType0 | None | Unset = UNSET
    width: int | None | Unset = UNSET
    height: int | None | Unset = UNSET
    steps: int | Unset = 30
    guidance_scale: float | Unset = 5.0
    seed: int | None | Unset = UNSET
    count: int | Unset = 1
    output_format: JobItemSpecOutputFormat | Unset = JobItemSpecOutputFormat.PNG
    use: str | Unset = "ecommerce"
    territory: None | str | Unset = UNSET
    garments: list[GarmentRef] | Unset = UNSET
    pose: None | PoseRef | Unset = UNSET
    alt_text: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.pose_ref import PoseRef

        twin_id = self.twin_id

        prompt: None | str | Unset
        if isinstance(self.prompt, Unset):
            prompt = UNSET
        else:
            prompt = self.prompt

        negative_prompt: None | str | Unset
        if isinstance(self.negative_prompt, Unset):
            negative_prompt = UNSET
        else:
            negative_prompt = self.negative_prompt

        garment_description: None | str | Unset
        if isinstance(self.garment_description, Unset):
            garment_description = UNSET
        else:
            garment_description = self.garment_description

        scene: None | str | Unset
        if isinstance(self.scene, Unset):
            scene = UNSET
        else:
            scene = self.scene

        sku: None | str | Unset
        if isinstance(self.sku, Unset):
            sku = UNSET
        else:
            sku = self.sku

        metadata: dict[str, Any] | Unset = UNSET
        if not isinstance(self.metadata, Unset):
            metadata = self.metadata.to_dict()

        size: None | str | Unset
        if isinstance(self.size, Unset):
            size = UNSET
        elif isinstance(self.size, JobItemSpecSizeType0):
            size = self.size.value
        else:
            size = self.size

        width: int | None | Unset
        if isinstance(self.width, Unset):
            width = UNSET
        else:
            width = self.width

        height: int | None | Unset
        if isinstance(self.height, Unset):
            height = UNSET
        else:
            height = self.height

        steps = self.steps

        guidance_scale = self.guidance_scale

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        count = self.count

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

        alt_text: None | str | Unset
        if isinstance(self.alt_text, Unset):
            alt_text = UNSET
        else:
            alt_text = self.alt_text

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "twin_id": twin_id,
            }
        )
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if negative_prompt is not UNSET:
            field_dict["negative_prompt"] = negative_prompt
        if garment_description is not UNSET:
            field_dict["garment_description"] = garment_description
        if scene is not UNSET:
            field_dict["scene"] = scene
        if sku is not UNSET:
            field_dict["sku"] = sku
        if metadata is not UNSET:
            field_dict["metadata"] = metadata
        if size is not UNSET:
            field_dict["size"] = size
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
        if count is not UNSET:
            field_dict["count"] = count
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
        if alt_text is not UNSET:
            field_dict["alt_text"] = alt_text

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.garment_ref import GarmentRef
        from ..models.job_item_spec_metadata import JobItemSpecMetadata
        from ..models.pose_ref import PoseRef

        d = dict(src_dict)
        twin_id = d.pop("twin_id")

        def _parse_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        prompt = _parse_prompt(d.pop("prompt", UNSET))

        def _parse_negative_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        negative_prompt = _parse_negative_prompt(d.pop("negative_prompt", UNSET))

        def _parse_garment_description(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        garment_description = _parse_garment_description(d.pop("garment_description", UNSET))

        def _parse_scene(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        scene = _parse_scene(d.pop("scene", UNSET))

        def _parse_sku(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sku = _parse_sku(d.pop("sku", UNSET))

        _metadata = d.pop("metadata", UNSET)
        metadata: JobItemSpecMetadata | Unset
        if isinstance(_metadata, Unset):
            metadata = UNSET
        else:
            metadata = JobItemSpecMetadata.from_dict(_metadata)

        def _parse_size(data: object) -> JobItemSpecSizeType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                size_type_0 = JobItemSpecSizeType0(data)

                return size_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobItemSpecSizeType0 | None | Unset, data)

        size = _parse_size(d.pop("size", UNSET))

        def _parse_width(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        width = _parse_width(d.pop("width", UNSET))

        def _parse_height(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        height = _parse_height(d.pop("height", UNSET))

        steps = d.pop("steps", UNSET)

        guidance_scale = d.pop("guidance_scale", UNSET)

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        count = d.pop("count", UNSET)

        _output_format = d.pop("output_format", UNSET)
        output_format: JobItemSpecOutputFormat | Unset
        if isinstance(_output_format, Unset):
            output_format = UNSET
        else:
            output_format = JobItemSpecOutputFormat(_output_format)

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

        def _parse_alt_text(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        alt_text = _parse_alt_text(d.pop("alt_text", UNSET))

        job_item_spec = cls(
            twin_id=twin_id,
            prompt=prompt,
            negative_prompt=negative_prompt,
            garment_description=garment_description,
            scene=scene,
            sku=sku,
            metadata=metadata,
            size=size,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance_scale,
            seed=seed,
            count=count,
            output_format=output_format,
            use=use,
            territory=territory,
            garments=garments,
            pose=pose,
            alt_text=alt_text,
        )

        return job_item_spec
