"""Telling a valid API key from a forged one without a query: what lets a valid key through a
source whose failed-authentication budget is spent.

Owns: an in-memory snapshot of every usable key's id, salt and salted secret hash (never a
secret: the registry holds no more), taken at start and, while it is being asked (a
well-formed key reached it in the last `active_s`, i.e. some source is over its budget),
again whenever the registry version changes (a background poll every `interval_s`: one
`SELECT` of the version, the key table only when it changed; an idle index runs no query),
and `vouches(token)`: parse, look up, one HMAC, compared in constant time (an unknown key id
still costs one HMAC). It costs microseconds and no database work,
so it can run in the event loop for every request of a refused source, and a flood of
well-formed but wrong keys (`atl_<any id>_<any secret>`) costs an attacker as much as a keyless
one and buys nothing: a forged secret never matches.

A vouch is a hint, not an authentication: the request still meets the full key check (and
its revocation, scopes and per-key limits) in its route. While asked, the snapshot lags the
registry by at most one poll; when a spent source first asks after an idle spell, the first
ask wakes the poll at once. So a key minted since may be refused by a spent source for a
moment (429 with Retry-After), and a key revoked a moment ago may be vouched for and is then
refused by its route (401). Memory: about 200 bytes a key (a million keys: some 200 MB; past `max_keys` the
snapshot is not taken, nothing is vouched for, and a warning is logged).
Must never log, keep or return a token, and never write to the registry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time

from service.registry import keys

log = logging.getLogger("atelier.keyindex")
_DUMMY = (b"\x00" * keys.SALT_BYTES, b"\x00" * 32)


class KeyIndex:
    def __init__(self, registry, interval_s: float = 1.0, max_keys: int = 1_000_000, active_s: float = 120.0):
        self.registry = registry
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.active_s = active_s
        self._asked_at = float("-inf")  # when a well-formed key was last asked about
        self._taken_at = float("-inf")  # when the snapshot was last checked against the registry
        self._wake = threading.Event()
        self._verifiers: dict[str, tuple[bytes, bytes]] = {}
        self._version: int | None = None
        self._lock = threading.Lock()  # one refresh at a time (the poller and a caller)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self, *, force: bool = False) -> bool:
        """Take a new snapshot if the registry version changed (or `force`); True if one was taken."""
        with self._lock:
            version = self.registry.db.version()
            self._taken_at = time.monotonic()
            if version == self._version and not force:
                return False
            verifiers = self.registry.tenants.key_verifiers()
            if len(verifiers) > self.max_keys:
                log.warning("too many API keys to index; valid keys are not vouched for while a source is refused",
                            extra={"fields": {"keys": len(verifiers), "max_keys": self.max_keys}})
                verifiers = {}
            self._verifiers, self._version = verifiers, version
            return True

    def vouches(self, token: str | None) -> bool:
        """Whether `token` is a usable key as of the last snapshot (in memory; never a query)."""
        parsed = keys.parse(token) if token else None
        if parsed is None:
            return False
        key_id, secret = parsed
        now = time.monotonic()
        self._asked_at = now
        if now - self._taken_at > self.interval_s:  # idle until now: check the registry at once
            self._wake.set()
        salt, stored = self._verifiers.get(key_id, _DUMMY)
        match = hmac.compare_digest(hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest(), stored)
        return match and key_id in self._verifiers

    def start(self) -> "KeyIndex":
        try:
            self.refresh(force=True)
        except Exception:  # the registry is not reachable yet: the poll retries
            log.exception("key index: first snapshot failed")
        self._thread = threading.Thread(target=self._run, name="atelier-keyindex", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set() or time.monotonic() - self._asked_at > self.active_s:
                continue  # nobody asks: no query
            try:
                self.refresh()
            except Exception:  # a database hiccup must not kill the poller; the next poll retries
                log.exception("key index refresh failed")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
