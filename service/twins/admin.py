"""Registering and revoking a twin's adapter (on the gateway: no torch, no pipeline).

Owns: the order of a registration (validate -> bytes not bound to another twin -> likeness
fingerprint not within the threshold of another person's twin, live or revoked, unless an
admin names that person's twin in `same_person_as` -> write adapter -> write record, the
likeness decided again in the record's transaction), so that a twin record never points at a
file the slot cannot take, and a refused upload leaves nothing behind; and the order of a
revocation (registry first: the twin and every twin of the same likeness: the same bytes, a
fingerprint within the threshold, or linked as the same person; then, on request, the bytes
under every key any of them used). Twins without a fingerprint (older databases, the demo
build) are fingerprinted from the store first (`service.twins.likeness.ensure_fingerprints`).
The file is checked from its header (`service.twins.validate`); the fit to the base model's
layer sizes is checked by the renderer at first load. Must never touch the pipeline's weights.
"""

from __future__ import annotations

import hashlib

from service.errors import AdapterUnavailable, AtelierError, InvalidRequest
from service.registry import Registry, TwinInfo
from service.registry.errors import AdapterInUse
from service.registry.likeness import check_registration, registration_guard, revocation_related
from service.twins import likeness
from service.twins.records import TwinCatalog, TwinRecord, check_twin_id
from service.twins.store import AdapterStore, check_adapter_key
from service.twins.validate import AdapterIncompatible, check_adapter_file


def register_twin(
    catalog: TwinCatalog,
    store: AdapterStore,
    slot_rank: int,
    slot_targets: tuple[str, ...],
    twin_id: str,
    display_name: str | None,
    data: bytes | None = None,
    adapter_key: str | None = None,
    same_person_as: str | None = None,
) -> tuple[TwinRecord, TwinRecord | None]:
    """Add or update a twin from uploaded bytes or an existing store key; returns (new, previous).
    An adapter within the likeness threshold of another person's twin is refused (409
    `likeness_in_use`) unless `same_person_as` names that person's twin (an admin's explicit
    statement): then the new twin joins that twin's likeness group, and is revoked with it."""
    check_twin_id(twin_id)
    if same_person_as is not None:
        check_twin_id(same_person_as)
    if (data is None) == (adapter_key is None):
        raise InvalidRequest("send exactly one of an adapter file upload or an adapter_key", field="adapter")
    field = "adapter" if data is not None else "adapter_key"
    try:
        if adapter_key is not None:
            check_adapter_key(adapter_key)
            data = store.read_bytes(adapter_key)
    except AdapterUnavailable as exc:  # the caller's key is at fault: a 422, not a 503
        raise AdapterIncompatible(exc.message, field=field) from None
    sha256 = hashlib.sha256(data).hexdigest()
    layout = check_adapter_file(data, max_rank=slot_rank, targets=slot_targets, field=field)  # refuses misfits
    bound = [t for t in catalog.registry.twins.twins_with_adapter(sha256) if t.id != twin_id]
    if bound:  # checked again in the registry's transaction; this keeps a refused upload from being written
        state = "a revoked twin" if bound[0].revoked_at is not None or bound[0].deleted else "another twin"
        raise AdapterInUse(f"these adapter bytes are bound to {state} (one likeness, one twin); "
                           "a person's twin is registered once", field=field)
    fingerprint = likeness.fingerprint_adapter(data, field=field).to_bytes()
    likeness.ensure_fingerprints(catalog.registry.twins, store)
    check_registration(catalog.registry.twins, twin_id, likeness.SCHEME, fingerprint, likeness.THRESHOLD, same_person_as)
    if adapter_key is None:
        adapter_key = f"{twin_id}/{sha256}.safetensors"
        store.write_bytes(adapter_key, data)
    try:
        previous = catalog.get(twin_id)
    except AtelierError:  # no twin yet, or an unreadable record that this one replaces
        previous = None
    record = TwinRecord(
        id=twin_id,
        display_name=(display_name or (previous.display_name if previous else twin_id))[:200],
        adapter_path=adapter_key,
        sha256=sha256,
        rank=layout.rank,
    )
    catalog.registry.twins.put_twin(  # as catalog.put, with the likeness decided in the same transaction
        record.id, display_name=record.display_name, adapter_key=record.adapter_path, adapter_sha256=record.sha256,
        rank=record.rank or 1,
        within=registration_guard(likeness.SCHEME, fingerprint, likeness.THRESHOLD, same_person_as))
    return record, previous


def revoke_twin(registry: Registry, store: AdapterStore, twin_id: str, *, delete: bool = False) -> TwinInfo:
    """Revoke a twin's consent in the registry (final; every replica stops serving it), and
    with it every twin of the same likeness: the same adapter bytes, a fingerprint within
    the threshold, or linked as the same person (to a fixed point).
    With `delete`, the bytes leave the store under every key those twins used: no live twin
    can still use them, since they are all revoked. Cache tiers are emptied by each replica's
    revocation watcher."""
    check_twin_id(twin_id)
    likeness.ensure_fingerprints(registry.twins, store)
    revoked = registry.twins.revoke_likeness(twin_id, delete=delete,
                                             related=revocation_related(likeness.SCHEME, likeness.THRESHOLD))
    if delete:
        for key in sorted({t.adapter_key for t in revoked if t.adapter_key}):
            if not any(t.adapter_key == key for t in registry.twins.list_twins()):  # a live twin of other bytes
                store.delete(key)
    return revoked[0]
