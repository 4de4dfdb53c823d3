from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ApiKey")


@_attrs_define
class ApiKey:
    """An API key as operators see it: never its secret.

    Attributes:
        key_id (str):
        tenant_id (str):
        name (str):
        scopes (list[str]):
        requests_per_minute (int):
        max_concurrent_jobs (int):
        created_at (str):
        revoked_at (None | str):
        last_used_at (None | str):
        twin_ids (list[str] | None | Unset):
    """

    key_id: str
    tenant_id: str
    name: str
    scopes: list[str]
    requests_per_minute: int
    max_concurrent_jobs: int
    created_at: str
    revoked_at: None | str
    last_used_at: None | str
    twin_ids: list[str] | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        key_id = self.key_id

        tenant_id = self.tenant_id

        name = self.name

        scopes = self.scopes

        requests_per_minute = self.requests_per_minute

        max_concurrent_jobs = self.max_concurrent_jobs

        created_at = self.created_at

        revoked_at: None | str
        revoked_at = self.revoked_at

        last_used_at: None | str
        last_used_at = self.last_used_at

        twin_ids: list[str] | None | Unset
        if isinstance(self.twin_ids, Unset):
            twin_ids = UNSET
        elif isinstance(self.twin_ids, list):
            twin_ids = self.twin_ids

        else:
            twin_ids = self.twin_ids

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key_id": key_id,
                "tenant_id": tenant_id,
                "name": name,
                "scopes": scopes,
                "requests_per_minute": requests_per_minute,
                "max_concurrent_jobs": max_concurrent_jobs,
                "created_at": created_at,
                "revoked_at": revoked_at,
                "last_used_at": last_used_at,
            }
        )
        if twin_ids is not UNSET:
            field_dict["twin_ids"] = twin_ids

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        key_id = d.pop("key_id")

        tenant_id = d.pop("tenant_id")

        name = d.pop("name")

        scopes = cast(list[str], d.pop("scopes"))

        requests_per_minute = d.pop("requests_per_minute")

        max_concurrent_jobs = d.pop("max_concurrent_jobs")

        created_at = d.pop("created_at")

        def _parse_revoked_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        revoked_at = _parse_revoked_at(d.pop("revoked_at"))

        def _parse_last_used_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        last_used_at = _parse_last_used_at(d.pop("last_used_at"))

        def _parse_twin_ids(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                twin_ids_type_0 = cast(list[str], data)

                return twin_ids_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        twin_ids = _parse_twin_ids(d.pop("twin_ids", UNSET))

        api_key = cls(
            key_id=key_id,
            tenant_id=tenant_id,
            name=name,
            scopes=scopes,
            requests_per_minute=requests_per_minute,
            max_concurrent_jobs=max_concurrent_jobs,
            created_at=created_at,
            revoked_at=revoked_at,
            last_used_at=last_used_at,
            twin_ids=twin_ids,
        )

        api_key.additional_properties = d
        return api_key

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
