from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.key_create_body_scopes_item import KeyCreateBodyScopesItem
from ..types import UNSET, Unset

T = TypeVar("T", bound="KeyCreateBody")


@_attrs_define
class KeyCreateBody:
    """
    Attributes:
        tenant_id (str):
        scopes (list[KeyCreateBodyScopesItem]):
        name (str | Unset):  Default: ''.
        twin_ids (list[str] | None | Unset): A `talent` key's twins (one person's); only talent keys take them.
        person_id (None | str | Unset): A `talent` key for this person: its twins are the person's (instead of
            `twin_ids`).
        requests_per_minute (int | Unset):  Default: 60.
        max_concurrent_jobs (int | Unset):  Default: 4.
    """

    tenant_id: str
    scopes: list[KeyCreateBodyScopesItem]
    name: str | Unset = ""
    twin_ids: list[str] | None | Unset = UNSET
    person_id: None | str | Unset = UNSET
    requests_per_minute: int | Unset = 60
    max_concurrent_jobs: int | Unset = 4

    def to_dict(self) -> dict[str, Any]:
        tenant_id = self.tenant_id

        scopes = []
        for scopes_item_data in self.scopes:
            scopes_item = scopes_item_data.value
            scopes.append(scopes_item)

        name = self.name

        twin_ids: list[str] | None | Unset
        if isinstance(self.twin_ids, Unset):
            twin_ids = UNSET
        elif isinstance(self.twin_ids, list):
            twin_ids = self.twin_ids

        else:
            twin_ids = self.twin_ids

        person_id: None | str | Unset
        if isinstance(self.person_id, Unset):
            person_id = UNSET
        else:
            person_id = self.person_id

        requests_per_minute = self.requests_per_minute

        max_concurrent_jobs = self.max_concurrent_jobs

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tenant_id": tenant_id,
                "scopes": scopes,
            }
        )
        if name is not UNSET:
            field_dict["name"] = name
        if twin_ids is not UNSET:
            field_dict["twin_ids"] = twin_ids
        if person_id is not UNSET:
            field_dict["person_id"] = person_id
        if requests_per_minute is not UNSET:
            field_dict["requests_per_minute"] = requests_per_minute
        if max_concurrent_jobs is not UNSET:
            field_dict["max_concurrent_jobs"] = max_concurrent_jobs

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        tenant_id = d.pop("tenant_id")

        scopes = []
        _scopes = d.pop("scopes")
        for scopes_item_data in _scopes:
            scopes_item = KeyCreateBodyScopesItem(scopes_item_data)

            scopes.append(scopes_item)

        name = d.pop("name", UNSET)

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

        def _parse_person_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        person_id = _parse_person_id(d.pop("person_id", UNSET))

        requests_per_minute = d.pop("requests_per_minute", UNSET)

        max_concurrent_jobs = d.pop("max_concurrent_jobs", UNSET)

        key_create_body = cls(
            tenant_id=tenant_id,
            scopes=scopes,
            name=name,
            twin_ids=twin_ids,
            person_id=person_id,
            requests_per_minute=requests_per_minute,
            max_concurrent_jobs=max_concurrent_jobs,
        )

        return key_create_body
