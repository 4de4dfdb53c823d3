"""A renderer worker whose render slots are full stops accepting connections, and resumes when
one frees (service.renderer.accept_gate), on a real asyncio server over a real socket."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import contextmanager

from service.renderer.accept_gate import AcceptGate


class Served:
    """An asyncio server on a loop in a thread, counting the connections it accepted."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.accepted = 0
        ready = threading.Event()

        async def start():
            def made(reader, writer):
                self.accepted += 1
                writer.close()

            self.server = await asyncio.start_server(made, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        threading.Thread(target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
                         daemon=True).start()
        assert ready.wait(10)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)  # the kernel's backlog takes it

    def accepted_within(self, count: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.accepted >= count:
                return True
            time.sleep(0.02)
        return self.accepted >= count

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_a_full_worker_leaves_connections_to_others_until_a_slot_frees():
    served = Served()
    gate = AcceptGate(slots=1, loop=served.loop)
    try:
        first = served.connect()
        assert served.accepted_within(1, 10)
        with gate.taken():
            time.sleep(0.2)  # the pause runs on the loop
            waiting = served.connect()
            assert not served.accepted_within(2, 1.0)  # queued in the backlog for another worker
        assert served.accepted_within(2, 10)  # resumed: the queued connection is taken
        for conn in (first, waiting):
            conn.close()
    finally:
        served.close()


def test_slots_below_the_limit_keep_accepting():
    served = Served()
    gate = AcceptGate(slots=2, loop=served.loop)
    try:
        with gate.taken():
            time.sleep(0.2)
            conn = served.connect()
            assert served.accepted_within(1, 10)
            conn.close()
    finally:
        served.close()


class Worker:
    """One 'renderer worker': an asyncio server on its own loop over a shared listening socket,
    whose every connection takes a render slot for `render_s` in a thread, as BentoML's sync
    APIs do."""

    def __init__(self, listener: socket.socket, render_s: float):
        self.loop = asyncio.new_event_loop()
        self.served = 0
        self.holding = self.most_held = 0  # connections accepted and not yet answered
        self.counting = threading.Lock()  # the loop thread adds, render threads take away
        ready = threading.Event()

        async def start():
            def made(reader, writer):
                with self.counting:
                    self.holding += 1
                    self.most_held = max(self.most_held, self.holding)

                def render():
                    # The call holds its slot until its response is sent, as SlotMiddleware holds
                    # it under BentoML; the answer (closing the connection) and this worker's
                    # count of calls it holds are settled inside the slot. Counting after the
                    # slot freed let the next accepted connection be counted while the finished
                    # one still was: [2, 1] under load (the flake issue 24 reported).
                    with self.gate.taken():
                        time.sleep(render_s)
                        with self.counting:
                            self.served += 1
                            self.holding -= 1
                        self.loop.call_soon_threadsafe(writer.close)

                self.loop.run_in_executor(None, render)

            self.server = await asyncio.start_server(made, sock=listener.dup())
            ready.set()

        threading.Thread(target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
                         daemon=True).start()
        assert ready.wait(10)
        self.gate = AcceptGate(slots=1, loop=self.loop, take_turns=True)

    def close(self):
        self.gate.close()
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


@contextmanager
def two_workers(render_s: float):
    """Two workers on one listening socket, each off its loop until its turn; yields (address, workers)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    workers = [Worker(listener, render_s=render_s) for _ in range(2)]
    try:
        time.sleep(0.5)  # each worker takes its socket off its loop until its turn
        yield listener.getsockname(), workers
    finally:
        for worker in workers:
            worker.close()
        listener.close()


def test_idle_workers_take_turns_at_a_shared_socket():
    """Calls one at a time, so every worker is idle when each arrives: the kernel alone would
    give them all to the worker it wakes first; taking turns spreads them evenly."""
    with two_workers(render_s=0.1) as (address, workers):
        for n in range(6):
            with socket.create_connection(address, timeout=10) as conn:
                conn.settimeout(10)
                assert conn.recv(1) == b""  # closed by the worker after its "render"
        assert sorted(w.served for w in workers) == [3, 3], [w.served for w in workers]


def test_connections_arriving_together_are_taken_one_per_free_worker():
    """Asyncio's accept takes every queued connection at once: a worker woken by four would hold
    all four with one slot (and a renderer would answer three with 429). Each worker takes one,
    and the others wait in the backlog until a worker frees."""
    with two_workers(render_s=0.3) as (address, workers):
        conns = [socket.create_connection(address, timeout=10) for _ in range(4)]
        for conn in conns:
            conn.settimeout(10)
            assert conn.recv(1) == b""
            conn.close()
        assert [w.most_held for w in workers] == [1, 1], [w.most_held for w in workers]
        assert sorted(w.served for w in workers) == [2, 2], [w.served for w in workers]


def test_a_gate_only_where_no_platform_queue_admits_calls():
    assert AcceptGate.for_worker(max_concurrency=1, workers=1) is None  # a GPU replica: the platform queues

    async def on_a_loop(**kwargs):
        gate = AcceptGate.for_worker(**kwargs)
        AcceptGate.active = None
        if gate is not None:
            gate.close()
        return gate and (gate.slots, gate.turns)

    assert asyncio.run(on_a_loop(max_concurrency=1, workers=1)) is None
    assert asyncio.run(on_a_loop(max_concurrency=1, workers=1, on_cpu=True)) == (1, False)  # the backlog queues
    assert asyncio.run(on_a_loop(max_concurrency=2, workers=2)) == (1, True)  # BentoML's per-worker limit
    assert AcceptGate.for_worker(max_concurrency=1, workers=2) is None  # no running loop here: nothing to gate


def test_a_request_holds_its_slot_until_its_response_is_sent_and_probes_hold_none():
    """The slot is held as long as BentoML's own concurrency limit counts the request: through
    the whole response, not only the render, or the gate would accept a call BentoML answers 429."""
    from service.renderer.accept_gate import SlotMiddleware

    seen = []

    async def app(scope, receive, send):
        seen.append((scope.get("path"), gate.busy))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(("sending", gate.busy))

    async def send(message):
        pass

    async def call(scope):
        await SlotMiddleware(app, skip_paths=frozenset({"/readyz"}))(scope, None, send)

    gate = AcceptGate(slots=1, loop=None)
    AcceptGate.active = gate
    try:
        asyncio.run(call({"type": "http", "path": "/internal/render"}))
        asyncio.run(call({"type": "http", "path": "/readyz"}))
        asyncio.run(call({"type": "lifespan"}))  # passes through: no path, no slot
    finally:
        AcceptGate.active = None
    assert seen == [("/internal/render", 1), ("sending", 1), ("/readyz", 0), ("sending", 0), (None, 0), ("sending", 0)]
    assert gate.busy == 0
