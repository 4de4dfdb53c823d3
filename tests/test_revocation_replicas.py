"""Revocation across replicas: two real `bentoml serve` processes (each a gateway and its
renderer) share one registry database.

Replica A takes the revoke call; replica B, whose renderer holds the twin's adapter and is
rendering it, must refuse the next request at once (B's gateway reads the registry), cancel
the running one, and evict the adapter within the 2 s target (ATELIER_REGISTRY_POLL_MS=500).
The renderer writes no audit log: its eviction is read from its JSON log line
`revocation applied`; the refusals are in the audit record B's gateway committed to the shared registry."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from builds.serving import serve
from tests.audit_reading import find
from service.config import Settings
from service.registry import open_registry
from service.tenancy.manage import record_consent
from tests.test_adapter_slot import lora_file

TWIN = "replica-uma"
REVOCATION_TARGET_S = 2.0


def post(url: str, body: dict, token: str, timeout: float = 300) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def revocations_applied(server, twin_id: str) -> list[dict]:
    """The renderer's `revocation applied` log lines for `twin_id` (JSON lines in the server's log)."""
    found = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "revocation applied" and entry.get("twin_id") == twin_id:
            found.append(entry)
    return found


@pytest.mark.slow
def test_a_revocation_on_one_replica_stops_the_twin_on_the_other(copied_home, demo_keys, tmp_path):
    data = lora_file(copied_home / "demo" / "pipeline", 4, 4.0, seed=401)
    (copied_home / "adapters" / "replica-uma.safetensors").write_bytes(data)
    registry = open_registry(Settings.from_env({"ATELIER_HOME": str(copied_home)}).db_url)
    registry.put_twin(TWIN, display_name="Uma", adapter_key="replica-uma.safetensors",
                      adapter_sha256=hashlib.sha256(data).hexdigest(), rank=4)
    record_consent(registry, TWIN, tenants=["demo"], uses=["ecommerce"], recorded_by="tests")
    registry.engine.dispose()

    def start(name: str):
        env = {"ATELIER_AUDIT_DIR": str(tmp_path / f"audit-{name}"), "ATELIER_CACHE_DIR": str(tmp_path / f"cache-{name}"),
               "ATELIER_WARMUP": "0", "ATELIER_REGISTRY_POLL_MS": "500"}
        (tmp_path / name).mkdir()
        return serve(copied_home, tmp_path / name, env=env)

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(start, ["a", "b"])
    user, admin = demo_keys["ATELIER_DEMO_KEY"], demo_keys["ATELIER_ADMIN_KEY"]
    quick = {"twin_id": TWIN, "prompt": "studio photo, linen dress", "width": 256, "height": 256, "steps": 2, "seed": 1}
    try:
        assert post(b.url + "/v1/generate", quick, user)[0] == 200  # B now holds the adapter

        long_running: dict = {}
        slow = threading.Thread(target=lambda: long_running.update(
            answer=post(b.url + "/v1/generate", {**quick, "width": 512, "height": 512, "steps": 100}, user)))
        slow.start()
        time.sleep(1.0)  # B is denoising

        status, body = post(a.url + "/v1/admin/twins/revoke", {"twin_id": TWIN}, admin)
        revoked_at = time.monotonic()
        assert status == 200, body

        status, body = post(b.url + "/v1/generate", quick, user)  # at once, no waiting
        assert (status, body["error"]["code"]) == (403, "revoked")

        applied = []
        while not applied and time.monotonic() - revoked_at < 10:
            applied = revocations_applied(b, TWIN)
            time.sleep(0.05)
        eviction_s = time.monotonic() - revoked_at
        print(f"replica B evicted the revoked twin {eviction_s:.2f} s after the revoke call returned")
        assert applied and {"device", "host", "disk"} <= set(applied[0]["evicted_from"])
        assert eviction_s < REVOCATION_TARGET_S
        [revoke] = [r for r in find(copied_home, "event", "admin.revoke") if r["twin_id"] == TWIN]
        assert revoke["outcome"] == "ok"

        slow.join(300)
        status, body = long_running["answer"]
        assert (status, body["error"]["code"]) == (403, "revoked")
        refused = [r for r in find(copied_home, "event", "generation")
                   if r["twin_id"] == TWIN and r["params"]["steps"] == 100]
        assert refused and refused[0]["outcome"] == "refused" and refused[0]["reason"] == "revoked"
        assert "images" not in refused[0]  # cancelled between steps, not rendered and withheld
    finally:
        a.stop()
        b.stop()
