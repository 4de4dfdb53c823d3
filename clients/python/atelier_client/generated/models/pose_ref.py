from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.pose_ref_preset_type_0 import PoseRefPresetType0
from ..types import UNSET, Unset

T = TypeVar("T", bound="PoseRef")


@_attrs_define
class PoseRef:
    """A pose: a built-in preset, OpenPose COCO-18 keypoints, or a pose image (asset or URL).

    Attributes:
        preset (None | PoseRefPresetType0 | Unset):
        keypoints (list[list[float] | None] | None | Unset): 18 OpenPose COCO points, each [x, y] in 0..1 of the image,
            or null when not visible.
        asset_id (None | str | Unset):
        url (None | str | Unset):
        scale (float | Unset): ControlNet conditioning scale. Default: 1.0.
    """

    preset: None | PoseRefPresetType0 | Unset = UNSET
    keypoints: list[list[float] | None] | None | Unset = UNSET
    asset_id: None | str | Unset = UNSET
    url: None | str | Unset = UNSET
    scale: float | Unset = 1.0

    def to_dict(self) -> dict[str, Any]:
        preset: None | str | Unset
        if isinstance(self.preset, Unset):
            preset = UNSET
        elif isinstance(self.preset, PoseRefPresetType0):
            preset = self.preset.value
        else:
            preset = self.preset

        keypoints: list[list[float] | None] | None | Unset
        if isinstance(self.keypoints, Unset):
            keypoints = UNSET
        elif isinstance(self.keypoints, list):
            keypoints = []
            for keypoints_type_0_item_data in self.keypoints:
                keypoints_type_0_item: list[float] | None
                if isinstance(keypoints_type_0_item_data, list):
                    keypoints_type_0_item = keypoints_type_0_item_data

                else:
                    keypoints_type_0_item = keypoints_type_0_item_data
                keypoints.append(keypoints_type_0_item)

        else:
            keypoints = self.keypoints

        asset_id: None | str | Unset
        if isinstance(self.asset_id, Unset):
            asset_id = UNSET
        else:
            asset_id = self.asset_id

        url: None | str | Unset
        if isinstance(self.url, Unset):
            url = UNSET
        else:
            url = self.url

        scale = self.scale

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if preset is not UNSET:
            field_dict["preset"] = preset
        if keypoints is not UNSET:
            field_dict["keypoints"] = keypoints
        if asset_id is not UNSET:
            field_dict["asset_id"] = asset_id
        if url is not UNSET:
            field_dict["url"] = url
        if scale is not UNSET:
            field_dict["scale"] = scale

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_preset(data: object) -> None | PoseRefPresetType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                preset_type_0 = PoseRefPresetType0(data)

                return preset_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PoseRefPresetType0 | Unset, data)

        preset = _parse_preset(d.pop("preset", UNSET))

        def _parse_keypoints(data: object) -> list[list[float] | None] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                keypoints_type_0 = []
                _keypoints_type_0 = data
                for keypoints_type_0_item_data in _keypoints_type_0:

                    def _parse_keypoints_type_0_item(data: object) -> list[float] | None:
                        if data is None:
                            return data
                        try:
                            if not isinstance(data, list):
                                raise TypeError()
                            keypoints_type_0_item_type_0 = cast(list[float], data)

                            return keypoints_type_0_item_type_0
                        except (TypeError, ValueError, AttributeError, KeyError):
                            pass
                        return cast(list[float] | None, data)

                    keypoints_type_0_item = _parse_keypoints_type_0_item(keypoints_type_0_item_data)

                    keypoints_type_0.append(keypoints_type_0_item)

                return keypoints_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[list[float] | None] | None | Unset, data)

        keypoints = _parse_keypoints(d.pop("keypoints", UNSET))

        def _parse_asset_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        asset_id = _parse_asset_id(d.pop("asset_id", UNSET))

        def _parse_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        url = _parse_url(d.pop("url", UNSET))

        scale = d.pop("scale", UNSET)

        pose_ref = cls(
            preset=preset,
            keypoints=keypoints,
            asset_id=asset_id,
            url=url,
            scale=scale,
        )

        return pose_ref
