"""The fleet's truth, as real processes: two gateways (two pods: separate `ATELIER_HOME`s) and one
renderer on one registry database and the S3 test server. One gateway is SIGKILLed mid-load,
its home deleted (the node is gone) and a replacement started; then:

- every generation answered 200 has exactly one `ok` audit record, found from every gateway;
- usage per twin equals the images answered (plus any generation the dead gateway recorded
  and rendered but could not answer: named, bounded by its clients in flight);
- `atelier audit verify` passes over the whole fleet's record, and the dead gateway's chain
  is adopted by a live one, sealed and shipped to the Object Lock bucket, where it verifies;
- every catalogue item is delivered exactly once (one S3 object per image);
- a key limited to R requests/min gets at most R x 1.1 admitted across both gateways.

The registry is PostgreSQL when ATELIER_TEST_PG_URL is set (as in .ci/run), else one SQLite
file shared by the three processes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import httpx
import pytest

from builds.demo import DemoAssets, ENV_FILE, read_demo_env, setup_demo_registry
from builds.serving import GATEWAY, RENDERER, free_port, serve_one
from tests.audit_reading import audit_store
from tests.conftest import PG_ENV, REPO_ROOT, kill_all, reset_pg

pytestmark = pytest.mark.slow

SMALL = {"prompt": "studio photo, linen dress", "width": 256, "height": 256, "steps": 2}
TWINS = ("demo-ava", "demo-ben", "demo-cleo")
LIMITED_RPM = 30


def call(url: str, token: str, body: dict | None = None, timeout: float = 120):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def chains_opened_by(served) -> set[str]:
    """The audit chains a served gateway opened, from its own JSON log lines."""
    opened = set()
    for line in served.log_path.read_text().splitlines():
        if '"audit chain opened"' in line:
            opened.add(json.loads(line[line.index("{"):])["log_id"])
    return opened


def gateway_home(demo_home: Path, target: Path) -> Path:
    """A pod's fresh home: the demo's keys and files, no registry, no audit, no cache."""
    shutil.copytree(demo_home, target, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit", "bentoml",
                                                                      ENV_FILE))
    return target


@pytest.fixture(scope="module")
def fleet(demo_home, s3_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("fleet")
    pg = os.environ.get(PG_ENV)
    if pg:
        reset_pg(pg)
    db_url = pg or f"sqlite:///{work / 'registry.db'}"
    renderer_home = gateway_home(demo_home, work / "renderer-home")
    setup_demo_registry(DemoAssets(renderer_home, renderer_home / "demo" / "pipeline", renderer_home / "adapters",
                                   renderer_home / ENV_FILE), db_url)
    keys = read_demo_env(renderer_home / ENV_FILE)
    audit_bucket = f"fleet-audit-{secrets.token_hex(6)}"
    s3_server.client().create_bucket(Bucket=audit_bucket, ObjectLockEnabledForBucket=True)
    env = {"ATELIER_DB_URL": db_url, "ATELIER_INTERNAL_TOKEN": secrets.token_urlsafe(32),
           "AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
           "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url, "ATELIER_S3_REGION": s3_server.region,
           "ATELIER_AUDIT_S3": f"s3://{audit_bucket}/fleet", "ATELIER_AUDIT_SEGMENT_RECORDS": "25",
           "ATELIER_AUDIT_HEARTBEAT_S": "0.5", "ATELIER_AUDIT_ORPHAN_AFTER_S": "4",
           "ATELIER_JOB_LEASE_S": "4", "ATELIER_JOB_POLL_MS": "100", "ATELIER_REGISTRY_POLL_MS": "200",
           "ATELIER_WARMUP": "0", "ATELIER_MAX_IMAGE_SIDE": "256", "ATELIER_MAX_STEPS": "4",
           "ATELIER_RENDER_WAIT_S": "120"}
    port = free_port()
    renderer = serve_one(RENDERER, renderer_home, work / "renderer", env={**env, "ATELIER_CACHE_DIR": str(work / "rc")},
                         port=port)
    processes = {"renderer": renderer}

    def start_gateway(name: str):
        home = gateway_home(demo_home, work / f"{name}-home")
        served = serve_one(GATEWAY, home, work / name, env={**env, "ATELIER_CACHE_DIR": str(home / "cache")},
                           depends={RENDERER: f"http://127.0.0.1:{port}"})
        processes[name] = served
        return served, home

    state = {"work": work, "db_url": db_url, "keys": keys, "audit_bucket": audit_bucket, "env": env,
             "start_gateway": start_gateway, "processes": processes, "renderer_home": renderer_home}
    try:
        yield state
    finally:
        for served in processes.values():
            served.stop()


def test_a_fleet_keeps_one_truth_through_a_lost_node(fleet, s3_server):
    token, admin = fleet["keys"]["ATELIER_DEMO_KEY"], fleet["keys"]["ATELIER_ADMIN_KEY"]
    (g1, g1_home), (g2, _) = fleet["start_gateway"]("g1"), fleet["start_gateway"]("g2")
    call(g1.url + "/v1/admin/tenants/delivery", admin,
         {"tenant_id": "demo", "output_target": f"s3://{s3_server.bucket}/fleet-jobs"})
    items = [{"twin_id": TWINS[i % 3], **SMALL, "sku": f"FL-{i}", "seed": i} for i in range(12)]
    job_id = call(g2.url + "/v1/jobs/submit", token, {"items": items})["job_id"]

    # -- load through both gateways; g1 dies mid-load --------------------------------------------
    answered: list[dict] = []
    transport_errors = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    urls = {"g1": g1.url, "g2": g2.url}

    def client(index: int) -> None:
        target = "g1" if index % 2 == 0 else "g2"
        n = 0
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"}) as http:
            while not stop.is_set():
                n += 1
                twin = TWINS[(index + n) % 3]
                try:
                    response = http.post(urls[target] + "/v1/generate",
                                         json={"twin_id": twin, **SMALL, "seed": index * 10_000 + n})
                except httpx.HTTPError:
                    with lock:
                        transport_errors[target] += 1
                    if target == "g1":
                        stop.wait(0.5)
                    continue
                assert response.status_code in (200, 503), response.text  # 503 only while no gateway is up
                if response.status_code == 200:
                    body = response.json()
                    with lock:
                        answered.append({"generation_id": body["generation_id"], "twin_id": twin,
                                         "images": len(body["images"])})

    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(8)
    g1_chains = chains_opened_by(g1)
    assert len(g1_chains) == 1 and g1_chains <= {c.log_id for c in audit_store(fleet["db_url"]).chains()}
    kill_all(g1)  # the node is lost: arbiter and worker, no shutdown hook, no lease given back
    g1.process.wait(30)
    shutil.rmtree(g1_home)  # and its disk with it
    g3, _ = fleet["start_gateway"]("g3")  # the replacement pod
    urls["g1"] = g3.url
    time.sleep(4)
    stop.set()
    for thread in clients:
        thread.join(180)

    # -- the catalogue job finishes on the gateways still alive ------------------------------------
    deadline = time.monotonic() + 240
    while (status := call(f"{g3.url}/v1/jobs/status?job_id={job_id}", token))["status"] == "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert (status["status"], status["items_done"]) == ("completed", 12), status
    result = call(f"{g2.url}/v1/jobs/get?job_id={job_id}&limit=100", token)
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=f"fleet-jobs/{job_id}/")
    objects = sorted(o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".png"))
    assert objects == sorted(f"fleet-jobs/{job_id}/{i}-0.png" for i in range(12))  # each item delivered once
    assert [item["status"] for item in result["items"]] == ["done"] * 12

    # -- one audit record per answered generation, from every gateway --------------------------------
    store = audit_store(fleet["db_url"])
    ok = [r for r in store.find("event", "generation") if r["outcome"] == "ok"]
    by_generation = Counter(r["generation_id"] for r in ok)
    assert len(answered) >= 8, answered
    for answer in answered:
        assert by_generation[answer["generation_id"]] == 1, answer
    for gateway in (g2, g3):
        for answer in answered[:: max(1, len(answered) // 5)]:
            found = call(f"{gateway.url}/v1/admin/audit/records?generation_id={answer['generation_id']}", admin)
            assert [r["outcome"] for r in found["records"] if r["event"] == "generation"] == ["ok"]

    # -- usage: exact, the same from every gateway ------------------------------------------------
    answered_ids = {a["generation_id"] for a in answered}
    job_records = [r for r in ok if (r.get("job") or {}).get("job_id") == job_id]
    unanswered = [r for r in ok if r["generation_id"] not in answered_ids and not r.get("job")]
    # recorded by the dead gateway in the instant before it died, never answered: at most one
    # per client that was talking to it
    assert len(unanswered) <= 2, unanswered
    expected = Counter()
    for a in answered:
        expected[a["twin_id"]] += a["images"]
    for r in job_records + unanswered:
        expected[r["twin_id"]] += len(r["images"])
    for gateway in (g2, g3):
        rows = call(gateway.url + "/v1/usage", admin)["rows"]
        usage = Counter()
        for row in rows:
            usage[row["twin_id"]] += row["images"]
        assert {t: usage[t] for t in TWINS} == {t: expected[t] for t in TWINS}, (rows, expected)

    # -- the dead gateway's chain is adopted, sealed and shipped; the whole record verifies ---------
    deadline = time.monotonic() + 60
    while True:
        dead = [store.chain(log_id) for log_id in g1_chains]
        if all(c.ended_at is not None and c.archived == c.size for c in dead):
            break
        assert time.monotonic() < deadline, dead
        time.sleep(0.5)
    public_key = fleet["renderer_home"] / "keys" / "audit_ed25519.pub.pem"
    verified = subprocess.run([sys.executable, "-m", "service.cli", "audit", "verify", "--key", str(public_key)],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "ATELIER_DB_URL": fleet["db_url"]})
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "chain(s) of the registry database" in verified.stdout
    from service.audit.checkpoint import load_public_key
    from service.audit.shipper import download_log
    from service.audit.verify import verify_log

    # The chain counts as archived once its segments are sealed; its files (segments, then the
    # final checkpoint) reach the bucket on that pass's shipping, a moment later: read the
    # bucket until the shipped copy is whole.
    for chain in dead:
        deadline = time.monotonic() + 60
        attempt = 0
        while True:
            attempt += 1
            copy = download_log(fleet["work"] / f"archive-{chain.log_id}-{attempt}", bucket=fleet["audit_bucket"],
                                prefix="fleet", log_id=chain.log_id, client=s3_server.client())
            result = verify_log(copy, [load_public_key(public_key)])
            if result.ok and result.records == chain.size and result.unanchored == 0:
                break
            assert time.monotonic() < deadline, (result.records, result.unanchored, result.problems)
            time.sleep(0.5)

    # -- a fleet-wide limit: R requests/min across both gateways -----------------------------------
    from service.registry import open_registry

    registry = open_registry(fleet["db_url"])
    _, limited = registry.create_api_key("demo", ["generate", "verify"], requests_per_minute=LIMITED_RPM)
    registry.engine.dispose()
    time.sleep(1.0)  # every gateway's key index sees the new key (ATELIER_REGISTRY_POLL_MS)
    statuses = Counter()
    started = time.monotonic()
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {limited}"}) as http:
        for i in range(90):
            url = (g2.url, g3.url)[i % 2]
            statuses[http.get(url + "/v1/jobs/status", params={"job_id": "job_" + "0" * 24}).status_code] += 1
    elapsed = time.monotonic() - started
    admitted = sum(n for code, n in statuses.items() if code != 429)
    burst = 1 + LIMITED_RPM // 10
    assert statuses[429] > 0 and admitted >= burst, statuses
    assert admitted <= LIMITED_RPM * 1.1, statuses
    assert admitted <= burst + elapsed * LIMITED_RPM / 60 + 1, (statuses, elapsed)  # GCRA, fleet-wide


def test_a_licence_the_person_ends_on_one_gateway_refuses_the_next_request_on_another(fleet):
    """Issue 28 across the fleet: a brand's licence requested on one gateway, accepted with the
    person's signature on another, admits there; ended by the person on one gateway, the next
    request on the other is refused (`licence_revoked`) well within 2 s."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.licence_document import encode_public_key, sign

    first, second = fleet["processes"]["g2"], fleet["processes"]["g3"]
    admin = fleet["keys"]["ATELIER_ADMIN_KEY"]
    call(first.url + "/v1/admin/tenants", admin, {"tenant_id": "fleet-brand", "name": "Fleet brand"})
    brand = call(first.url + "/v1/admin/keys", admin, {"tenant_id": "fleet-brand", "scopes": ["generate", "licensing"],
                                                       "requests_per_minute": 6000})["token"]
    talent = call(second.url + "/v1/admin/keys", admin, {"tenant_id": "demo", "scopes": ["talent"],
                                                         "person_id": "demo-cleo", "requests_per_minute": 6000})["token"]
    licence = call(first.url + "/v1/licences", brand, {"twin_id": "demo-cleo", "purpose": "Fleet test product pages",
                                                       "uses": ["ecommerce"], "rate_per_image": "0.40", "currency": "EUR"})
    key = Ed25519PrivateKey.generate()
    call(second.url + "/v1/talent/signing-key", talent, {"public_key": encode_public_key(key.public_key())})
    accepted = call(second.url + "/v1/talent/licences/decide", talent, {
        "licence_id": licence["licence_id"], "decision": "accept",
        "signature": sign(key, "accept", "person", licence["sha256"])})
    assert accepted["status"] == "accepted"
    body = {"twin_id": "demo-cleo", "use": "ecommerce", **SMALL, "seed": 5}
    made = httpx.post(first.url + "/v1/generate", json=body, timeout=120, headers={"Authorization": f"Bearer {brand}"})
    assert made.status_code == 200, made.text
    call(second.url + "/v1/talent/licences/revoke", talent, {"licence_id": licence["licence_id"]})
    ended = time.monotonic()
    refused = httpx.post(first.url + "/v1/generate", json={**body, "seed": 6}, timeout=120,
                         headers={"Authorization": f"Bearer {brand}"})
    elapsed = time.monotonic() - ended
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "licence_revoked"), refused.text
    print(f"\nrefused on the other gateway {elapsed:.3f} s after the person ended the licence")
