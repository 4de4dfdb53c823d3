"""Spread render calls over the workers of one replica: a busy worker stops accepting, and idle
workers take turns at the shared socket.

Owns: when this worker's listening socket is on its event loop. The workers of one replica
share one listening socket, and the kernel does not spread connections among them: it wakes
them in a fixed order, so the first-woken worker accepts every connection, busy or not, and
answers 429 while the others idle (measured with `bench/fanout.py`: 13 of 13 render calls and
11 retries on one of two workers), and takes every call whenever all are idle. So:

- a worker whose render slots are full takes its socket off its loop until a slot frees, and
  a connection waits in the backlog for a free worker instead;
- idle workers take turns (an accept mutex, as nginx has, on a lock file named after the
  shared socket): only the worker holding the turn listens, and it hands the turn on as soon
  as it takes a render call, so calls rotate over the idle workers.

Used only when a replica runs several workers (CPU tests and benches); with one worker per
replica the platform's queue admits calls. Must never close a socket, and never touch a
registration other than the loop's listening servers (found by their accept callback). If the
loop does not look as expected, or the lock file cannot be used, the worker listens as it
would without the gate.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import tempfile
import threading
from contextlib import contextmanager

log = logging.getLogger("atelier.renderer")


class AcceptGate:
    """Counts render calls in flight; listens only with a free slot (and, taking turns, the turn)."""

    def __init__(self, slots: int, loop: asyncio.AbstractEventLoop | None, *, take_turns: bool = False):
        self.slots = max(1, slots)
        self.loop = loop
        self.busy = 0
        self.pauses = 0
        self.turns = take_turns  # idle workers rotate at the socket (several workers per replica)
        self.my_turn = False
        self.socket_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the listening socket
        self._cond = threading.Condition()
        self._paused: list[tuple[int, object, tuple]] = []  # (fd, accept callback, its args), on the loop only
        self._stopped = threading.Event()
        if take_turns and loop is not None:
            threading.Thread(target=self._take_turns, name="atelier-accept-turns", daemon=True).start()

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
        return cls(slots, loop, take_turns=True)

    @contextmanager
    def taken(self):
        """Hold one render slot for the duration of the block."""
        with self._cond:
            self.busy += 1
            self._cond.notify_all()
        self._call(self._sync)
        try:
            yield
        finally:
            with self._cond:
                self.busy -= 1
                self._cond.notify_all()
            self._call(self._sync)

    def close(self) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()

    def _listening_wanted(self) -> bool:
        with self._cond:
            return self.busy < self.slots and (not self.turns or self.my_turn)

    def _call(self, action) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(action)
        except RuntimeError:  # the loop is shutting down
            pass

    # -- on the loop -----------------------------------------------------------------------

    def _sync(self) -> None:
        """Put the listening socket on the loop or take it off, as the slots and turn say."""
        if self._listening_wanted():
            self._resume()
        else:
            self._pause()

    def _pause(self) -> None:
        if self._paused:
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
                if self.socket_id is None and len(args) > 1 and isinstance(args[1], socket.socket):
                    stat = os.fstat(args[1].fileno())
                    self.socket_id = (stat.st_dev, stat.st_ino)
                self.loop.remove_reader(key.fd)
                self._paused.append((key.fd, callback, args))
        if self._paused:
            self.pauses += 1
            if self.pauses == 1:
                log.info("accepting paused", extra={"fields": {"sockets": len(self._paused), "turns": self.turns}})

    def _resume(self) -> None:
        paused, self._paused = self._paused, []
        for fd, callback, args in paused:
            sock = args[1] if len(args) > 1 else None  # _accept_connection(protocol_factory, sock, ...)
            if not isinstance(sock, socket.socket) or sock.fileno() == -1:  # closed at shutdown meanwhile
                continue
            self.loop.add_reader(fd, callback, *args)

    # -- taking turns (a thread) -----------------------------------------------------------

    def _take_turns(self) -> None:
        try:
            while self.socket_id is None and not self._stopped.wait(0.05):
                self._call(self._sync)  # off the loop until it is this worker's turn (uvicorn adds it after start-up)
            if self._stopped.is_set():
                return
            path = os.path.join(tempfile.gettempdir(), "atelier-accept-{}-{}.lock".format(*self.socket_id))
            lock = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except Exception:
            log.exception("accept turns unavailable; this worker listens whenever it has a free slot")
            self._stop_turns()
            return
        while not self._stopped.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self.busy < self.slots or self._stopped.is_set())
            fcntl.flock(lock, fcntl.LOCK_EX)  # this worker's turn at the socket
            with self._cond:
                self.my_turn = True
            self._call(self._sync)
            with self._cond:
                self._cond.wait_for(lambda: self.busy >= self.slots or self._stopped.is_set())  # took a call
                self.my_turn = False
            self._call(self._sync)
            fcntl.flock(lock, fcntl.LOCK_UN)  # the next idle worker listens
        os.close(lock)

    def _stop_turns(self) -> None:
        with self._cond:
            self.turns = False
        self._call(self._sync)
