"""Revocation on every replica: drop a revoked twin's adapter and stop its in-flight work.

Owns: a background thread that polls the registry version (every `ATELIER_REGISTRY_POLL_MS`)
and, when it changes, hands each newly revoked twin to a callback (the engine evicts its
adapter from every cache tier and the slot), and the sets that running generations check
between denoising steps: the revoked twin ids, and the ids of the licences a person ended
within `LICENCE_WINDOW` (longer than any render lives: a gateway's seal expires in minutes),
so a generation admitted under a licence stops at its next step once the person ends it. Must
never decide consent for a new request:
that reads the database itself (`consent.ConsentGate`), so a revocation stops new requests
on every replica the moment it is committed, and this poll only bounds how long an
in-flight generation or a cached adapter outlives it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from service.registry import Registry, TwinInfo
from service.tenancy.consent import ConsentDenied

log = logging.getLogger("atelier.revocation")
LICENCE_WINDOW = timedelta(hours=24)


IN_FLIGHT = " (while the image was being generated; it was not delivered)"


def licence_ended() -> ConsentDenied:
    """The error of an item whose licence the person ended while it rendered."""
    return ConsentDenied("licence_revoked", IN_FLIGHT)


class RevocationWatcher:
    def __init__(self, registry: Registry, on_revoked: Callable[[TwinInfo], None], interval_s: float = 0.5):
        self.registry = registry
        self.on_revoked = on_revoked
        self.interval_s = interval_s
        self.revoked: frozenset[str] = frozenset()
        self.revoked_licences: frozenset[str] = frozenset()
        self._seen_version: int | None = None
        self._handled: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()  # the thread and an admin call may poll at once

    def poll_once(self) -> list[TwinInfo]:
        """Handle twins revoked since the last poll; returns them."""
        with self._poll_lock:
            return self._poll()

    def _poll(self) -> list[TwinInfo]:
        version = self.registry.db.version()
        if version == self._seen_version:
            return []
        revoked = self.registry.twins.revoked_twins()
        self.revoked = frozenset(t.id for t in revoked)
        self.revoked_licences = self.registry.licences.revoked_since(self.registry.db.now() - LICENCE_WINDOW)
        fresh = [t for t in revoked if (t.id, t.revision) not in self._handled]
        for twin in fresh:
            self.on_revoked(twin)
            self._handled.add((twin.id, twin.revision))
            log.info("twin revoked", extra={"fields": {"twin_id": twin.id, "deleted": twin.deleted}})
        self._seen_version = version
        return fresh

    def guard(self, twin_id: str | None) -> Callable[[], None] | None:
        """A between-steps check for a generation of `twin_id`: raises once it is revoked."""
        if twin_id is None:
            return None

        def check() -> None:
            if twin_id in self.revoked:
                raise ConsentDenied("revoked", IN_FLIGHT)

        return check

    def licence_revoked(self, licence_id: str | None) -> bool:
        """Whether the person ended this licence (within `LICENCE_WINDOW`)."""
        return licence_id is not None and licence_id in self.revoked_licences

    def start(self) -> None:
        self.poll_once()  # revocations from before this process started are applied first
        self._thread = threading.Thread(target=self._run, name="atelier-revocation", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll_once()
            except Exception:  # a database hiccup must not kill the watcher; the next poll retries
                log.exception("revocation poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
