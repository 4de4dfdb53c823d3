"""Which items of one render call run together, as one pipeline batch.

Owns: `plan_batches`. Items that share a size, step count, guidance and conditioning
(`service.rendering.group_key` but the twin) go into one pipeline batch, in the order they
came, while it holds at most `lanes` distinct twins (the slot's lanes: each row reads its
twin's lane) and at most the backend's image limit for that shape; an item that does not fit
starts another batch. With one lane (the TensorRT backend, whose refit fuses one twin into an
engine, or a slot that cannot mix twins) a batch holds one twin, as before lanes existed. An
edit runs alone. Items that read a tenant's stored images (garments, a pose image) share a
batch only with the same tenant's items, since the batch's conditioning is read once, from
its first item's tenant. Must never render, nor look at seals or consent.
"""

from __future__ import annotations

from collections.abc import Callable

from service.rendering import RenderItem, group_key
from service.schemas import GenerateRequest


def batch_key(item: RenderItem, mixing: bool) -> tuple:
    """Items with equal keys may share a pipeline batch (`mixing`: whatever their twins)."""
    request = item.request
    key = group_key(request, item.edit)
    if mixing:
        key = key[1:]
    if item.edit is not None:
        key += (item.generation_id,)  # edits run alone
    elif request.garments or (request.pose is not None and request.pose.asset_id is not None):
        key += (item.tenant_id,)
    return key


def plan_batches(items: list[RenderItem], *, lanes: int,
                 cap_of: Callable[[GenerateRequest], int | None]) -> list[list[RenderItem]]:
    """The call's pipeline batches, in the order of their first items (see the module doc).
    `cap_of(request)`: the most images one batch of that request's shape may hold (None: no
    limit of the backend's)."""
    batches: list[list[RenderItem]] = []
    by_key: dict[tuple, list[int]] = {}
    for item in items:
        key = batch_key(item, lanes > 1)
        cap = cap_of(item.request)
        twin = item.request.twin_id
        for index in by_key.get(key, []):
            batch = batches[index]
            twins = {i.request.twin_id for i in batch if i.request.twin_id is not None}
            if twin is not None and twin not in twins and len(twins) >= lanes:
                continue
            if cap is not None and sum(i.request.num_images for i in batch) + item.request.num_images > cap:
                continue
            batch.append(item)
            break
        else:
            by_key.setdefault(key, []).append(len(batches))
            batches.append([item])
    return batches


__all__ = ["batch_key", "plan_batches"]
