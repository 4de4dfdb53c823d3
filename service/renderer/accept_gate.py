"""Stop a busy renderer worker from accepting connections, so the next call reaches a free one.

Owns: pausing this worker's listening sockets on its event loop while all its render slots are
taken, and resuming them when one frees. The workers of one replica share one listening
socket, and the kernel does not spread connections among them: it wakes them in a fixed
order, so the first-woken worker accepts every connection, busy or not, and answers 429 while
the others idle (measured with `bench/fanout.py`: 13 of 13 render calls and 11 retries on one
of two workers). A worker that stops watching the socket while busy leaves the next
connection to a free one. Used only when a replica runs several workers (CPU tests and
benches); with one worker per replica the platform's queue admits calls.

Must never close a socket, and never touch a registration other than the loop's listening
servers (found by their accept callback); if the loop does not look as expected it does
nothing, and the worker answers busy calls with 429 as before.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from contextlib import contextmanager

log = logging.getLogger("atelier.renderer")


class AcceptGate:
    """Counts render calls in flight; at `slots` it pauses accepting, below it resumes."""

    def __init__(self, slots: int, loop: asyncio.AbstractEventLoop | None):
        self.slots = max(1, slots)
        self.loop = loop
        self.busy = 0
        self.pauses = 0
        self._lock = threading.Lock()
        self._paused: list[tuple[int, object, tuple]] = []  # (fd, accept callback, its args), on the loop only

    @classmethod
    def for_worker(cls, slots: int, workers: int) -> "AcceptGate | None":
        """A gate for this worker's running loop when its replica has several workers, else None."""
        if workers <= 1:
            return None
        try:
            loop = asyncio.get_running_loop()  # BentoML builds the service on its loop
        except RuntimeError:
            return None
        log.info("accept gate", extra={"fields": {"slots": slots, "workers": workers}})
        return cls(slots, loop)

    @contextmanager
    def taken(self):
        """Hold one render slot for the duration of the block."""
        with self._lock:
            self.busy += 1
            full = self.busy >= self.slots
        if full:
            self._call(self._pause)
        try:
            yield
        finally:
            with self._lock:
                self.busy -= 1
                freed = self.busy < self.slots
            if freed:
                self._call(self._resume)

    def _call(self, action) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(action)
        except RuntimeError:  # the loop is shutting down
            pass

    # -- on the loop -----------------------------------------------------------------------

    def _pause(self) -> None:
        with self._lock:
            if self.busy < self.slots or self._paused:
                return
        try:
            keys = list(self.loop._selector.get_map().values())  # type: ignore[attr-defined]
        except AttributeError:  # not a selector loop (e.g. uvloop): leave admission to 429s
            return
        for key in keys:
            handle = key.data[0] if isinstance(key.data, tuple) else None
            callback = getattr(handle, "_callback", None)
            if getattr(callback, "__name__", "") == "_accept_connection":
                args = tuple(handle._args)  # type: ignore[union-attr]  # before remove_reader cancels the handle
                self.loop.remove_reader(key.fd)
                self._paused.append((key.fd, callback, args))
        self.pauses += 1
        if self.pauses == 1 or not self._paused:  # the first pause, and any that found nothing to pause
            log.info("accepting paused", extra={"fields": {"sockets": len(self._paused), "pauses": self.pauses}})

    def _resume(self) -> None:
        with self._lock:
            if self.busy >= self.slots:
                return
        paused, self._paused = self._paused, []
        for fd, callback, args in paused:
            sock = args[1] if len(args) > 1 else None  # _accept_connection(protocol_factory, sock, ...)
            if not isinstance(sock, socket.socket) or sock.fileno() == -1:  # closed at shutdown meanwhile
                continue
            self.loop.add_reader(fd, callback, *args)
            log.debug("accepting resumed", extra={"fields": {"fd": fd}})
