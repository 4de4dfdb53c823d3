"""Registering and revoking a twin's adapter.

Owns: the order of a registration (validate -> write adapter -> write record), so that a
twin record never points at an adapter the slot cannot take, and a refused upload leaves
nothing behind; and the order of a revocation (registry first, then the file on request).
Must never touch the pipeline's weights.
"""

from __future__ import annotations

import hashlib

from service.errors import AdapterUnavailable, AtelierError, InvalidRequest
from service.registry import Registry, TwinInfo
from service.twins import TwinAdapters
from service.twins.records import TwinRecord, check_twin_id
from service.twins.slot import AdapterIncompatible, safetensors_metadata
from service.twins.store import AdapterStore, check_adapter_key, parse_adapter


def register_twin(
    twins: TwinAdapters,
    twin_id: str,
    display_name: str | None,
    data: bytes | None = None,
    adapter_key: str | None = None,
) -> tuple[TwinRecord, TwinRecord | None]:
    """Add or update a twin from uploaded bytes or an existing store key; returns (new, previous)."""
    check_twin_id(twin_id)
    if (data is None) == (adapter_key is None):
        raise InvalidRequest("send exactly one of an adapter file upload or an adapter_key", field="adapter")
    field = "adapter" if data is not None else "adapter_key"
    try:
        if adapter_key is not None:
            check_adapter_key(adapter_key)
            data = twins.store.read_bytes(adapter_key)
        sha256 = hashlib.sha256(data).hexdigest()
        state_dict = parse_adapter(data, sha256, f"twin {twin_id!r}")
    except AdapterUnavailable as exc:  # the caller's file or key is at fault: a 422, not a 503
        raise AdapterIncompatible(exc.message, field=field) from None
    prepared = twins.slot.prepare(state_dict, sha256, safetensors_metadata(data))  # refuses misfits
    if adapter_key is None:
        adapter_key = f"{twin_id}/{sha256}.safetensors"
        twins.store.write_bytes(adapter_key, data)
    try:
        previous = twins.catalog.get(twin_id)
    except AtelierError:  # no twin yet, or an unreadable record that this one replaces
        previous = None
    record = TwinRecord(
        id=twin_id,
        display_name=(display_name or (previous.display_name if previous else twin_id))[:200],
        adapter_path=adapter_key,
        sha256=sha256,
        rank=prepared.rank,
    )
    twins.catalog.put(record)
    return record, previous


def revoke_twin(registry: Registry, store: AdapterStore, twin_id: str, *, delete: bool = False) -> TwinInfo:
    """Revoke a twin's consent in the registry (final; every replica stops serving it) and,
    with `delete`, remove its adapter file from the store unless another live twin uses the
    same key. Cache tiers are emptied by each replica's revocation watcher."""
    check_twin_id(twin_id)
    info = registry.revoke_twin(twin_id, delete=delete)
    if delete and info.adapter_key and not any(t.adapter_key == info.adapter_key for t in registry.list_twins()):
        store.delete(info.adapter_key)
    return info
