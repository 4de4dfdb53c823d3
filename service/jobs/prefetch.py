"""Prefetch hints: ask a renderer to bring twins' adapters to its device while earlier work runs.

Owns: when the gateway hints (`PrefetchHints.hint`, called as the dispatcher leases a group
of catalogue items and as a synchronous request is admitted) and sending the hints. A hint
goes out only while a render call of this gateway is in flight (`calling()` counts them):
then the new work will wait behind it, and the renderer loads the twin's adapter through its
tiers (store or disk, host, device) meanwhile. With nothing in flight the render call itself
goes at once, and the renderer starts its adapters' loads on arrival, overlapping its prompt
encoding (`service.engine.adapter_loads`), so a hint would add nothing. A twin hinted in the
last `fresh_s` seconds is not hinted again; the renderer answers a hint for an adapter
already in its device tier at once. Hints go out on one background thread through
`RenderClient.prefetch` (answered beside a running render: `service.renderer.service`) and
never block, fail or delay a request: one that cannot be sent is dropped (a debug log line).
A hint reaches whichever renderer worker answers it; with several workers or replicas it may
miss the one that renders the twin, which then loads on arrival as without hints. Must never
render, decide anything about a request, or hold more of it than its twin ids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from service.rendering import RenderClient

log = logging.getLogger("atelier.prefetch")


class PrefetchHints:
    def __init__(self, client: RenderClient, *, fresh_s: float = 10.0, wait_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.fresh_s, self.wait_s, self.clock = fresh_s, wait_s, clock
        self.in_flight = 0
        self.sent = 0  # hint calls made (for tests and logs)
        self.answers: dict[str, str] = {}  # twin id -> the tier the renderer last said served it
        self._pending: list[str] = []
        self._hinted: dict[str, float] = {}  # twin id -> when it was last queued
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def calling(self) -> Iterator[None]:
        """Around a render call: while any is in flight, hints go out."""
        with self._cond:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= 1

    def hint(self, twin_ids: Iterable[str | None]) -> list[str]:
        """Queue a prefetch of these twins' adapters if a render call is in flight and they
        were not hinted within `fresh_s`; returns the twin ids queued. Never blocks."""
        with self._cond:
            if self._closed or self.in_flight == 0:
                return []
            now = self.clock()
            queued = [t for t in dict.fromkeys(twin_ids) if t is not None and t not in self._pending
                      and now - self._hinted.get(t, -self.fresh_s) >= self.fresh_s]
            if not queued:
                return []
            for twin_id in queued:
                self._hinted[twin_id] = now
            self._pending.extend(queued)
            if len(self._hinted) > 4096:  # forget the oldest: a bounded memory of what was hinted
                for twin_id in sorted(self._hinted, key=self._hinted.get)[:2048]:
                    del self._hinted[twin_id]
            if self._thread is None:
                self._thread = threading.Thread(target=self._send, name="atelier-prefetch-hints", daemon=True)
                self._thread.start()
            self._cond.notify()
        return queued

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _send(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                twin_ids, self._pending = self._pending, []
            try:
                answer = self.client.prefetch(twin_ids, wait_s=self.wait_s)
                self.answers.update(answer.results)
            except Exception as exc:  # noqa: BLE001 - a hint is an optimisation; the render call loads it
                log.debug("prefetch hint not sent", extra={"fields": {"twins": twin_ids, "error": type(exc).__name__}})
            finally:
                self.sent += 1


__all__ = ["PrefetchHints"]
