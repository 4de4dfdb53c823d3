"""A job survives its machine: the whole `bentoml serve` (gateway and renderer) is killed with
SIGKILL in the middle of a job, so no shutdown hook gives any lease back. A new one starts on
the same registry; its dispatcher leases the pending items at once and the items the dead one
was rendering once their item leases lapse (ATELIER_JOB_LEASE_S), under a new fencing token,
and finishes the job without rendering a finished item again."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from builds.serving import serve
from tests.audit_reading import chain_ids, records_of_chains_since
from service.config import Settings
from service.registry import JobStore
from service.registry import open_registry
from tests.conftest import kill_all

ITEM = {"twin_id": "demo-cleo", "prompt": "linen trench coat, studio", "width": 256, "height": 256, "steps": 12}


def call(url: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def items_in_registry(home, job_id: str) -> list:
    """The job's items as the registry holds them (read through SQLite, after the kill)."""
    registry = open_registry(Settings.from_env({"ATELIER_HOME": str(home)}).db_url)
    try:
        return JobStore(registry.engine).job_page("demo", job_id, offset=0, limit=100)[1]
    finally:
        registry.engine.dispose()


@pytest.mark.slow
def test_a_job_survives_a_killed_bento(copied_home, demo_keys, tmp_path):
    token = demo_keys["ATELIER_DEMO_KEY"]
    env = {"ATELIER_WARMUP": "0", "ATELIER_JOB_LEASE_S": "3", "ATELIER_CACHE_DIR": str(tmp_path / "cache")}
    (tmp_path / "first").mkdir()
    first = serve(copied_home, tmp_path / "first", env={**env, "ATELIER_AUDIT_DIR": str(tmp_path / "audit-1")})
    try:
        items = [{**ITEM, "sku": f"TC-{i}", "seed": i} for i in range(12)]
        job_id = call(first.url + "/v1/jobs/submit", token, {"items": items})["job_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # some items done and a group rendering now
            states = [i.status for i in items_in_registry(copied_home, job_id)]
            if states.count("done") >= 2 and "running" in states:
                break
            time.sleep(0.1)
        kill_all(first)  # arbiter, gateway and renderer: no lease is given back
    finally:
        first.stop()
    before = items_in_registry(copied_home, job_id)
    done_before = {i.index for i in before if i.status == "done"}
    running_before = {i.index for i in before if i.status == "running"}  # leased by the dead dispatcher
    assert 2 <= len(done_before) < 12 and running_before, [(i.index, i.status) for i in before]

    (tmp_path / "second").mkdir()
    first_chains = chain_ids(copied_home)  # the first bento's audit chain; the second writes its own
    with serve(copied_home, tmp_path / "second", env={**env, "ATELIER_AUDIT_DIR": str(tmp_path / "audit-2")}) as second:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = call(f"{second.url}/v1/jobs/status?job_id={job_id}", token)
            if status["status"] != "running":
                break
            time.sleep(0.2)
        assert (status["status"], status["items_done"], status["items_failed"]) == ("completed", 12, 0)
        result = call(f"{second.url}/v1/jobs/get?job_id={job_id}&limit=100", token)
    assert [item["sku"] for item in result["items"]] == [f"TC-{i}" for i in range(12)]
    assert all(item["status"] == "done" and len(item["images"]) == 1 for item in result["items"])
    after = {i.index: i for i in items_in_registry(copied_home, job_id)}
    for index in running_before:  # taken over once its lease lapsed: a newer token than the dead holder's
        assert after[index].lease_token > before[index].lease_token
    for index in done_before:  # finished before the kill: kept as they were
        assert after[index].result == before[index].result

    # every unfinished item was rendered exactly once by the new bento; finished ones never again
    rendered = [r["job"]["item"] for r in records_of_chains_since(copied_home, first_chains)
                if r.get("event") == "generation" and (r.get("job") or {}).get("job_id") == job_id
                and r["outcome"] == "ok"]
    assert sorted(rendered) == sorted(set(range(12)) - done_before)
