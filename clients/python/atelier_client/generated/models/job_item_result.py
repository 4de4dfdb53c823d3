from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.error_detail import ErrorDetail
    from ..models.item_delivery_state import ItemDeliveryState
    from ..models.job_image import JobImage
    from ..models.job_item_result_metadata_type_0 import JobItemResultMetadataType0


T = TypeVar("T", bound="JobItemResult")


@_attrs_define
class JobItemResult:
    """One item of a job page: its state, and once rendered its generation and images.

    Attributes:
        index (int):
        status (str): pending, running, awaiting_review, delivering (rendered; its S3 delivery is being retried), done,
            rejected, failed or canceled.
        sku (None | str | Unset):
        error (ErrorDetail | None | Unset):
        delivery (ItemDeliveryState | None | Unset): Items whose S3 delivery failed at first: tries, next try and
            deadline.
        generation_id (None | str | Unset):
        twin_id (None | str | Unset):
        metadata (JobItemResultMetadataType0 | None | Unset):
        alt_text (None | str | Unset):
        prompt (None | str | Unset):
        seed (int | None | Unset):
        images (list[JobImage] | None | Unset):
        rendered_by (None | str | Unset):
        withheld (None | str | Unset): `revoked`: the twin was revoked since; no image is given.
        rejection_reason (None | str | Unset): A rejected item: why, when the reviewer said.
    """

    index: int
    status: str
    sku: None | str | Unset = UNSET
    error: ErrorDetail | None | Unset = UNSET
    delivery: ItemDeliveryState | None | Unset = UNSET
    generation_id: None | str | Unset = UNSET
    twin_id: None | str | Unset = UNSET
    metadata: JobItemResultMetadataType0 | None | Unset = UNSET
    alt_text: None | str | Unset = UNSET
    prompt: None | str | Unset = UNSET
    seed: int | None | Unset = UNSET
    images: list[JobImage] | None | Unset = UNSET
    rendered_by: None | str | Unset = UNSET
    withheld: None | str | Unset = UNSET
    rejection_reason: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.error_detail import ErrorDetail
        from ..models.item_delivery_state import ItemDeliveryState
        from ..models.job_item_result_metadata_type_0 import JobItemResultMetadataType0

        index = self.index

        status = self.status

        sku: None | str | Unset
        if isinstance(self.sku, Unset):
            sku = UNSET
        else:
            sku = self.sku

        error: dict[str, Any] | None | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        elif isinstance(self.error, ErrorDetail):
            error = self.error.to_dict()
        else:
            error = self.error

        delivery: dict[str, Any] | None | Unset
        if isinstance(self.delivery, Unset):
            delivery = UNSET
        elif isinstance(self.delivery, ItemDeliveryState):
            delivery = self.delivery.to_dict()
        else:
            delivery = self.delivery

        generation_id: None | str | Unset
        if isinstance(self.generation_id, Unset):
            generation_id = UNSET
        else:
            generation_id = self.generation_id

        twin_id: None | str | Unset
        if isinstance(self.twin_id, Unset):
            twin_id = UNSET
        else:
            twin_id = self.twin_id

        metadata: dict[str, Any] | None | Unset
        if isinstance(self.metadata, Unset):
            metadata = UNSET
        elif isinstance(self.metadata, JobItemResultMetadataType0):
            metadata = self.metadata.to_dict()
        else:
            metadata = self.metadata

        alt_text: None | str | Unset
        if isinstance(self.alt_text, Unset):
            alt_text = UNSET
        else:
            alt_text = self.alt_text

        prompt: None | str | Unset
        if isinstance(self.prompt, Unset):
            prompt = UNSET
        else:
            prompt = self.prompt

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        images: list[dict[str, Any]] | None | Unset
        if isinstance(self.images, Unset):
            images = UNSET
        elif isinstance(self.images, list):
            images = []
            for images_type_0_item_data in self.images:
                images_type_0_item = images_type_0_item_data.to_dict()
                images.append(images_type_0_item)

        else:
            images = self.images

        rendered_by: None | str | Unset
        if isinstance(self.rendered_by, Unset):
            rendered_by = UNSET
        else:
            rendered_by = self.rendered_by

        withheld: None | str | Unset
        if isinstance(self.withheld, Unset):
            withheld = UNSET
        else:
            withheld = self.withheld

        rejection_reason: None | str | Unset
        if isinstance(self.rejection_reason, Unset):
            rejection_reason = UNSET
        else:
            rejection_reason = self.rejection_reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "index": index,
                "status": status,
            }
        )
        if sku is not UNSET:
            field_dict["sku"] = sku
        if error is not UNSET:
            field_dict["error"] = error
        if delivery is not UNSET:
            field_dict["delivery"] = delivery
        if generation_id is not UNSET:
            field_dict["generation_id"] = generation_id
        if twin_id is not UNSET:
            field_dict["twin_id"] = twin_id
        if metadata is not UNSET:
            field_dict["metadata"] = metadata
        if alt_text is not UNSET:
            field_dict["alt_text"] = alt_text
        if prompt is not UNSET:
            field_dict["prompt"] = prompt
        if seed is not UNSET:
            field_dict["seed"] = seed
        if images is not UNSET:
            field_dict["images"] = images
        if rendered_by is not UNSET:
            field_dict["rendered_by"] = rendered_by
        if withheld is not UNSET:
            field_dict["withheld"] = withheld
        if rejection_reason is not UNSET:
            field_dict["rejection_reason"] = rejection_reason

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.error_detail import ErrorDetail
        from ..models.item_delivery_state import ItemDeliveryState
        from ..models.job_image import JobImage
        from ..models.job_item_result_metadata_type_0 import JobItemResultMetadataType0

        d = dict(src_dict)
        index = d.pop("index")

        status = d.pop("status")

        def _parse_sku(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        sku = _parse_sku(d.pop("sku", UNSET))

        def _parse_error(data: object) -> ErrorDetail | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = ErrorDetail.from_dict(data)

                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ErrorDetail | None | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_delivery(data: object) -> ItemDeliveryState | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                delivery_type_0 = ItemDeliveryState.from_dict(data)

                return delivery_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ItemDeliveryState | None | Unset, data)

        delivery = _parse_delivery(d.pop("delivery", UNSET))

        def _parse_generation_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        generation_id = _parse_generation_id(d.pop("generation_id", UNSET))

        def _parse_twin_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        twin_id = _parse_twin_id(d.pop("twin_id", UNSET))

        def _parse_metadata(data: object) -> JobItemResultMetadataType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metadata_type_0 = JobItemResultMetadataType0.from_dict(data)

                return metadata_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobItemResultMetadataType0 | None | Unset, data)

        metadata = _parse_metadata(d.pop("metadata", UNSET))

        def _parse_alt_text(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        alt_text = _parse_alt_text(d.pop("alt_text", UNSET))

        def _parse_prompt(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        prompt = _parse_prompt(d.pop("prompt", UNSET))

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        def _parse_images(data: object) -> list[JobImage] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                images_type_0 = []
                _images_type_0 = data
                for images_type_0_item_data in _images_type_0:
                    images_type_0_item = JobImage.from_dict(images_type_0_item_data)

                    images_type_0.append(images_type_0_item)

                return images_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[JobImage] | None | Unset, data)

        images = _parse_images(d.pop("images", UNSET))

        def _parse_rendered_by(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        rendered_by = _parse_rendered_by(d.pop("rendered_by", UNSET))

        def _parse_withheld(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        withheld = _parse_withheld(d.pop("withheld", UNSET))

        def _parse_rejection_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        rejection_reason = _parse_rejection_reason(d.pop("rejection_reason", UNSET))

        job_item_result = cls(
            index=index,
            status=status,
            sku=sku,
            error=error,
            delivery=delivery,
            generation_id=generation_id,
            twin_id=twin_id,
            metadata=metadata,
            alt_text=alt_text,
            prompt=prompt,
            seed=seed,
            images=images,
            rendered_by=rendered_by,
            withheld=withheld,
            rejection_reason=rejection_reason,
        )

        job_item_result.additional_properties = d
        return job_item_result

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
