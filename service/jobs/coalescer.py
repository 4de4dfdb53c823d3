"""Synchronous generations that arrive together share one render call: the gateway's coalescer.

Owns: merging the render calls of synchronous generations (`/v1/generate`, Studio) that arrive
within `window_s` (ATELIER_COALESCE_MS, a few ms; 0 turns it off) and share a shape, for any
twins and tenants, into one call of at most `max_items` items (ATELIER_DISPATCH_BATCH) naming
at most `lanes` distinct twins (ATELIER_SLOT_LANES; 1 under TensorRT), so the renderer runs
them as one pipeline batch, each row reading its twin's lane; and handing each caller its
own items' outcomes. While none of this gateway's render calls is in flight, a call goes at
once (an idle renderer is never kept waiting: a lone request pays no window); while one is,
the first call of a shape waits the window (or until its call is full) and sends it, and
calls that join meanwhile wait for that one answer. Each caller has admitted
and sealed its own items before, and re-checks consent, marks, indexes and audits them
after (`service.gateway.generation`): the coalescer only carries sealed items, so every
item keeps its own outcome, and an error of the call (a renderer that stays unavailable) is
every member's, each recording it. Streamed calls (live progress) and edits are passed
through alone. It is a `RenderClient`: the cache calls pass straight through.

Why not BentoML's adaptive batching (`@bentoml.api(batchable=True)`) on the renderer's render
API, which was considered first: it batches at the renderer's door, and
  * that door is behind BentoML's concurrency limit (ATELIER_RENDERER_CONCURRENCY, 1 per GPU
    worker: a call beyond it is answered 429 at once, for the gateway to retry elsewhere, so
    load stays visible to the autoscaler) and, on CPU or with several workers, behind the
    accept gate: concurrent calls never reach the batcher, and raising the limit would queue
    calls behind a busy GPU, which the design forbids;
  * a batchable API takes one list argument split along a batch dimension, so a render call
    would become a list of sealed items from different callers, and BentoML's batch fails as
    one: one expired or forged seal (which refuses a whole call) or one error would fail
    every caller merged with it;
  * its batches are cut by size and latency only: they know neither shapes (one pipeline
    batch needs one size, step count and guidance) nor the slot's lane limit on distinct twins;
  * a streaming (generator) API cannot be batchable, and Studio's progress stream is one;
  * the per-call costs to save are the gateway's (the render hop, the window slot the
    autoscaler sees): merged at the renderer, N callers still make N hops and hold N slots.
So the gateway merges calls before they leave, here. Must never admit, seal, audit or decide
anything about an item, and never merge an item into a call it does not fit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from service.config import Settings
from service.errors import AtelierError
from service.rendering import (MAX_BATCH_ITEMS, CacheState, Evicted, Prefetched, RenderBatch, RenderBatchResult,
                               RenderClient, RenderItem, group_key)


def shape_key(item: RenderItem) -> tuple | None:
    """Items with equal keys may share a pipeline batch whatever their twins; None: never
    merged (an edit runs alone). Items reading a tenant's stored images (garments, a pose
    image) merge only with the same tenant's, as the renderer batches them
    (`service.renderer.batching`)."""
    if item.edit is not None:
        return None
    request = item.request
    key = group_key(request)[1:]
    if request.garments or (request.pose is not None and request.pose.asset_id is not None):
        key += (item.tenant_id,)
    return key


@dataclass
class Gathering:
    """One render call being gathered: its items, their twins, and, once sent, its answer."""

    key: tuple
    items: list[RenderItem]
    twins: set[str]
    wait_s: float
    callers: int = 1
    closed: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    result: RenderBatchResult | None = None
    error: BaseException | None = None


class RenderCoalescer:
    """A `RenderClient` over `client` that merges concurrent `render` calls (see the module doc)."""

    def __init__(self, client: RenderClient, window_s: float, *, lanes: int, max_items: int,
                 clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.window_s = window_s
        self.lanes = max(1, lanes)
        self.max_items = max(1, min(max_items, MAX_BATCH_ITEMS))
        self.clock = clock
        self.calls = 0  # render calls sent (for tests and the bench)
        self.merged = 0  # render calls that carried more than one caller's items
        self.in_flight = 0  # render calls sent and not answered yet
        self._open: dict[tuple, list[Gathering]] = {}
        self._cond = threading.Condition()

    @classmethod
    def from_settings(cls, settings: Settings, client: RenderClient) -> "RenderCoalescer | None":
        """The coalescer the settings ask for; None when ATELIER_COALESCE_MS is 0."""
        if settings.coalesce_ms <= 0:
            return None
        return cls(client, settings.coalesce_ms / 1000, lanes=settings.dispatch_lanes, max_items=settings.dispatch_batch)

    def render(self, batch: RenderBatch, *, wait_s: float, stop: threading.Event | None = None) -> RenderBatchResult:
        keys = {shape_key(item) for item in batch.items}
        twins = {item.request.twin_id for item in batch.items if item.request.twin_id is not None}
        if len(keys) != 1 or None in keys or len(batch.items) >= self.max_items or len(twins) > self.lanes:
            return self._send(batch, wait_s, stop)  # passes through alone
        gathering, leader = self._join(keys.pop(), list(batch.items), twins, wait_s)
        if leader:
            self._lead(gathering, stop)
        else:
            gathering.done.wait()
        if gathering.error is not None:
            raise gathering.error
        assert gathering.result is not None
        return mine(gathering.result, batch.items)

    def _join(self, key: tuple, items: list[RenderItem], twins: set[str], wait_s: float) -> tuple[Gathering, bool]:
        """Join an open call of this shape that has room for these items and twins, or open one."""
        with self._cond:
            for gathering in self._open.get(key, []):
                if len(gathering.items) + len(items) > self.max_items or len(gathering.twins | twins) > self.lanes:
                    continue
                gathering.items.extend(items)
                gathering.twins |= twins
                gathering.wait_s = max(gathering.wait_s, wait_s)
                gathering.callers += 1
                if len(gathering.items) >= self.max_items:
                    self._close(gathering)
                return gathering, False
            gathering = Gathering(key, items, set(twins), wait_s)
            self._open.setdefault(key, []).append(gathering)
            return gathering, True

    def _lead(self, gathering: Gathering, stop: threading.Event | None) -> None:
        """Wait the window (or until the call is full), then send it for everyone in it; with no
        call of this gateway in flight, send it at once."""
        deadline = self.clock() + (self.window_s if self.in_flight else 0.0)
        with self._cond:
            while not gathering.closed and (left := deadline - self.clock()) > 0:
                self._cond.wait(left)
            self._close(gathering)
        try:
            gathering.result = self._send(RenderBatch(items=gathering.items), gathering.wait_s, stop,
                                          merged=gathering.callers > 1)
        except BaseException as exc:  # noqa: BLE001 - every member gets it, and records it itself
            gathering.error = exc
        finally:
            gathering.done.set()

    def _close(self, gathering: Gathering) -> None:
        """No one joins it any more (lock held)."""
        if gathering.closed:
            return
        gathering.closed = True
        waiting = self._open.get(gathering.key, [])
        if gathering in waiting:
            waiting.remove(gathering)
        if not waiting:
            self._open.pop(gathering.key, None)
        self._cond.notify_all()

    def _send(self, batch: RenderBatch, wait_s: float, stop: threading.Event | None,
              merged: bool = False) -> RenderBatchResult:
        with self._cond:
            self.calls += 1
            self.merged += int(merged)
            self.in_flight += 1
        try:
            return self.client.render(batch, wait_s=wait_s, stop=stop)
        finally:
            with self._cond:
                self.in_flight -= 1

    # -- passed through ----------------------------------------------------------------------

    def render_streaming(self, batch: RenderBatch, *, wait_s: float, on_progress: Callable[[int, int], None],
                         stop: threading.Event | None = None) -> RenderBatchResult:
        return self.client.render_streaming(batch, wait_s=wait_s, on_progress=on_progress, stop=stop)

    def cache_state(self, *, wait_s: float) -> CacheState:
        return self.client.cache_state(wait_s=wait_s)

    def evict(self, twin_id: str, *, wait_s: float) -> Evicted:
        return self.client.evict(twin_id, wait_s=wait_s)

    def prefetch(self, twin_ids: list[str], *, wait_s: float) -> Prefetched:
        return self.client.prefetch(twin_ids, wait_s=wait_s)


def mine(result: RenderBatchResult, items: list[RenderItem]) -> RenderBatchResult:
    """The part of a merged call's answer that answers `items`, in their order."""
    by_id = {outcome.generation_id: outcome for outcome in result.outcomes}
    missing = [item.generation_id for item in items if item.generation_id not in by_id]
    if missing:
        raise AtelierError(f"the renderer's answer lacks {len(missing)} of the call's items")
    return result.model_copy(update={"outcomes": [by_id[item.generation_id] for item in items]})


__all__ = ["RenderCoalescer", "shape_key"]
