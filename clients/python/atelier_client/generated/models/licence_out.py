from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.licence_out_status import LicenceOutStatus

if TYPE_CHECKING:
    from ..models.licence_out_terms import LicenceOutTerms
    from ..models.licence_signature_out import LicenceSignatureOut


T = TypeVar("T", bound="LicenceOut")


@_attrs_define
class LicenceOut:
    """
    Attributes:
        licence_id (str):
        twin_id (str):
        tenant_id (str):
        status (LicenceOutStatus):
        sha256 (str): sha256 of the canonical terms: what every signature covers.
        terms (LicenceOutTerms): The canonical licence terms (schema `atelier.licence/1`).
        requested_at (str):
        decided_at (None | str):
        revoked_at (None | str):
        signatures (list[LicenceSignatureOut]):
    """

    licence_id: str
    twin_id: str
    tenant_id: str
    status: LicenceOutStatus
    sha256: str
    terms: LicenceOutTerms
    requested_at: str
    decided_at: None | str
    revoked_at: None | str
    signatures: list[LicenceSignatureOut]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        licence_id = self.licence_id

        twin_id = self.twin_id

        tenant_id = self.tenant_id

        status = self.status.value

        sha256 = self.sha256

        terms = self.terms.to_dict()

        requested_at = self.requested_at

        decided_at: None | str
        decided_at = self.decided_at

        revoked_at: None | str
        revoked_at = self.revoked_at

        signatures = []
        for signatures_item_data in self.signatures:
            signatures_item = signatures_item_data.to_dict()
            signatures.append(signatures_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "licence_id": licence_id,
                "twin_id": twin_id,
                "tenant_id": tenant_id,
                "status": status,
                "sha256": sha256,
                "terms": terms,
                "requested_at": requested_at,
                "decided_at": decided_at,
                "revoked_at": revoked_at,
                "signatures": signatures,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.licence_out_terms import LicenceOutTerms
        from ..models.licence_signature_out import LicenceSignatureOut

        d = dict(src_dict)
        licence_id = d.pop("licence_id")

        twin_id = d.pop("twin_id")

        tenant_id = d.pop("tenant_id")

        status = LicenceOutStatus(d.pop("status"))

        sha256 = d.pop("sha256")

        terms = LicenceOutTerms.from_dict(d.pop("terms"))

        requested_at = d.pop("requested_at")

        def _parse_decided_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        decided_at = _parse_decided_at(d.pop("decided_at"))

        def _parse_revoked_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        revoked_at = _parse_revoked_at(d.pop("revoked_at"))

        signatures = []
        _signatures = d.pop("signatures")
        for signatures_item_data in _signatures:
            signatures_item = LicenceSignatureOut.from_dict(signatures_item_data)

            signatures.append(signatures_item)

        licence_out = cls(
            licence_id=licence_id,
            twin_id=twin_id,
            tenant_id=tenant_id,
            status=status,
            sha256=sha256,
            terms=terms,
            requested_at=requested_at,
            decided_at=decided_at,
            revoked_at=revoked_at,
            signatures=signatures,
        )

        licence_out.additional_properties = d
        return licence_out

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
