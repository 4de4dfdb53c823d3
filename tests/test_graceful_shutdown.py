"""SIGTERM during a generation (what Kubernetes and BentoCloud send on scale-down): the
response still completes (the renderer finishes its render call, the gateway answers), its
audit record is on disk, and the gateway's log is sealed."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request

import pytest

from builds.serving import serve
from tests.audit_reading import audit_store, find


@pytest.mark.slow
def test_sigterm_lets_the_running_generation_finish_and_flushes_the_audit_log(copied_home, demo_keys, tmp_path):
    audit_dir = tmp_path / "audit"
    env = {"ATELIER_WARMUP": "0", "ATELIER_AUDIT_DIR": str(audit_dir), "ATELIER_CACHE_DIR": str(tmp_path / "cache")}
    server = serve(copied_home, tmp_path, env=env)
    answer: dict = {}
    body = {"twin_id": "demo-ava", "prompt": "linen dress, studio", "width": 512, "height": 512, "steps": 40, "seed": 3}

    def generate(fields: dict) -> None:
        request = urllib.request.Request(server.url + "/v1/generate", data=json.dumps(fields).encode(), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                answer.update(status=response.status, body=json.loads(response.read()))
        except Exception as exc:  # the assertion below reports it
            answer.update(error=repr(exc))

    try:
        # The gateway is ready before the renderer has loaded the pipeline: a first small
        # generation waits for the renderer, so the next one is surely rendering 1.5 s in.
        generate({**body, "width": 256, "height": 256, "steps": 2})
        assert answer.get("status") == 200, answer
        answer.clear()
        caller = threading.Thread(target=generate, args=(body,))
        caller.start()
        time.sleep(1.5)  # the generation is running
        started = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)  # the arbiter, as a container runtime would
        caller.join(300)
        server.process.wait(120)
        print(f"shut down {time.monotonic() - started:.1f} s after SIGTERM")
    finally:
        server.stop()
    assert answer.get("status") == 200, answer
    [record] = find(copied_home, "generation_id", answer["body"]["generation_id"])
    assert record["outcome"] == "ok" and record["images"]
    # the shutdown hook ran: it signed a final checkpoint over the chain, ended it and sealed
    # its records into the archive directory (no checkpoint is due before 60 s)
    store = audit_store(copied_home)
    [chain] = [c for c in store.chains() if any(json.loads(line).get("generation_id") == record["generation_id"]
                                                 for line in store.lines(c.log_id))]
    assert chain.ended_at is not None and chain.archived == chain.size
    checkpoints = sorted((audit_dir / "chains" / chain.log_id / "checkpoints").glob("*.json"))
    assert checkpoints and json.loads(checkpoints[-1].read_text())["tree_size"] == chain.size
