from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="TenantDisableBody")


@_attrs_define
class TenantDisableBody:
    """
    Attributes:
        tenant_id (str):
        disabled (bool | Unset):  Default: True.
    """

    tenant_id: str
    disabled: bool | Unset = True

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        disabled = self.disabled

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenant_id": tenant_id,
            }
        )
        if disabled is not UNSET:
            field_dict["disabled"] = disabled

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        disabled = d.pop("disabled", UNSET)

        tenant_disable_body = cls(
            tenant_id=tenant_id,
            disabled=disabled,
        )

        return tenant_disable_body
