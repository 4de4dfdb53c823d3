from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.licence_decision_body_decision import LicenceDecisionBodyDecision

T = TypeVar("T", bound="LicenceDecisionBody")


@_attrs_define
class LicenceDecisionBody:
    """
    Attributes:
        licence_id (str):
        decision (LicenceDecisionBodyDecision):
        signature (str): Base64 Ed25519 signature, by the key registered for the caller's role, over
            `atelier.licence/1|<decision>|<role>|<licence sha256>`.
    """

    licence_id: str
    decision: LicenceDecisionBodyDecision
    signature: str

    def to_dict(self) -> dict[str, Any]:
        licence_id = self.licence_id

        decision = self.decision.value

        signature = self.signature

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "licence_id": licence_id,
                "decision": decision,
                "signature": signature,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        licence_id = d.pop("licence_id")

        decision = LicenceDecisionBodyDecision(d.pop("decision"))

        signature = d.pop("signature")

        licence_decision_body = cls(
            licence_id=licence_id,
            decision=decision,
            signature=signature,
        )

        return licence_decision_body
