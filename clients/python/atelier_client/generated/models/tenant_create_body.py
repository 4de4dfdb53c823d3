from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="TenantCreateBody")


@_attrs_define
class TenantCreateBody:
    """
    Attributes:
        tenant_id (str):
        name (str):
    """

    tenant_id: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        name = self.name

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenant_id": tenant_id,
                "name": name,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        name = d.pop("name")

        tenant_create_body = cls(
            tenant_id=tenant_id,
            name=name,
        )

        return tenant_create_body
