from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.detect_response_training_mining_type_0 import DetectResponseTrainingMiningType0

if TYPE_CHECKING:
    from ..models.paper_licence import PaperLicence
    from ..models.signed_licence import SignedLicence


T = TypeVar("T", bound="DetectResponse")


@_attrs_define
class DetectResponse:
    """`POST /v1/detect` (public, no key): whether an image carries Atelier's marks, and nothing
    about whose it is: never a tenant, twin, person, generation or watermark id.

        Attributes:
            ai_generated (bool): True when Atelier's watermark or a valid Atelier C2PA manifest says the image was generated
                by AI. False means Atelier found no mark of its own, not that no AI made the image.
            watermark (bool): The image carries Atelier's invisible watermark, of an image this service made (it survives
                re-encoding and metadata stripping).
            c2pa_manifest (bool): The image carries a C2PA manifest that is intact, signed by Atelier's signing certificate
                and trusted.
            digital_source_type (None | str): The IPTC digital source type that Atelier's manifest declares
                (trainedAlgorithmicMedia, or compositeWithTrainedAlgorithmicMedia for an edit); null without one.
            training_mining (DetectResponseTrainingMiningType0 | None): The training and data mining assertion of Atelier's
                manifest; null without one.
            licence (None | PaperLicence | SignedLicence): What licensed the generation, as Atelier's manifest names it
                (opaque ids: a signed licence's id and hash, or a paper consent record's id and version); null without one.
    """

    ai_generated: bool
    watermark: bool
    c2pa_manifest: bool
    digital_source_type: None | str
    training_mining: DetectResponseTrainingMiningType0 | None
    licence: None | PaperLicence | SignedLicence
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.paper_licence import PaperLicence
        from ..models.signed_licence import SignedLicence

        ai_generated = self.ai_generated

        watermark = self.watermark

        c2pa_manifest = self.c2pa_manifest

        digital_source_type: None | str
        digital_source_type = self.digital_source_type

        training_mining: None | str
        if isinstance(self.training_mining, DetectResponseTrainingMiningType0):
            training_mining = self.training_mining.value
        else:
            training_mining = self.training_mining

        licence: dict[str, Any] | None
        if isinstance(self.licence, SignedLicence) or isinstance(self.licence, PaperLicence):
            licence = self.licence.to_dict()
        else:
            licence = self.licence

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "ai_generated": ai_generated,
                "watermark": watermark,
                "c2pa_manifest": c2pa_manifest,
                "digital_source_type": digital_source_type,
                "training_mining": training_mining,
                "licence": licence,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.paper_licence import PaperLicence
        from ..models.signed_licence import SignedLicence

        d = dict(src_dict)
        ai_generated = d.pop("ai_generated")

        watermark = d.pop("watermark")

        c2pa_manifest = d.pop("c2pa_manifest")

        def _parse_digital_source_type(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        digital_source_type = _parse_digital_source_type(d.pop("digital_source_type"))

        def _parse_training_mining(data: object) -> DetectResponseTrainingMiningType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                training_mining_type_0 = DetectResponseTrainingMiningType0(data)

                return training_mining_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DetectResponseTrainingMiningType0 | None, data)

        training_mining = _parse_training_mining(d.pop("training_mining"))

        def _parse_licence(data: object) -> None | PaperLicence | SignedLicence:
            if data is None:
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
            return cast(None | PaperLicence | SignedLicence, data)

        licence = _parse_licence(d.pop("licence"))

        detect_response = cls(
            ai_generated=ai_generated,
            watermark=watermark,
            c2pa_manifest=c2pa_manifest,
            digital_source_type=digital_source_type,
            training_mining=training_mining,
            licence=licence,
        )

        detect_response.additional_properties = d
        return detect_response

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
