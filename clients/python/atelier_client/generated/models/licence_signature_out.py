from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.licence_signature_out_decision import LicenceSignatureOutDecision
from ..models.licence_signature_out_role import LicenceSignatureOutRole

T = TypeVar("T", bound="LicenceSignatureOut")


@_attrs_define
class LicenceSignatureOut:
    """
    Attributes:
        role (LicenceSignatureOutRole):
        decision (LicenceSignatureOutDecision):
        public_key (str):
        signature (str):
        signed_at (str):
    """

    role: LicenceSignatureOutRole
    decision: LicenceSignatureOutDecision
    public_key: str
    signature: str
    signed_at: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        role = self.role.value

        decision = self.decision.value

        public_key = self.public_key

        signature = self.signature

        signed_at = self.signed_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "role": role,
                "decision": decision,
                "public_key": public_key,
                "signature": signature,
                "signed_at": signed_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        role = LicenceSignatureOutRole(d.pop("role"))

        decision = LicenceSignatureOutDecision(d.pop("decision"))

        public_key = d.pop("public_key")

        signature = d.pop("signature")

        signed_at = d.pop("signed_at")

        licence_signature_out = cls(
            role=role,
            decision=decision,
            public_key=public_key,
            signature=signature,
            signed_at=signed_at,
        )

        licence_signature_out.additional_properties = d
        return licence_signature_out

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
