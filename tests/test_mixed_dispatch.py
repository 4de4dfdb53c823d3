"""Mixed-twin render calls: the dispatcher leases a job's items by shape across up to
ATELIER_SLOT_LANES twins (fairness between tenants unchanged), the renderer batches a call's
items by shape across twins (one twin per batch where it cannot mix), synchronous requests
arriving together share a call through the coalescer, and a twin revoked (or unloadable)
in the middle of a mixed batch fails only its own items."""

from __future__ import annotations

import base64
import io
import threading
import time
import uuid

import numpy as np
import pytest
from PIL import Image

from service.rendering import (GeneratedImage, GenerationResult, RenderBatch, RenderBatchResult, RenderItem,
                               RenderOutcome)
from service.schemas import GenerateRequest

ITEM = {"prompt": "studio", "width": 256, "height": 256, "steps": 2}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 90, 30)).save(buffer, "PNG")
    return buffer.getvalue()


class StandIn:
    """Renders nothing; records the twins of each call (grouping is what these tests are about)."""

    def __init__(self):
        self.calls: list[list[tuple[str, int, str]]] = []

    def run_batch(self, pending, **_):
        self.calls.append([(p.job["job_id"], p.job["item"], p.request.twin_id) for p in pending])
        return [GenerationResult(p.generation_id, p.request.twin_id, p.seed,
                                 [GeneratedImage(0, "png", 8, 8, p.seed, png(), "0" * 64)]) for p in pending]


class Stored:
    def store(self, job_id, index, n, image, sidecar):
        return {"n": n, "format": image.format, "sha256": image.sha256}

    def with_urls(self, entry, expiry_s):
        return entry


def dispatcher(queue, generation, **kwargs):
    from service.jobs.dispatcher import RenderDispatcher

    registry, store = queue
    return RenderDispatcher(store, registry, generation, lambda target: Stored(), lambda *a: None, **kwargs)


def drain(store, renders, tenant, job_id, limit=60):
    for _ in range(limit):
        if store.get_job(tenant, job_id, with_items=False).status == "completed":
            return
        renders.dispatch(renders.lease())
    raise AssertionError("the job did not complete")


def test_a_drop_over_many_twins_is_leased_by_shape_across_twins_up_to_the_lane_limit(queue):
    _, store = queue
    # 10 items over 6 twins, and one item of another size: a call takes the first item's shape,
    # up to 4 items naming up to 3 distinct twins, in index order.
    twins = ["t0", "t1", "t0", "t2", "t3", "t1", "t4", "t5", "t2", "t5"]
    items = [{**ITEM, "twin_id": t} for t in twins] + [{**ITEM, "twin_id": "t0", "width": 512}]
    job = store.create_job("brand-a", "k", items, priority=5, output_target="inline", url_expiry_s=60,
                           webhook_per_item=False)
    generation, hinted = StandIn(), []
    renders = dispatcher(queue, generation, batch=4, lanes=3, prefetch=hinted.append)
    drain(store, renders, "brand-a", job.id)
    calls = [[index for _, index, _ in call] for call in generation.calls]
    # the second call's lanes are full (t3, t1, t4): t5 and t2 wait for the next one
    assert calls == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    for call in generation.calls:
        assert len({twin for _, _, twin in call}) <= 3
    # each group's twins were hinted to a renderer as it was leased, in item order
    assert hinted == [["t0", "t1", "t2"], ["t3", "t1", "t4"], ["t5", "t2"], ["t0"]]


def test_one_lane_leases_one_twin_per_call_as_before(queue):
    _, store = queue
    twins = ["t0", "t1", "t0", "t1", "t2"]
    job = store.create_job("brand-a", "k", [{**ITEM, "twin_id": t} for t in twins], priority=5,
                           output_target="inline", url_expiry_s=60, webhook_per_item=False)
    generation = StandIn()
    drain(store, dispatcher(queue, generation, batch=4, lanes=1), "brand-a", job.id)
    assert [[index for _, index, _ in call] for call in generation.calls] == [[0, 2], [1, 3], [4]]


