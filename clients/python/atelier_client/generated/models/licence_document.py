from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.licence_document_licence import LicenceDocumentLicence
    from ..models.licence_signature_out import LicenceSignatureOut


T = TypeVar("T", bound="LicenceDocument")


@_attrs_define
class LicenceDocument:
    """A signed licence, checkable offline with `atelier licence verify FILE`.

    Attributes:
        licence (LicenceDocumentLicence):
        sha256 (str):
        status (str):
        signatures (list[LicenceSignatureOut]):
    """

    licence: LicenceDocumentLicence
    sha256: str
    status: str
    signatures: list[LicenceSignatureOut]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        licence = self.licence.to_dict()

        sha256 = self.sha256

        status = self.status

        signatures = []
        for signatures_item_data in self.signatures:
            signatures_item = signatures_item_data.to_dict()
            signatures.append(signatures_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "licence": licence,
                "sha256": sha256,
                "status": status,
                "signatures": signatures,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.licence_document_licence import LicenceDocumentLicence
        from ..models.licence_signature_out import LicenceSignatureOut

        d = dict(src_dict)
        licence = LicenceDocumentLicence.from_dict(d.pop("licence"))

        sha256 = d.pop("sha256")

        status = d.pop("status")

        signatures = []
        _signatures = d.pop("signatures")
        for signatures_item_data in _signatures:
            signatures_item = LicenceSignatureOut.from_dict(signatures_item_data)

            signatures.append(signatures_item)

        licence_document = cls(
            licence=licence,
            sha256=sha256,
            status=status,
            signatures=signatures,
        )

        licence_document.additional_properties = d
        return licence_document

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
