from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.verify_response_found_by_type_0 import VerifyResponseFoundByType0
from ..models.verify_response_training_mining_type_0 import VerifyResponseTrainingMiningType0
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.c2_pa_report import C2PaReport
    from ..models.paper_licence import PaperLicence
    from ..models.signed_licence import SignedLicence
    from ..models.verify_audit import VerifyAudit
    from ..models.watermark_report import WatermarkReport


T = TypeVar("T", bound="VerifyResponse")


@_attrs_define
class VerifyResponse:
    """`POST /v1/verify`: what the image carries, and whether (and what) this service made it.

    Attributes:
        format_ (str):
        width (int):
        height (int):
        watermark (WatermarkReport):
        c2pa (C2PaReport):
        generation_id (None | str):
        digital_source_type (None | str):
        made_by_this_service (bool):
        found_by (None | VerifyResponseFoundByType0):
        audit (None | Unset | VerifyAudit): The generation's summary: for its own tenant and admins.
        training_mining (None | Unset | VerifyResponseTrainingMiningType0): The C2PA manifest's training and data mining
            assertion (`cawg.training-mining`), summed up over its entries; only from an intact, signed manifest. Atelier
            writes `notAllowed`.
        licence (None | PaperLicence | SignedLicence | Unset): What licensed the generation, as the C2PA manifest names
            it (`com.atelier.licence`); only from an intact, signed manifest; null for the base model or without one.
    """

    format_: str
    width: int
    height: int
    watermark: WatermarkReport
    c2pa: C2PaReport
    generation_id: None | str
    digital_source_type: None | str
    made_by_this_service: bool
    found_by: None | VerifyResponseFoundByType0
    audit: None | Unset | VerifyAudit = UNSET
    training_mining: None | Unset | VerifyResponseTrainingMiningType0 = UNSET
    licence: None | PaperLicence | SignedLicence | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.paper_licence import PaperLicence
        from ..models.signed_licence import SignedLicence
        from ..models.verify_audit import VerifyAudit

        format_ = self.format_

        width = self.width

        height = self.height

        watermark = self.watermark.to_dict()

        c2pa = self.c2pa.to_dict()

        generation_id: None | str
        generation_id = self.generation_id

        digital_source_type: None | str
        digital_source_type = self.digital_source_type

        made_by_this_service = self.made_by_this_service

        found_by: None | str
        if isinstance(self.found_by, VerifyResponseFoundByType0):
            found_by = self.found_by.value
        else:
            found_by = self.found_by

        audit: dict[str, Any] | None | Unset
        if isinstance(self.audit, Unset):
            audit = UNSET
        elif isinstance(self.audit, VerifyAudit):
            audit = self.audit.to_dict()
        else:
            audit = self.audit

        training_mining: None | str | Unset
        if isinstance(self.training_mining, Unset):
            training_mining = UNSET
        elif isinstance(self.training_mining, VerifyResponseTrainingMiningType0):
            training_mining = self.training_mining.value
        else:
            training_mining = self.training_mining

        licence: dict[str, Any] | None | Unset
        if isinstance(self.licence, Unset):
            licence = UNSET
        elif isinstance(self.licence, SignedLicence) or isinstance(self.licence, PaperLicence):
            licence = self.licence.to_dict()
        else:
            licence = self.licence

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "format": format_,
                "width": width,
                "height": height,
                "watermark": watermark,
                "c2pa": c2pa,
                "generation_id": generation_id,
                "digital_source_type": digital_source_type,
                "made_by_this_service": made_by_this_service,
                "found_by": found_by,
            }
        )
        if audit is not UNSET:
            field_dict["audit"] = audit
        if training_mining is not UNSET:
            field_dict["training_mining"] = training_mining
        if licence is not UNSET:
            field_dict["licence"] = licence

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.c2_pa_report import C2PaReport
        from ..models.paper_licence import PaperLicence
        from ..models.signed_licence import SignedLicence
        from ..models.verify_audit import VerifyAudit
        from ..models.watermark_report import WatermarkReport

        d = dict(src_dict)
        format_ = d.pop("format")

        width = d.pop("width")

        height = d.pop("height")

        watermark = WatermarkReport.from_dict(d.pop("watermark"))

        c2pa = C2PaReport.from_dict(d.pop("c2pa"))

        def _parse_generation_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        generation_id = _parse_generation_id(d.pop("generation_id"))

        def _parse_digital_source_type(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        digital_source_type = _parse_digital_source_type(d.pop("digital_source_type"))

        made_by_this_service = d.pop("made_by_this_service")

        def _parse_found_by(data: object) -> None | VerifyResponseFoundByType0:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                found_by_type_0 = VerifyResponseFoundByType0(data)

                return found_by_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | VerifyResponseFoundByType0, data)

        found_by = _parse_found_by(d.pop("found_by"))

        def _parse_audit(data: object) -> None | Unset | VerifyAudit:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                audit_type_0 = VerifyAudit.from_dict(data)

                return audit_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | VerifyAudit, data)

        audit = _parse_audit(d.pop("audit", UNSET))

        def _parse_training_mining(data: object) -> None | Unset | VerifyResponseTrainingMiningType0:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                training_mining_type_0 = VerifyResponseTrainingMiningType0(data)

                return training_mining_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | VerifyResponseTrainingMiningType0, data)

        training_mining = _parse_training_mining(d.pop("training_mining", UNSET))

        def _parse_licence(data: object) -> None | PaperLicence | SignedLicence | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                licence_type_0_type_0 = SignedLicence.from_dict(data)

                return licence_type_0_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                licence_type_0_type_1 = PaperLicence.from_dict(data)

                return licence_type_0_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PaperLicence | SignedLicence | Unset, data)

        licence = _parse_licence(d.pop("licence", UNSET))

        verify_response = cls(
            format_=format_,
            width=width,
            height=height,
            watermark=watermark,
            c2pa=c2pa,
            generation_id=generation_id,
            digital_source_type=digital_source_type,
            made_by_this_service=made_by_this_service,
            found_by=found_by,
            audit=audit,
            training_mining=training_mining,
            licence=licence,
        )

        verify_response.additional_properties = d
        return verify_response

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