def test_fairness_between_tenants_is_unchanged_by_mixed_calls(queue):
    """A big many-twin drop of one tenant does not hold back another tenant's small job: the
    deficit round robin charges each item, so the two alternate call by call."""
    _, store = queue
    big = store.create_job("brand-a", "ka", [{**ITEM, "twin_id": f"a{i % 20}"} for i in range(80)], priority=9,
                           output_target="inline", url_expiry_s=60, webhook_per_item=False)
    small = store.create_job("brand-b", "kb", [{**ITEM, "twin_id": f"b{i}"} for i in range(8)], priority=0,
                             output_target="inline", url_expiry_s=60, webhook_per_item=False)
    generation = StandIn()
    renders = dispatcher(queue, generation, batch=4, lanes=4)
    drain(store, renders, "brand-b", small.id, limit=10)
    jobs = [call[0][0] for call in generation.calls]
    assert jobs == [big.id, small.id] * 2  # 4 items each, turn about
    assert all(len(call) == 4 for call in generation.calls)
    assert store.get_job("brand-a", big.id, with_items=False).items_done == 8


# -- the renderer's batches -------------------------------------------------------------------


def item(twin, n=0, size=256, images=1, tenant="demo", garments=None, edit=None):
    from service.rendering import RenderEdit

    request = GenerateRequest(twin_id=twin, prompt="p", width=size, height=size, steps=2, seed=1, num_images=images,
                              garments=garments or [])
    return RenderItem(generation_id=f"{n:032x}", seed=1, request=request, tenant_id=tenant,
                      edit=RenderEdit(source_asset_id="a" * 64, mask_asset_id="b" * 64) if edit else None)


def test_the_renderer_batches_a_calls_items_by_shape_across_twins_within_lanes_and_image_caps():
    from service.renderer.batching import plan_batches

    items = [item("a", 0), item("b", 1), item("c", 2, size=320), item("a", 3), item("d", 4), item(None, 5),
             item("e", 6), item("b", 7, images=3)]
    batches = plan_batches(items, lanes=3, cap_of=lambda request: 6)
    ids = [[int(i.generation_id, 16) for i in batch] for batch in batches]
    # a, b, d fill three lanes (the base model takes none); e opens another batch; b's three
    # images do not fit the first batch's 6 rows (5 taken), so they join e's.
    assert ids == [[0, 1, 3, 4, 5], [2], [6, 7]]
    assert [[int(i.generation_id, 16) for i in b] for b in plan_batches(items, lanes=1, cap_of=lambda r: None)] == \
        [[0, 3], [1, 7], [2], [4], [5], [6]]


def test_edits_run_alone_and_stored_images_are_batched_with_their_own_tenants_only():
    from service.renderer.batching import plan_batches
    from service.schemas import GarmentRef

    garment = [GarmentRef(asset_id="c" * 64, category="tops")]
    items = [item("a", 0, edit=True), item("b", 1, edit=True), item("a", 2, garments=garment, tenant="t1"),
             item("b", 3, garments=garment, tenant="t2"), item("c", 4, garments=garment, tenant="t1")]
    batches = plan_batches(items, lanes=4, cap_of=lambda request: None)
    assert [[int(i.generation_id, 16) for i in b] for b in batches] == [[0], [1], [2, 4], [3]]


# -- the coalescer of synchronous calls -------------------------------------------------------


class FakeClient:
    """Answers each item with an outcome naming it; records each call's items. A call of a
    640 px item holds until `release` is set (a busy renderer)."""

    def __init__(self, error: BaseException | None = None):
        self.calls: list[list[str]] = []
        self.error = error
        self.lock = threading.Lock()
        self.release = threading.Event()

    def render(self, batch, *, wait_s, stop=None):
        with self.lock:
            self.calls.append([i.generation_id for i in batch.items])
        if batch.items[0].request.width == 640:
            self.release.wait(30)
        if self.error is not None:
            raise self.error
        return RenderBatchResult(outcomes=[RenderOutcome(generation_id=i.generation_id, twin_id=i.request.twin_id,
                                                         seed=i.seed) for i in batch.items], worker="w")


def busy(coalescer, client) -> threading.Thread:
    """One call in flight (a 640 px item, held by the fake renderer): the coalescer gathers now.
    While none is in flight it sends each call at once (a lone request pays no window)."""
    holder = threading.Thread(target=coalescer.render, args=(RenderBatch(items=[item("z", 99, size=640)]),),
                              kwargs={"wait_s": 5}, daemon=True)
    holder.start()
    deadline = time.monotonic() + 30
    while coalescer.in_flight == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return holder


