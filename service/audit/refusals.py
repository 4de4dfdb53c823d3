"""Refusals of unauthenticated requests, recorded compactly: a flood cannot flood the audit log.

Owns: the ledger of requests refused before any API key was accepted (missing or invalid key,
unknown route, oversized or malformed body, a source refused outright). The first refusal of
each kind (status, code, route) from a source in a minute is recorded at once, as a compact
`refused_at_edge` record (route, code, field, client address: never a prompt, body or key);
every refusal, first ones included, is counted per source and minute, and each source-minute
with more refusals than first ones gets one `refused_unauthenticated` summary record with its
counts by kind when the minute is over (flushed by a timer, by the next refusal, and at
close). So N keyless requests from one source cost O(kinds) records a minute, not N.

Routes are normalised to the service's own (`known_routes`; anything else is `(unmatched)`),
kinds per source and sources per minute are capped (the rest count under `(other)`), so the
ledger's memory and records stay bounded whatever an attacker sends.

Trade-off: counts of a minute not yet flushed are lost if the process dies (the first refusal
of each kind is already durable). Must never record a request that was authenticated (those
get a full record from the route or the error handler) and never hold a body.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from service.audit.events import edge_refusal_event
from service.errors import AtelierError

log = logging.getLogger("atelier.audit")

UNMATCHED = "(unmatched)"
OTHER = "(other)"


class RefusalLedger:
    def __init__(self, record: Callable[[dict[str, Any]], Any], *, known_routes: set[str] | None = None,
                 max_sources: int = 10_000, max_kinds: int = 64, clock: Callable[[], float] = time.time):
        self.record = record  # the recorder's append (raises 503 while the log cannot write)
        self.known_routes = known_routes
        self.max_sources = max_sources
        self.max_kinds = max_kinds
        self._clock = clock
        self._lock = threading.Lock()
        self._minute: int | None = None
        self._counts: dict[str, dict[str, int]] = {}  # source -> kind -> count, this minute
        self._firsts: dict[str, int] = {}  # source -> refusals recorded at once, this minute
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.summaries_written = 0

    def route_of(self, path: str) -> str:
        path = path.rstrip("/") or "/"
        if self.known_routes is None or path in self.known_routes:
            return path[:200]
        return UNMATCHED

    def refused(self, path: str, error: AtelierError, client_ip: str | None) -> None:
        """Count one refusal; record it at once when it is the first of its kind this minute."""
        route = self.route_of(path)
        kind = f"{error.status} {error.code} {route}"
        minute = int(self._clock() // 60)
        with self._lock:
            due = self._roll(minute)
            source = client_ip or "-"
            counts = self._counts.get(source)
            if counts is None:
                if len(self._counts) >= self.max_sources:
                    source = OTHER
                counts = self._counts.setdefault(source, {})
            if kind not in counts and len(counts) >= self.max_kinds:
                kind = OTHER
            first = kind not in counts
            counts[kind] = counts.get(kind, 0) + 1
            if first:
                self._firsts[source] = self._firsts.get(source, 0) + 1
        self._write(due)
        if first:
            self.record({**edge_refusal_event(route=route, error=error, client_ip=client_ip), "unauthenticated": True})

    def flush(self, *, everything: bool = False) -> int:
        """Write the summaries of minutes that are over (all of them with `everything`)."""
        with self._lock:
            due = self._roll(None if everything else int(self._clock() // 60))
        return self._write(due)

    def _roll(self, minute: int | None) -> list[dict[str, Any]]:
        """Take the current minute's summaries if `minute` is a later one (or None: always)."""
        if self._minute is not None and minute == self._minute:
            return []
        due = []
        if self._minute is not None:
            stamp = datetime.fromtimestamp(self._minute * 60, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
            for source, counts in self._counts.items():
                total = sum(counts.values())
                if total > self._firsts.get(source, 0):
                    due.append({"event": "refused_unauthenticated", "minute": stamp, "client_ip": source,
                                "total": total, "counts": dict(sorted(counts.items()))})
        self._minute = minute
        self._counts, self._firsts = {}, {}
        return due

    def _write(self, due: list[dict[str, Any]]) -> int:
        for summary in due:
            try:
                self.record(summary)
                self.summaries_written += 1
            except AtelierError:  # the log is unavailable: the counts are lost, and logged
                log.warning("refusal summary not recorded", extra={"fields": {"minute": summary["minute"],
                                                                               "total": summary["total"]}})
        return len(due)

    def start(self, every_s: float = 10.0) -> None:
        def run() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.flush()
                except Exception:  # never kill the flusher
                    log.exception("refusal flush failed")

        self._thread = threading.Thread(target=run, name="audit-refusals", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush(everything=True)
