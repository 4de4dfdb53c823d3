"""A job survives its replica: `bentoml serve` is killed (SIGKILL, no shutdown hook) in the
middle of a job, a new one starts on the same registry, takes the job over when the lease
lapses and finishes it without redoing finished items."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest

from builds.serving import serve

ITEM = {"twin_id": "demo-cleo", "prompt": "linen trench coat, studio", "width": 256, "height": 256, "steps": 12}


def call(url: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_a_job_survives_a_killed_replica(copied_home, demo_keys, tmp_path):
    token = demo_keys["ATELIER_DEMO_KEY"]
    env = {"ATELIER_WARMUP": "0", "ATELIER_JOB_LEASE_S": "3", "ATELIER_CACHE_DIR": str(tmp_path / "cache")}
    (tmp_path / "first").mkdir()
    first = serve(copied_home, tmp_path / "first", env={**env, "ATELIER_AUDIT_DIR": str(tmp_path / "audit-1")})
    try:
        items = [{**ITEM, "sku": f"TC-{i}", "seed": i} for i in range(12)]
        job_id = call(first.url + "/v1/jobs/submit", token, {"items": items})["job_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = call(f"{first.url}/v1/jobs/status?job_id={job_id}", token)
            if status["items_done"] >= 2:
                break
            time.sleep(0.1)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(30)
    finally:
        first.stop()
    done_before = {i["index"] for i in status["items"] if i["status"] == "done"}
    assert status["status"] == "running" and 2 <= len(done_before) < 12

    (tmp_path / "second").mkdir()
    with serve(copied_home, tmp_path / "second", env={**env, "ATELIER_AUDIT_DIR": str(tmp_path / "audit-2")}) as second:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = call(f"{second.url}/v1/jobs/status?job_id={job_id}", token)
            if status["status"] != "running":
                break
            time.sleep(0.2)
        assert (status["status"], status["items_done"], status["items_failed"]) == ("completed", 12, 0)
        result = call(f"{second.url}/v1/jobs/get?job_id={job_id}", token)
    assert [item["sku"] for item in result["items"]] == [f"TC-{i}" for i in range(12)]
    assert all(len(item["images"]) == 1 for item in result["items"])
    # items finished before the kill were kept, not rendered again
    from service.audit.log import AuditLog

    redone = [r for r in AuditLog.read_only(tmp_path / "audit-2").find("event", "generation")
              if (r.get("job") or {}).get("job_id") == job_id and r["job"]["item"] in done_before]
    assert redone == []