def concurrently(coalescer, batches):
    """Each batch rendered on its own thread, all started together; their answers (or errors)."""
    answers: list = [None] * len(batches)
    start = threading.Barrier(len(batches))

    def call(index):
        start.wait()
        try:
            answers[index] = coalescer.render(batches[index], wait_s=5)
        except Exception as exc:  # noqa: BLE001
            answers[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def test_synchronous_calls_arriving_together_share_one_render_call_and_each_gets_its_own_items():
    from service.jobs.coalescer import RenderCoalescer

    client = FakeClient()
    coalescer = RenderCoalescer(client, 5.0, lanes=4, max_items=4)  # a long window: the calls meet in it
    alone = coalescer.render(RenderBatch(items=[item("a", 50)]), wait_s=5)  # idle: sent at once, no window
    assert [o.generation_id for o in alone.outcomes] == [f"{50:032x}"] and coalescer.calls == 1
    holder = busy(coalescer, client)
    batches = [RenderBatch(items=[item(twin, n)]) for n, twin in enumerate(["a", "b", "c", "d"])]
    answers = concurrently(coalescer, batches)
    client.release.set()
    holder.join(30)
    assert [[o.generation_id for o in a.outcomes] for a in answers] == [[b.items[0].generation_id] for b in batches]
    assert [[o.twin_id for o in a.outcomes] for a in answers] == [["a"], ["b"], ["c"], ["d"]]
    gathered = [call for call in client.calls if len(call) > 1]
    assert len(client.calls) == 3 and sorted(gathered[0]) == sorted(b.items[0].generation_id for b in batches)
    assert coalescer.merged == 1 and coalescer.calls == 3


def test_the_coalescer_keeps_shapes_and_the_lane_limit_apart_and_passes_edits_through():
    from service.jobs.coalescer import RenderCoalescer

    client = FakeClient()
    coalescer = RenderCoalescer(client, 3.0, lanes=2, max_items=4)
    holder = busy(coalescer, client)
    batches = [RenderBatch(items=[item("a", 0)]), RenderBatch(items=[item("b", 1)]), RenderBatch(items=[item("c", 2)]),
               RenderBatch(items=[item("a", 3, size=320)]), RenderBatch(items=[item("a", 4, edit=True)])]
    answers = concurrently(coalescer, batches)
    client.release.set()
    holder.join(30)
    assert all(isinstance(a, RenderBatchResult) for a in answers), answers
    calls = sorted(sorted(int(g, 16) for g in call) for call in client.calls if call != [f"{99:032x}"])
    # three twins of one shape: at most two per call; the other size and the edit alone
    assert len(calls) == 4 and [3] in calls and [4] in calls
    assert sorted(len(call) for call in calls if call not in ([3], [4])) == [1, 2]


def test_an_error_of_a_merged_call_is_every_members_and_zero_ms_turns_coalescing_off():
    from service.config import Settings
    from service.errors import RendererUnavailable
    from service.jobs.coalescer import RenderCoalescer

    client = FakeClient(RendererUnavailable("busy"))
    coalescer = RenderCoalescer(client, 5.0, lanes=4, max_items=2)  # full at two: sent at once
    holder = busy(coalescer, client)
    answers = concurrently(coalescer, [RenderBatch(items=[item("a", 0)]), RenderBatch(items=[item("b", 1)])])
    client.release.set()
    holder.join(30)
    assert all(isinstance(a, RendererUnavailable) for a in answers) and len(client.calls) == 2
    assert RenderCoalescer.from_settings(Settings.from_env({"ATELIER_COALESCE_MS": "0"}), client) is None
    tensorrt = RenderCoalescer.from_settings(Settings.from_env({"ATELIER_BACKEND": "tensorrt"}), client)
    assert tensorrt.lanes == 1 and tensorrt.window_s == 0.005  # TensorRT's calls carry one twin


# -- a mixed batch on the real engine: one twin stopped, the others finish --------------------


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def runtime(settings, registry, engine):
    from service.renderer.runtime import RendererRuntime
    from service.tenancy.revocation import RevocationWatcher

    watcher = RevocationWatcher(registry, lambda twin: None)  # never started: the tests set `revoked`
    return RendererRuntime(settings, registry, engine, watcher)


def sealed_batch(runtime, twins, seed=31):
    items = [RenderItem(generation_id=uuid.uuid4().hex, seed=seed, tenant_id="demo",
                        request=GenerateRequest(twin_id=t, prompt="studio photo, linen dress", width=256, height=256,
                                                steps=3, seed=seed, output_format="png")) for t in twins]
    return RenderBatch(items=[runtime.credential.sealed(i, ttl_s=300) for i in items])


def test_a_twin_revoked_during_a_mixed_batch_fails_only_its_rows_and_the_others_finish(runtime, engine):
    batch = sealed_batch(runtime, ["demo-ava", "demo-ben", "demo-cleo", "demo-ben", None])
    steps_seen = []

    def progress(step, steps):
        steps_seen.append(step)
        if step == 1:  # the watcher saw the revocation after the first step
            runtime.watcher.revoked = frozenset({"demo-ben"})

    try:
        result = runtime.render(batch, progress=progress)
    finally:
        runtime.watcher.revoked = frozenset()
    assert result.batch_rows == 5  # one pipeline batch for the three twins and the base model
    assert steps_seen[-1] >= 3
    by_twin = [(o.twin_id, o.error.code if o.error else None) for o in result.outcomes]
    assert by_twin == [("demo-ava", None), ("demo-ben", "revoked"), ("demo-cleo", None), ("demo-ben", "revoked"),
                       (None, None)]
    for outcome in result.outcomes:
        if outcome.error is not None:
            assert outcome.error.status == 403 and outcome.images == []
            continue
        alone = engine.generate(batch.items[[o.generation_id for o in result.outcomes].index(outcome.generation_id)]
                                .request)
        diff = np.abs(pixels(base64.b64decode(outcome.images[0].data_base64)) - pixels(alone.images[0].data)).max()
        assert diff <= 1, (outcome.twin_id, diff)  # the others' images are what they are alone


def test_a_twin_revoked_or_unknown_before_the_call_fails_only_its_items(runtime):
    runtime.watcher.revoked = frozenset({"demo-cleo"})
    try:
        result = runtime.render(sealed_batch(runtime, ["demo-cleo", "demo-ava", "demo-nobody", "demo-ava"]))
    finally:
        runtime.watcher.revoked = frozenset()
    codes = [(o.twin_id, o.error.code if o.error else None, len(o.images)) for o in result.outcomes]
    assert codes == [("demo-cleo", "revoked", 0), ("demo-ava", None, 1), ("demo-nobody", "twin_not_found", 0),
                     ("demo-ava", None, 1)]


def licensed_batch(runtime, rows, seed=37):
    """(twin, tenant, licence id) rows, each admitted under a signed licence of that id."""
    from service.rendering import RenderLicence

    items = [RenderItem(generation_id=uuid.uuid4().hex, seed=seed, tenant_id=tenant,
                        licence=RenderLicence(basis="signed", licence_id=licence, licence_sha256="ab" * 32),
                        request=GenerateRequest(twin_id=twin, prompt="studio photo, linen dress", width=256, height=256,
                                                steps=3, seed=seed, output_format="png")) for twin, tenant, licence in rows]
    return RenderBatch(items=[runtime.credential.sealed(i, ttl_s=300) for i in items])


def test_a_licence_ended_during_a_batch_stops_only_its_rows(runtime, engine, monkeypatch):
    """The person ends licence L-ben-demo after the first step. Its row stops; the same twin's
    row under another tenant's licence, and the other twins' rows, finish as they would alone."""
    slot = engine.twins.slot
    silenced = []
    real_silence = slot.silence
    monkeypatch.setattr(slot, "silence", lambda shas: (silenced.append(set(shas)), real_silence(shas))[1])
    batch = licensed_batch(runtime, [("demo-ava", "demo", "L-ava-demo"), ("demo-ben", "demo", "L-ben-demo"),
                                     ("demo-cleo", "demo", "L-cleo-demo")])

    def progress(step, steps):
        if step == 1:
            runtime.watcher.revoked_licences = frozenset({"L-ben-demo"})

    try:
        result = runtime.render(batch, progress=progress)
    finally:
        runtime.watcher.revoked_licences = frozenset()
    codes = [(o.twin_id, o.error.code if o.error else None, len(o.images)) for o in result.outcomes]
    assert codes == [("demo-ava", None, 1), ("demo-ben", "licence_revoked", 0), ("demo-cleo", None, 1)]
    assert len(silenced) == 1 and len(silenced[0]) == 1  # demo-ben's lane stopped at the next step

    # The same twin for two tenants: the ended licence's row shares demo-ben's lane with the
    # other tenant's row, which renders on; the ended one is never answered.
    silenced.clear()
    batch = licensed_batch(runtime, [("demo-ben", "demo", "L-ben-demo"), ("demo-ben", "other", "L-ben-other"),
                                     ("demo-ava", "demo", "L-ava-demo")])
    try:
        result = runtime.render(batch, progress=progress)
    finally:
        runtime.watcher.revoked_licences = frozenset()
    codes = [(o.twin_id, o.error.code if o.error else None, len(o.images)) for o in result.outcomes]
    assert codes == [("demo-ben", "licence_revoked", 0), ("demo-ben", None, 1), ("demo-ava", None, 1)]
    assert silenced == []
    refused = result.outcomes[0].error
    assert refused.status == 403 and "not delivered" in refused.message
    alone = engine.generate(batch.items[1].request)
    diff = np.abs(pixels(base64.b64decode(result.outcomes[1].images[0].data_base64)) - pixels(alone.images[0].data)).max()
    assert diff <= 1


def test_an_item_whose_licence_ended_before_the_call_is_not_rendered(runtime):
    runtime.watcher.revoked_licences = frozenset({"L-old"})
    try:
        result = runtime.render(licensed_batch(runtime, [("demo-ava", "demo", "L-old"), ("demo-ava", "demo", "L-new")]))
    finally:
        runtime.watcher.revoked_licences = frozenset()
    codes = [(o.error.code if o.error else None, len(o.images)) for o in result.outcomes]
    assert codes == [("licence_revoked", 0), (None, 1)]


# -- through the gateway, with the renderer in this process -----------------------------------


class Recording:
    """A render client that records each call's twins and passes it on."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def render(self, batch, **kwargs):
        self.calls.append([i.request.twin_id for i in batch.items])
        return self.inner.render(batch, **kwargs)


def test_synchronous_generations_for_different_twins_arriving_together_share_one_call(client, records):
    from service.gateway.service import API
    from service.jobs.coalescer import RenderCoalescer
    from tests.conftest import SMALL, same_picture

    generation = API.state.core.generation
    recording = Recording(API.state.core.renderer)
    saved = generation.coalescer
    generation.coalescer = RenderCoalescer(recording, 5.0, lanes=4, max_items=2)  # full at two: sent at once
    responses: list = [None, None]
    start = threading.Barrier(2)
    # the renderer busy with another request (idle, a call would go at once, alone)
    first = threading.Thread(target=lambda: client.post("/v1/generate", json={
        "twin_id": "demo-cleo", "prompt": "studio photo", "seed": 8, **{**SMALL, "steps": 3}}), daemon=True)
    first.start()
    deadline = time.monotonic() + 120
    while generation.coalescer.in_flight == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)

    def call(index: int, twin: str) -> None:
        start.wait()
        responses[index] = client.post("/v1/generate", json={"twin_id": twin, "prompt": "studio photo", "seed": 7,
                                                             **SMALL})

    try:
        threads = [threading.Thread(target=call, args=(i, t)) for i, t in enumerate(["demo-ava", "demo-ben"])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        first.join(180)
    finally:
        generation.coalescer = saved
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert [r.json()["twin_id"] for r in responses] == ["demo-ava", "demo-ben"]
    assert [sorted(call) for call in recording.calls] == [["demo-cleo"], ["demo-ava", "demo-ben"]]  # one call, both
    for response in responses:  # each its own audited generation, and the picture it makes alone
        body = response.json()
        assert [r["outcome"] for r in records("generation_id", body["generation_id"])] == ["ok"]
        assert "adapter_wait" in body["timings_ms"]
    alone = client.post("/v1/generate", json={"twin_id": "demo-ben", "prompt": "studio photo", "seed": 7, **SMALL})
    assert same_picture(base64.b64decode(alone.json()["images"][0]["data_base64"]),
                        base64.b64decode(responses[1].json()["images"][0]["data_base64"]))


def test_a_jobs_items_of_several_twins_render_in_one_call_each_audited(client, records):
    from service.gateway.service import API
    from tests.test_jobs import wait_for

    generation = API.state.core.generation
    recording = Recording(generation.renderer)
    items = [{"twin_id": t, "prompt": "studio photo", "width": 256, "height": 256, "steps": 2, "seed": 3, "sku": t}
             for t in ("demo-ava", "demo-ben", "demo-cleo", "demo-ava")]
    generation.renderer = recording
    try:
        submitted = client.post("/v1/jobs/submit", json={"items": items})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        status = wait_for(client, job_id)
    finally:
        generation.renderer = recording.inner
    assert (status["status"], status["items_done"]) == ("completed", 4)
    assert ["demo-ava", "demo-ben", "demo-cleo", "demo-ava"] in recording.calls
    result = client.get("/v1/jobs/get", params={"job_id": job_id}).json()
    assert [i["twin_id"] for i in result["items"]] == [i["twin_id"] for i in items]
    audited = [r for r in records("event", "generation") if (r.get("job") or {}).get("job_id") == job_id]
    assert sorted((r["job"]["item"], r["outcome"], r.get("twin_id")) for r in audited) == \
        [(0, "ok", "demo-ava"), (1, "ok", "demo-ben"), (2, "ok", "demo-cleo"), (3, "ok", "demo-ava")]
