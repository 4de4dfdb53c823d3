from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="TwinState")


@_attrs_define
class TwinState:
    """A twin as the admin routes show it: one representation for register, list and revoke.

    Attributes:
        id (str):
        display_name (str):
        adapter_key (str): The adapter file's key in the adapter store.
        adapter_sha256 (str): The sha256 of the adapter's bytes (one likeness, one twin).
        rank (int | None):
        revoked_at (None | str | Unset): When the twin was revoked (ISO 8601); null while it may serve.
        deleted (bool | Unset): Revoked with `delete: true`: its adapter bytes left the store. Default: False.
        tiers (list[str] | None | Unset): Cache tiers holding the adapter on the renderer worker asked (device, host,
            disk); null unless asked for.
        in_slot (bool | None | Unset): The adapter is the one in that worker's slot; null unless asked for.
    """

    id: str
    display_name: str
    adapter_key: str
    adapter_sha256: str
    rank: int | None
    revoked_at: None | str | Unset = UNSET
    deleted: bool | Unset = False
    tiers: list[str] | None | Unset = UNSET
    in_slot: bool | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        display_name = self.display_name

        adapter_key = self.adapter_key

        adapter_sha256 = self.adapter_sha256

        rank: int | None
        rank = self.rank

        revoked_at: None | str | Unset
        if isinstance(self.revoked_at, Unset):
            revoked_at = UNSET
        else:
            revoked_at = self.revoked_at

        deleted = self.deleted

        tiers: list[str] | None | Unset
        if isinstance(self.tiers, Unset):
            tiers = UNSET
        elif isinstance(self.tiers, list):
            tiers = self.tiers

        else:
            tiers = self.tiers

        in_slot: bool | None | Unset
        if isinstance(self.in_slot, Unset):
            in_slot = UNSET
        else:
            in_slot = self.in_slot

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "display_name": display_name,
                "adapter_key": adapter_key,
                "adapter_sha256": adapter_sha256,
                "rank": rank,
            }
        )
        if revoked_at is not UNSET:
            field_dict["revoked_at"] = revoked_at
        if deleted is not UNSET:
            field_dict["deleted"] = deleted
        if tiers is not UNSET:
            field_dict["tiers"] = tiers
        if in_slot is not UNSET:
            field_dict["in_slot"] = in_slot

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        display_name = d.pop("display_name")

        adapter_key = d.pop("adapter_key")

        adapter_sha256 = d.pop("adapter_sha256")

        def _parse_rank(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        rank = _parse_rank(d.pop("rank"))

        def _parse_revoked_at(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        revoked_at = _parse_revoked_at(d.pop("revoked_at", UNSET))

        deleted = d.pop("deleted", UNSET)

        def _parse_tiers(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                tiers_type_0 = cast(list[str], data)

                return tiers_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        tiers = _parse_tiers(d.pop("tiers", UNSET))

        def _parse_in_slot(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        in_slot = _parse_in_slot(d.pop("in_slot", UNSET))

        twin_state = cls(
            id=id,
            display_name=display_name,
            adapter_key=adapter_key,
            adapter_sha256=adapter_sha256,
            rank=rank,
            revoked_at=revoked_at,
            deleted=deleted,
            tiers=tiers,
            in_slot=in_slot,
        )

        twin_state.additional_properties = d
        return twin_state

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
