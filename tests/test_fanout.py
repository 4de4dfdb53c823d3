"""Catalogue work fans out over renderers, as real processes: `bentoml serve` with a two-worker
renderer, and a gateway and a renderer started apart (as on Knative or BentoCloud) whose
renderer is killed mid-job, then gone (scaled to zero), then started again.

Each item is rendered and delivered exactly once: one `ok` audit record per item, one S3
object per image whose bytes are the ones the result names, and the job completes by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from builds.serving import GATEWAY, RENDERER, free_port, serve, serve_one
from tests.audit_reading import find

RENDERER_READY = '"logger": "atelier.renderer", "event": "ready"'
ITEM = {"twin_id": "demo-ava", "prompt": "linen dress, studio", "width": 256, "height": 256, "steps": 2}
pytestmark = pytest.mark.slow


def call(url: str, token: str, body: dict | None = None, method: str | None = None, timeout: float = 120):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
        return json.loads(raw) if response.headers.get_content_type() == "application/json" else raw


class Hooks(BaseHTTPRequestHandler):
    got: list = []
    arrived = threading.Event()

    def do_POST(self):
        type(self).got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        type(self).arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def hooks():
    Hooks.got, Hooks.arrived = [], threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def s3_env(s3_server, tmp_path):
    return {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
            "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url, "ATELIER_S3_REGION": s3_server.region,
            "ATELIER_DEV_CALLBACKS": "1", "ATELIER_AUDIT_DIR": str(tmp_path / "audit"),
            "ATELIER_CACHE_DIR": str(tmp_path / "cache"), "ATELIER_JOB_POLL_MS": "100"}


def deliver_to_s3(url: str, admin: str, bucket: str, prefix: str, webhook: str | None = None) -> None:
    body = {"tenant_id": "demo", "output_target": f"s3://{bucket}/{prefix}"}
    if webhook:
        body["webhook_url"] = webhook
    call(url + "/v1/admin/tenants/delivery", admin, body)


def wait_done(url: str, token: str, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = call(f"{url}/v1/jobs/status?job_id={job_id}", token)
        if status["status"] in ("completed", "failed", "canceled"):
            return status
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish: {status}")


def all_items(url: str, token: str, job_id: str) -> list[dict]:
    items, offset = [], 0
    while offset is not None:
        page = call(f"{url}/v1/jobs/get?job_id={job_id}&offset={offset}&limit=20", token)
        items += page["items"]
        offset = page["next_offset"]
    return items


def assert_delivered_once(s3_server, home: Path, prefix: str, job_id: str, items: list[dict]) -> None:
    """One ok audit record per item; one image object per image, holding the recorded bytes."""
    s3 = s3_server.client()
    listed = s3.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{prefix}/{job_id}/").get("Contents", [])
    images = sorted(o["Key"] for o in listed if o["Key"].endswith(".png"))
    assert images == sorted(f"{prefix}/{job_id}/{i}-0.png" for i in range(len(items)))
    for item in items:
        [image] = item["images"]
        data = s3.get_object(Bucket=s3_server.bucket, Key=image["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == image["sha256"]
    generations = [r for r in find(home, "event", "generation")
                   if (r.get("job") or {}).get("job_id") == job_id]
    ok = sorted(r["job"]["item"] for r in generations if r["outcome"] == "ok")
    assert ok == list(range(len(items)))  # each item rendered, recorded and delivered exactly once


def test_a_job_fans_out_over_two_renderer_workers_while_reads_stay_fast(copied_home, demo_keys, s3_server, s3_env, tmp_path):
    token, admin = demo_keys["ATELIER_DEMO_KEY"], demo_keys["ATELIER_ADMIN_KEY"]
    # Saturated, as the reads below need: renders long enough, and a window one call deeper than
    # the workers, that a call is waiting whenever a worker frees. With 2-step renders and the
    # default window, the gateway's S3 deliveries were slower than the renders, both workers sat
    # idle when each call came, and the split then was the kernel's and the accept gate's choice.
    env = {**s3_env, "ATELIER_RENDERER_WORKERS": "2", "ATELIER_RENDERER_CONCURRENCY": "1",
           "ATELIER_DISPATCH_WINDOW": "4"}
    with serve(copied_home, tmp_path / "served", env=env) as served:
        served.wait_for_log(RENDERER_READY, count=2)  # both workers loaded (the gateway is ready before them)
        first = call(served.url + "/v1/generate", token, {**ITEM, "seed": 3})  # an image to verify while busy
        deliver_to_s3(served.url, admin, s3_server.bucket, "fanout")
        job_id = call(served.url + "/v1/jobs/submit", token,
                      {"items": [{**ITEM, "steps": 8, "sku": f"F-{i}", "seed": i} for i in range(40)]})["job_id"]
        # reads while both renderer workers are busy with the job
        time.sleep(1.0)
        import base64

        image = base64.b64decode(first["images"][0]["data_base64"])
        verify = urllib.request.Request(served.url + "/v1/verify", data=image,
                                        headers={"Content-Type": "image/png", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(verify, timeout=60) as response:
            assert json.loads(response.read())["generation_id"] == first["generation_id"]
        during = call(f"{served.url}/v1/jobs/status?job_id={job_id}", token)
        page = call(f"{served.url}/v1/jobs/get?job_id={job_id}&limit=5", token)
        assert during["status"] == "running" and during["items_done"] < 40  # the renderer was saturated meanwhile
        assert len(page["items"]) == 5 and page["next_offset"] == 5

        status = wait_done(served.url, token, job_id)
        assert (status["status"], status["items_done"], status["items_failed"]) == ("completed", 40, 0)
        items = all_items(served.url, token, job_id)
    workers = [item["rendered_by"] for item in items]
    shares = sorted(workers.count(w) for w in set(workers))
    assert len(shares) == 2 and shares[0] >= 40 // 3, shares  # both workers rendered, each at least a third
    assert_delivered_once(s3_server, copied_home, "fanout", job_id, items)


def test_a_job_resumes_after_its_renderer_is_killed_and_gone_with_no_client_request(
        copied_home, demo_keys, s3_server, s3_env, hooks, tmp_path):
    token, admin = demo_keys["ATELIER_DEMO_KEY"], demo_keys["ATELIER_ADMIN_KEY"]
    port = free_port()
    renderer_url = f"http://127.0.0.1:{port}"
    renderer = serve_one(RENDERER, copied_home, tmp_path / "r1", env=s3_env, port=port)
    gateway = serve_one(GATEWAY, copied_home, tmp_path / "g", env=s3_env, depends={RENDERER: renderer_url})
    try:
        deliver_to_s3(gateway.url, admin, s3_server.bucket, "resume", webhook=hooks)
        items = [{**ITEM, "steps": 6, "sku": f"R-{i}", "seed": i} for i in range(10)]
        job_id = call(gateway.url + "/v1/jobs/submit", token, {"items": items})["job_id"]
        deadline = time.monotonic() + 120
        while call(f"{gateway.url}/v1/jobs/status?job_id={job_id}", token)["items_done"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(renderer.process.pid, signal.SIGKILL)  # mid-job, no shutdown hook
        renderer.process.wait(30)
        renderer.stop()
        time.sleep(3)  # no renderer at all now: scaled to zero
        stalled = call(f"{gateway.url}/v1/jobs/status?job_id={job_id}", token)
        assert stalled["status"] == "running" and stalled["items_done"] < 10
        assert not Hooks.arrived.is_set()

        with serve_one(RENDERER, copied_home, tmp_path / "r2", env=s3_env, port=port):
            # nobody calls the gateway: its dispatcher finds the renderer back by itself
            assert Hooks.arrived.wait(180), "job.completed never arrived"
        [event] = Hooks.got
        assert event["type"] == "job.completed" and event["data"]["job_id"] == job_id
        assert (event["data"]["status"], event["data"]["items_done"]) == ("completed", 10)
        done = all_items(gateway.url, token, job_id)
    finally:
        gateway.stop()
        renderer.stop()
    assert [item["status"] for item in done] == ["done"] * 10
    assert_delivered_once(s3_server, copied_home, "resume", job_id, done)
