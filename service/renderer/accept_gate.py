"""Spread render calls over the workers of one replica: a busy worker stops accepting, and idle
workers take turns at the shared socket.

Owns: when this worker's listening socket is on its event loop. The workers of one replica
share one listening socket, and the kernel does not spread connections among them: it wakes
them in a fixed order, so the first-woken worker accepts every connection, busy or not, and
answers 429 while the others idle (measured with `bench/fanout.py`: 13 of 13 render calls and
11 retries on one of two workers), and takes every call whenever all are idle. So:

- a worker listens only while its render calls plus the connections it accepted that hold no
  slot yet are fewer than its slots, and a connection waits in the backlog for a free worker;
- it accepts one connection per wake-up and stops listening at once if that fills it:
  asyncio's own accept takes every queued connection in one go, so the worker whose turn it
  was took a whole window of calls and answered all but one with 429 (seen in the fan-out
  test's access log, and the retries' backoff then left a worker idle: the likely cause of
  the 12/28 splits that fresh-clone CI runs gave);
- idle workers take turns (an accept mutex, as nginx has, on a lock file named after the
  shared socket): only the worker holding the turn listens, and it hands the turn on as soon
  as it takes a connection, so calls rotate over the idle workers.

Used when a replica runs several workers, or renders on the CPU (`bentoml serve` on a laptop,
in CI and benches): there no platform queue stands in front of the renderer, and a call beyond
its slots would get a 429 and the gateway's retry backoff, leaving the worker idle meanwhile;
the listen backlog is that queue instead. On a GPU (one worker per replica, behind
BentoCloud's external queue or Knative's queue-proxy) the platform's queue admits calls and
there is no gate. Must never close a socket, and never touch a
registration other than the loop's listening servers (found by their accept callback, whose
arguments it reuses: private asyncio API, kept to this module). If the loop does not look as
expected, or the lock file cannot be used, the worker listens as it would without the gate.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import math
import os
import socket
import tempfile
import threading
from contextlib import contextmanager

log = logging.getLogger("atelier.renderer")


class AcceptGate:
    """Counts this worker's render calls and the connections it accepted that have not taken
    a render slot yet; listens only while their sum is below its slots (and, taking turns, it
    holds the turn). It accepts one connection per wake-up and stops listening at once when
    that fills it, because asyncio's own accept takes every queued connection in one go, and
    a busy worker would answer all but one of them 429."""

    def __init__(self, slots: int, loop: asyncio.AbstractEventLoop | None, *, take_turns: bool = False):
        self.slots = max(1, slots)
        self.loop = loop
        self.busy = 0
        self.pauses = 0
        self.turns = take_turns  # idle workers rotate at the socket (several workers per replica)
        self.my_turn = False
        self.socket_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the listening socket
        self._cond = threading.Condition()
        self._unsettled: dict[int, None] = {}  # accepted connections, oldest first, that hold no slot yet
        self._next_connection = 0
        self._servers: dict[int, tuple[object, tuple]] = {}  # fd: (asyncio's accept callback, its args); loop only
        self._listening = False  # whether the gate's accept is on the loop for its adopted servers
        self._stopped = threading.Event()
        if take_turns and loop is not None:
            threading.Thread(target=self._take_turns, name="atelier-accept-turns", daemon=True).start()

    active: "AcceptGate | None" = None  # this worker's gate, for SlotMiddleware

    @classmethod
    def for_worker(cls, max_concurrency: int, workers: int, *, on_cpu: bool = False) -> "AcceptGate | None":
        """A gate for this worker's running loop when its replica has several workers or renders
        on the CPU, else None. Its slots are BentoML's per-worker limit: the service's
        max_concurrency over its workers."""
        if workers <= 1 and not on_cpu:
            return None
        try:
            loop = asyncio.get_running_loop()  # BentoML builds the service on its loop
        except RuntimeError:
            return None
        slots = math.ceil(max_concurrency / workers)
        log.info("accept gate", extra={"fields": {"slots": slots, "workers": workers}})
        cls.active = cls(slots, loop, take_turns=workers > 1)
        return cls.active

    @contextmanager
    def taken(self):
        """Hold one slot for the duration of the block."""
        with self._cond:
            self.busy += 1
            self._settle_one()  # the call came on an accepted connection: it is now counted as busy
            self._cond.notify_all()
        self._call(self._sync)
        try:
            yield
        finally:
            with self._cond:
                self.busy -= 1
                self._cond.notify_all()
            self._call(self._sync)

    def settled(self) -> None:
        """A request that holds no slot (a health probe) began on an accepted connection."""
        with self._cond:
            self._settle_one()
            self._cond.notify_all()
        self._call(self._sync)

    def _settle_one(self) -> None:
        if self._unsettled:  # the oldest: requests come in the order their connections were accepted
            del self._unsettled[next(iter(self._unsettled))]

    def close(self) -> None:
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()

    def _full(self) -> bool:
        return self.busy + len(self._unsettled) >= self.slots

    def _listening_wanted(self) -> bool:
        with self._cond:
            return not self._full() and (not self.turns or self.my_turn)

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
        self._adopt()
        if not self._servers:
            return
        if self._listening_wanted():
            self._resume()
        else:
            self._pause()

    def _adopt(self) -> None:
        """Take asyncio's accept callbacks off the loop; from now on the gate accepts for them."""
        try:
            keys = list(self.loop._selector.get_map().values())  # type: ignore[attr-defined]
        except AttributeError:  # not a selector loop (e.g. uvloop): leave admission to 429s
            return
        for key in keys:
            handle = key.data[0] if isinstance(key.data, tuple) else None
            callback = getattr(handle, "_callback", None)
            if getattr(callback, "__name__", "") != "_accept_connection":
                continue
            args = tuple(handle._args)  # type: ignore[union-attr]  # before remove_reader cancels the handle
            if len(args) < 5 or not isinstance(args[1], socket.socket):
                continue  # not the signature this module knows: leave it to asyncio
            if self.socket_id is None:
                stat = os.fstat(args[1].fileno())
                self.socket_id = (stat.st_dev, stat.st_ino)
            self.loop.remove_reader(key.fd)  # asyncio re-adds it after running out of descriptors
            self._servers[key.fd] = (callback, args)
            if self._listening:
                self.loop.add_reader(key.fd, self._accept_one, key.fd)

    def _pause(self) -> None:
        if not self._listening:
            return
        for fd in self._servers:
            self.loop.remove_reader(fd)
        self._listening = False
        self.pauses += 1
        if self.pauses == 1:
            log.info("accepting paused", extra={"fields": {"sockets": len(self._servers), "turns": self.turns}})

    def _resume(self) -> None:
        if self._listening:
            return
        self._servers = {fd: server for fd, server in self._servers.items() if server[1][1].fileno() != -1}  # closed at shutdown
        for fd in self._servers:
            self.loop.add_reader(fd, self._accept_one, fd)
        self._listening = True

    def _accept_one(self, fd: int) -> None:
        """Accept at most one queued connection, then listen again only if a slot is still free."""
        accept, (factory, sock, sslcontext, server, _backlog, *rest) = self._servers[fd]
        accept(self._counted(factory), sock, sslcontext, server, 1, *rest)
        self._pause()  # before the loop's next tick could accept another
        self.loop.call_soon(self._sync)  # runs after the accepted connection's protocol exists

    def _counted(self, factory):
        """`factory`, with each connection it makes counted until it takes a slot or closes."""
        def make_protocol():
            protocol = factory()
            with self._cond:
                connection = self._next_connection = self._next_connection + 1
                self._unsettled[connection] = None
                self._cond.notify_all()
            connection_lost = protocol.connection_lost

            def lost(exc, _connection_lost=connection_lost):
                try:
                    _connection_lost(exc)
                finally:
                    with self._cond:
                        if connection in self._unsettled:  # closed before it took a slot
                            del self._unsettled[connection]
                            self._cond.notify_all()
                    self._sync()

            protocol.connection_lost = lost
            return protocol

        return make_protocol

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
                self._cond.wait_for(lambda: not self._full() or self._stopped.is_set())
            fcntl.flock(lock, fcntl.LOCK_EX)  # this worker's turn at the socket
            with self._cond:
                self.my_turn = True
            self._call(self._sync)
            with self._cond:
                self._cond.wait_for(lambda: self._full() or self._stopped.is_set())  # took a connection
                self.my_turn = False
            self._call(self._sync)
            fcntl.flock(lock, fcntl.LOCK_UN)  # the next idle worker listens
        os.close(lock)

    def _stop_turns(self) -> None:
        with self._cond:
            self.turns = False
        self._call(self._sync)


class SlotMiddleware:
    """ASGI middleware, inside BentoML's MaxConcurrencyMiddleware: each request that passed its
    limit holds a slot of this worker's gate until its response is sent, exactly as long as
    BentoML counts it, so the gate never accepts a call that BentoML would answer 429. Requests
    on the paths BentoML does not count (health probes) hold no slot."""

    def __init__(self, app, skip_paths: frozenset[str]):
        self.app = app
        self.skip_paths = skip_paths  # the paths BentoML's limit lets through (the service module knows them)

    async def __call__(self, scope, receive, send):
        gate = AcceptGate.active
        if gate is None or scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] in self.skip_paths:
            gate.settled()
            return await self.app(scope, receive, send)
        with gate.taken():
            return await self.app(scope, receive, send)
