"""The gateway/renderer split, in-process: no torch in the gateway, one router listed whole in
/docs.json, a batch whose rows equal their single renders, and the dispatcher's fencing,
fairness and release of leases (with a stand-in renderer where only dispatch order matters)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta

import pytest
from PIL import Image

from service.registry.db import utcnow
from service.rendering import GeneratedImage, GenerationResult
from tests.conftest import REPO_ROOT, same_picture


def test_the_gateway_process_never_imports_torch(demo_home, tmp_path):
    """Build the whole gateway (routes, core, dispatcher, webhook sender) as `bentoml serve`
    would, answer requests, and look at what the process imported."""
    script = textwrap.dedent(f"""
        import os, sys, json
        os.environ["ATELIER_HOME"] = {str(demo_home)!r}
        os.environ["ATELIER_JOBS_WORKER"] = "1"
        os.environ["ATELIER_AUDIT_DIR"] = {str(tmp_path / "audit")!r}  # the session's own log is another writer's
        from starlette.testclient import TestClient
        from service.config import get_settings
        from service.gateway.core import GatewayCore
        from service.gateway.render_client import HttpRenderClient
        from service.gateway.service import API
        core = GatewayCore.build(get_settings(), HttpRenderClient("http://127.0.0.1:9"))
        API.state.core = core
        with TestClient(API) as client:
            statuses = [client.get("/admin/twins/list").status_code, client.post("/verify", content=b"x").status_code]
        core.close()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers", "transformers", "peft"))
        print(json.dumps({{"heavy": heavy, "statuses": statuses}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [401, 401]  # the routes ran (and refused the keyless calls)
    assert report["heavy"] == []


def test_docs_json_lists_every_public_route_with_its_schemas(client):
    from fastapi.routing import APIRoute

    from service.gateway.api import ROUTERS
    from service.gateway.service import API

    assert len(API.routes) == len(ROUTERS)  # every router of the app is one of these
    routes = {(f"/v1{r.path}", method.lower()) for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)
              for method in r.methods}
    spec = client.get("/docs.json").json()
    listed = {(path, method) for path, item in spec["paths"].items() for method in item if path.startswith("/v1/")}
    assert routes == listed
    assert len(routes) >= 36  # tests/test_docs.py checks that docs/API.md shows each one
    for path, method in routes:
        operation = spec["paths"][path][method]
        # error schemas are declared (only those the route can answer: tests/test_openapi_contract.py)
        keyless = path == "/v1/detect"  # the free public check takes no key: no 401 or 403 to answer
        expected = {"429", "500", "503"} if keyless else {"401", "403", "429", "500", "503"}
        assert expected <= set(operation["responses"]), (path, method)
    generate = spec["paths"]["/v1/generate"]["post"]
    assert "requestBody" in generate and "200" in generate["responses"]
    reads = {path for path, method in routes if method == "get"}
    assert {"/v1/jobs/status", "/v1/jobs/get", "/v1/usage", "/v1/admin/twins/list", "/v1/admin/keys/list"} <= reads


def test_rows_of_a_batch_equal_their_single_renders(engine):
    from service.schemas import GenerateRequest

    first = GenerateRequest(twin_id="demo-ava", prompt="red coat, studio", width=256, height=256, steps=2, seed=5)
    second = GenerateRequest(twin_id="demo-ava", prompt="linen dress, street", width=256, height=256, steps=2,
                             seed=9, num_images=2)
    batch = engine.generate_batch([(first, 5, "a" * 32), (second, 9, "b" * 32)])
    assert [len(r.images) for r in batch] == [1, 2] and [r.generation_id for r in batch] == ["a" * 32, "b" * 32]
    alone_first, alone_second = engine.generate(first), engine.generate(second)
    assert same_picture(batch[0].images[0].data, alone_first.images[0].data)
    for row, alone in zip(batch[1].images, alone_second.images):
        assert row.seed == alone.seed and same_picture(row.data, alone.data)
    assert not same_picture(batch[0].images[0].data, batch[1].images[0].data)
    with pytest.raises(ValueError):
        engine.generate_batch([(first, 5, "c" * 32), (first.model_copy(update={"width": 512}), 5, "d" * 32)])


# -- the dispatcher ---------------------------------------------------------------------------


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


class StandInGeneration:
    """Renders nothing: returns a tiny image per request and records the calls (dispatch order
    and grouping are what these tests are about; the real path is tests/test_fanout.py)."""

    def __init__(self):
        self.calls: list[list[tuple[str, int]]] = []
        self.lock = threading.Lock()

    def run_batch(self, pending, **_):
        with self.lock:
            self.calls.append([(p.job["job_id"], p.job["item"]) for p in pending])
        data = png()
        return [GenerationResult(p.generation_id, p.request.twin_id, p.seed,
                                 [GeneratedImage(0, "png", 8, 8, p.seed, data, "0" * 64)]) for p in pending]


class CountingDelivery:
    def __init__(self):
        self.stored: list[tuple[str, int]] = []

    def store(self, job_id, index, n, image, sidecar):
        self.stored.append((job_id, index))
        return {"n": n, "format": image.format, "sha256": image.sha256}

    def with_urls(self, entry, expiry_s):
        return entry


def dispatcher_for(registry, store, generation, delivery, **kwargs):
    from service.jobs.dispatcher import RenderDispatcher

    return RenderDispatcher(store, registry, generation, lambda target: delivery, lambda *a: None, **kwargs)


ITEM = {"twin_id": "demo-ava", "prompt": "studio", "width": 256, "height": 256, "steps": 2}


def test_a_dispatcher_that_lost_an_items_lease_neither_records_nor_delivers_it(queue):
    registry, store = queue
    job = store.create_job("brand-a", "k1", [ITEM], priority=5, output_target="inline", url_expiry_s=60,
                           webhook_per_item=False)
    delivery = CountingDelivery()
    slow = dispatcher_for(registry, store, StandInGeneration(), delivery)
    [held] = store.lease_items(slow.owner, 30, now=utcnow() - timedelta(seconds=60))  # its lease lapsed 30 s ago
    [taken] = store.lease_items("other-gateway", 30)
    assert (held.token, taken.token) == (1, 2)
    prepared = slow.prepare(held, {})
    result = StandInGeneration().run_batch([prepared.pending])[0]
    assert slow.complete(held, result, prepared) is False
    assert delivery.stored == [] and store.get_item("brand-a", job.id, 0).status == "running"
    assert slow.complete(taken, result, slow.prepare(taken, {})) is True
    assert delivery.stored == [(job.id, 0)]
    assert store.get_job("brand-a", job.id, with_items=False).status == "completed"


def test_a_small_job_of_another_tenant_is_not_stuck_behind_a_big_one(queue):
    registry, store = queue
    big = store.create_job("brand-a", "ka", [ITEM] * 200, priority=9, output_target="inline", url_expiry_s=60,
                           webhook_per_item=False)
    small = store.create_job("brand-b", "kb", [{**ITEM, "twin_id": "demo-ben"}] * 5, priority=0,
                             output_target="inline", url_expiry_s=60, webhook_per_item=False)
    generation = StandInGeneration()
    dispatcher = dispatcher_for(registry, store, generation, CountingDelivery(), batch=1)
    rounds = 0
    while store.get_job("brand-b", small.id, with_items=False).status != "completed":
        dispatcher.dispatch(dispatcher.lease())
        rounds += 1
        assert rounds <= 12, generation.calls
    assert rounds <= 10  # B's five items alternate with A's, whatever A's priority and size
    assert {job for call in generation.calls for job, _ in call} == {big.id, small.id}


def test_items_of_one_twin_and_shape_share_a_render_call(queue):
    registry, store = queue
    items = [ITEM, ITEM, {**ITEM, "width": 512}, ITEM]
    job = store.create_job("brand-a", "k", items, priority=5, output_target="inline", url_expiry_s=60,
                           webhook_per_item=False)
    generation = StandInGeneration()
    dispatcher = dispatcher_for(registry, store, generation, CountingDelivery(), batch=4)
    while store.get_job("brand-a", job.id, with_items=False).status != "completed":
        dispatcher.dispatch(dispatcher.lease())
    assert sorted(sorted(i for _, i in call) for call in generation.calls) == [[0, 1, 3], [2]]


def test_shutdown_gives_back_the_leases_of_calls_in_flight(queue):
    registry, store = queue
    job = store.create_job("brand-a", "k", [ITEM] * 3, priority=5, output_target="inline", url_expiry_s=60,
                           webhook_per_item=False)
    entered, release = threading.Event(), threading.Event()

    class Stuck(StandInGeneration):
        def run_batch(self, pending, **kwargs):
            entered.set()
            release.wait(10)
            return super().run_batch(pending)

    dispatcher = dispatcher_for(registry, store, Stuck(), CountingDelivery(), batch=3, poll_s=0.05)
    dispatcher.start()
    assert entered.wait(10)
    assert dispatcher.stop(grace_s=0.2) == 3  # the call outlived the grace period: its leases went back
    release.set()
    page = store.job_page("brand-a", job.id, offset=0, limit=10)[1]
    assert [i.status for i in page] == ["pending"] * 3
    [again] = store.lease_items("next-gateway", 30, limit=1)
    assert again.token == 2  # fenced: the stopped dispatcher's late result can no longer be recorded
