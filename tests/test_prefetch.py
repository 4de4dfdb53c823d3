"""No cold-twin stall: a batch's adapter loads start when it arrives and overlap its prompt
encoding (never preceding it), a render records whether and how long it waited for a load
(the generation's `adapter_wait` timing and a Prometheus metric) without changing its image,
and the gateway hints twins to a renderer for prefetch only while earlier work runs."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
from PIL import Image

from service.rendering import Prefetched
from service.schemas import GenerateRequest


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


class Waits:
    def __init__(self, inner):
        self.inner, self.seconds = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def waited(self, seconds: float) -> None:
        self.seconds.append(seconds)


def test_a_cold_twins_load_overlaps_prompt_encoding_and_the_wait_is_recorded_not_hidden(engine, monkeypatch):
    from service.engine.adapter_loads import PendingLoads

    request = GenerateRequest(twin_id="demo-cleo", prompt="studio photo, wool coat", width=256, height=256, steps=2,
                              seed=17, output_format="png")
    warm = engine.generate(request)
    engine.evict("demo-cleo")  # in no tier and no lane: the next render loads it from the store
    assert engine.twins.cache.tiers_of(warm.adapter_sha256) == []
    order: list[str] = []
    encoding, collecting = threading.Event(), threading.Event()
    store, pipe, cache = engine.twins.cache.store, engine.pipe, engine.twins.cache
    read, encode, collect = store.read_bytes, pipe.encode_prompt, PendingLoads.collect

    def slow_read(path):  # the store read waits until the pipeline is encoding, then until it collects
        # (and then some: so the batch, ready to denoise, has to wait for it)
        order.append(f"load started on {threading.current_thread().name.split('_')[0]}")
        assert encoding.wait(120), "the prompt was not encoded while the adapter loaded"
        order.append("load resumed")
        assert collecting.wait(120)
        time.sleep(0.3)
        return read(path)

    def encoding_prompt(*args, **kwargs):
        order.append("encode")
        encoding.set()
        return encode(*args, **kwargs)

    def collecting_loads(self):
        collecting.set()
        return collect(self)

    waits = Waits(cache.events)
    monkeypatch.setattr(store, "read_bytes", slow_read)
    monkeypatch.setattr(pipe, "encode_prompt", encoding_prompt)
    monkeypatch.setattr(PendingLoads, "collect", collecting_loads)
    monkeypatch.setattr(cache, "events", waits)
    cold = engine.generate(request)
    # the load ran on a loader thread beside the encoding (it finished only after encoding began:
    # a load that preceded the encoding, as before, would have waited here in vain)
    assert sorted(order[:3]) == ["encode", "load resumed", "load started on atelier-adapter-load"]
    assert order.index("encode") < order.index("load resumed")
    assert cold.adapter_source == "store" and warm.adapter_source in ("device", "host", "disk", "store")
    assert cold.timings_ms["adapter_wait"] > 0 and len(waits.seconds) == 1 and waits.seconds[0] > 0
    assert cold.timings_ms["adapter"] >= cold.timings_ms["adapter_wait"]
    # the same image: nothing is rendered without the twin to hide the load
    assert np.abs(pixels(cold.images[0].data) - pixels(warm.images[0].data)).max() <= 1
    again = engine.generate(request)  # on the device now: nothing to wait for
    assert again.adapter_source == "device" and again.timings_ms["adapter_wait"] == 0.0 and waits.seconds[-1] == 0.0


def test_the_wait_metric_counts_every_batch_and_the_batches_that_waited():
    from prometheus_client import REGISTRY

    from service.twins.metrics import PrometheusCacheEvents

    def sample(name):
        return REGISTRY.get_sample_value(name) or 0.0

    events = PrometheusCacheEvents()
    events.waited(0.0)  # the metrics exist after the first use
    before = (sample("atelier_adapter_wait_seconds_count"), sample("atelier_adapter_waits_total"))
    events.waited(0.0)
    events.waited(0.25)
    assert sample("atelier_adapter_wait_seconds_count") - before[0] == 2
    assert sample("atelier_adapter_waits_total") - before[1] == 1
    assert REGISTRY.get_sample_value("atelier_adapter_wait_seconds_bucket", {"le": "0.0"}) >= 2


class Renderer:
    def __init__(self, fail: bool = False):
        self.calls: list[list[str]] = []
        self.fail = fail
        self.answered = threading.Event()

    def prefetch(self, twin_ids, *, wait_s):
        self.calls.append(list(twin_ids))
        self.answered.set()
        if self.fail:
            raise ConnectionError("renderer gone")
        return Prefetched(results={t: "disk" for t in twin_ids})


def sent(hints, renderer, count):
    deadline = time.monotonic() + 60
    while (hints.sent < count) and time.monotonic() < deadline:
        time.sleep(0.01)
    return renderer.calls


def test_twins_are_hinted_only_while_a_render_call_runs_and_not_again_while_fresh():
    from service.jobs.prefetch import PrefetchHints

    now = [100.0]
    renderer = Renderer()
    hints = PrefetchHints(renderer, fresh_s=10.0, clock=lambda: now[0])
    try:
        assert hints.hint(["demo-ava"]) == []  # nothing in flight: the render call itself goes at once
        with hints.calling():
            assert hints.hint(["demo-ava", None, "demo-ben", "demo-ava"]) == ["demo-ava", "demo-ben"]
            assert sent(hints, renderer, 1) == [["demo-ava", "demo-ben"]]
            assert hints.hint(["demo-ava"]) == []  # hinted 0 s ago
            now[0] += 10.0
            assert hints.hint(["demo-ava", "demo-cleo"]) == ["demo-ava", "demo-cleo"]
            assert sent(hints, renderer, 2)[-1] == ["demo-ava", "demo-cleo"]
        assert hints.answers == {"demo-ava": "disk", "demo-ben": "disk", "demo-cleo": "disk"}
        assert hints.in_flight == 0
    finally:
        hints.close()


def test_a_hint_that_cannot_be_sent_never_fails_anything():
    from service.jobs.prefetch import PrefetchHints

    renderer = Renderer(fail=True)
    hints = PrefetchHints(renderer)
    try:
        with hints.calling():
            assert hints.hint(["demo-ava"]) == ["demo-ava"]
            assert sent(hints, renderer, 1) == [["demo-ava"]]
        assert hints.answers == {}
    finally:
        hints.close()


def test_prefetch_calls_take_no_render_slot_but_still_need_the_internal_credential():
    from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware

    from service.renderer import service

    assert "/internal/prefetch" in MaxConcurrencyMiddleware.BYPASS_PATHS  # answered beside a running render
    assert "/internal/render" not in MaxConcurrencyMiddleware.BYPASS_PATHS
    assert "/internal/prefetch" not in service.PROBES  # the door still asks for the internal token
    middlewares = {cls.__name__: options for cls, options in service.Renderer.middlewares}
    assert middlewares["InternalAuth"]["open_paths"] == service.PROBES
    assert "/internal/prefetch" in middlewares["SlotMiddleware"]["skip_paths"]
