"""Catalogue jobs: submit, poll and get over HTTP; partial failure; idempotency; cancel;
tenant isolation; the queue's priority and leases; S3 delivery with presigned URLs; signed
webhooks with retries; the SSRF guard on callback URLs."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.registry import JobStore
from service.jobs.webhooks import verify
from tests.conftest import open_image

ITEM = {"twin_id": "demo-ava", "scene": "studio_white", "garment_description": "a red wool coat", "sku": "RC-1",
        "width": 256, "height": 256, "steps": 2, "seed": 11, "metadata": {"collection": "AW26"}}


def wait_for(client, job_id: str, headers=None, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/v1/jobs/status", params={"job_id": job_id}, headers=headers).json()
        if status["status"] in ("completed", "failed", "canceled"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {status}")


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# -- over HTTP ------------------------------------------------------------------------------


def test_submit_poll_get_with_a_failing_item(client, records):
    items = [ITEM, {**ITEM, "twin_id": "not-consented", "sku": "NC-1"}, {**ITEM, "sku": "RC-2", "count": 2, "scene": "street"}]
    submitted = client.post("/v1/jobs/submit", json={"items": items})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    assert submitted.json()["items_total"] == 3 and submitted.json()["task_id"] == job_id

    status = wait_for(client, job_id)
    assert (status["status"], status["items_done"], status["items_failed"]) == ("completed", 2, 1)
    assert "items" not in status  # counts only: items are paged through /v1/jobs/get

    result = client.get("/v1/jobs/get", params={"task_id": job_id}).json()  # BentoML clients send task_id
    assert [i["status"] for i in result["items"]] == ["done", "failed", "done"] and result["next_offset"] is None
    assert result["items"][1]["error"]["code"] == "consent_missing" and result["items"][1]["sku"] == "NC-1"
    first, _, third = result["items"]
    assert first["alt_text"] == "Ava (demo twin) wearing a red wool coat in a white studio"
    assert first["metadata"] == {"collection": "AW26"} and first["sku"] == "RC-1"
    assert "white background" in first["prompt"] and "red wool coat" in first["prompt"]
    assert len(third["images"]) == 2 and "data_base64" not in json.dumps(result)  # URLs, never the bytes
    url = first["images"][0]["url"]
    assert url == f"/v1/jobs/image?job_id={job_id}&index=0&n=0"
    served = client.get(url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert hashlib.sha256(served.content).hexdigest() == first["images"][0]["sha256"]
    assert open_image(served.content).size == (256, 256) and first["images"][0]["watermark_id"]
    assert client.get(third["images"][1]["url"]).content != client.get(third["images"][0]["url"]).content
    # each item is one audited generation, tied to its job
    audited = [r for r in records("event", "generation") if (r.get("job") or {}).get("job_id") == job_id]
    assert sorted((r["job"]["item"], r["outcome"]) for r in audited) == [(0, "ok"), (1, "refused"), (2, "ok")]
    assert records("event", "job.submit")[-1]["job_id"] == job_id


def test_idempotent_submit_replays_and_a_different_body_conflicts(client):
    headers = {"Idempotency-Key": "catalogue-2026-11-28-batch-7"}
    first = client.post("/v1/jobs/submit", json={"items": [ITEM]}, headers=headers)
    again = client.post("/v1/jobs/submit", json={"items": [ITEM]}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"] and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/v1/jobs/submit", json={"items": [{**ITEM, "sku": "OTHER"}]}, headers=headers)
    assert error(other) == (409, "idempotency_key_reused")
    too_long = client.post("/v1/jobs/submit", json={"items": [ITEM]}, headers={"Idempotency-Key": "k" * 256})
    assert error(too_long) == (422, "invalid_field")
    wait_for(client, first.json()["job_id"])


def test_idempotent_generate_replays_the_first_response(client, records):
    body = {"twin_id": "demo-ben", "prompt": "linen shirt, studio", "width": 256, "height": 256, "steps": 2}
    headers = {"Idempotency-Key": "gen-1f3a"}
    first = client.post("/v1/generate", json=body, headers=headers)
    again = client.post("/v1/generate", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert records("event", "idempotent_replay")[-1]["generation_id"] == first.json()["generation_id"]
    assert error(client.post("/v1/generate", json={**body, "seed": 1}, headers=headers)) == (409, "idempotency_key_reused")
    reused = records("event", "generation")[-1]  # refused like any generation: with tenant, key and twin
    assert (reused["outcome"], reused["reason"], reused["tenant"], reused["twin_id"]) == ("refused", "idempotency_key_reused", "demo", "demo-ben")
    assert error(client.post("/v1/generate/image", json=body, headers=headers)) == (422, "invalid_field")


def test_another_tenant_cannot_see_or_cancel_a_job(client, registry):
    job_id = client.post("/v1/jobs/submit", json={"items": [ITEM]}).json()["job_id"]
    if registry.get_tenant("job-rival") is None:
        registry.create_tenant("job-rival", "Rival")
    _, token = registry.create_api_key("job-rival", ["generate"])
    rival = {"Authorization": f"Bearer {token}"}
    for path in ("/v1/jobs/status", "/v1/jobs/get"):
        assert error(client.get(path, params={"job_id": job_id}, headers=rival)) == (404, "job_not_found")
    assert error(client.post("/v1/jobs/cancel", params={"job_id": job_id}, headers=rival)) == (404, "job_not_found")
    assert error(client.get("/v1/jobs/status", params={"job_id": job_id}, headers={"Authorization": ""})) == (401, "missing_api_key")
    assert error(client.get("/v1/jobs/status", params={"job_id": "../../etc"})) == (422, "invalid_field")
    assert wait_for(client, job_id)["status"] == "completed"


@pytest.mark.parametrize("body, field", [
    ({"items": []}, "items"),
    ({"items": [ITEM] * 501}, "items"),
    ({"items": [{**ITEM, "scene": "moon_base"}]}, "items.0.scene"),
    ({"items": [{**ITEM, "size": "square_2048"}]}, "items.0"),
    ({"items": [{"twin_id": "demo-ava", "width": 256, "height": 256}]}, "items.0"),
    ({"items": [{**ITEM, "count": 5}]}, "items.0.count"),
    ({"items": [{**ITEM, "metadata": {"k": "v" * 501}}]}, "items.0.metadata"),
    ({"items": [ITEM], "priority": 10}, "priority"),
    ({"items": [{**ITEM, "count": 4}] * 13}, "items"),  # 52 inline images: S3 delivery needed
])
def test_bad_submissions_are_4xx_naming_the_field(client, body, field):
    response = client.post("/v1/jobs/submit", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_a_huge_submission_is_413_before_parsing(client):
    response = client.post("/v1/jobs/submit", content=b'{"items": [' + b" " * (2 * 1024**2) + b"]}",
                           headers={"content-type": "application/json"})
    assert error(response) == (413, "payload_too_large")


def test_cancel_stops_the_rest_of_a_job(client):
    job_id = client.post("/v1/jobs/submit", json={"items": [{**ITEM, "sku": f"C-{i}"} for i in range(40)]}).json()["job_id"]
    cancelled = client.post("/v1/jobs/cancel", params={"job_id": job_id})
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    status = wait_for(client, job_id)
    states = [i["status"] for i in client.get("/v1/jobs/get", params={"job_id": job_id, "limit": 100}).json()["items"]]
    assert status["status"] == "canceled" and len(states) == 40 and "canceled" in states
    assert set(states) <= {"done", "failed", "canceled"}
    assert states.count("done") == status["items_done"] < 40


# -- the queue ------------------------------------------------------------------------------


@pytest.fixture()
def store(tmp_path):
    from service.registry import open_registry

    registry = open_registry(f"sqlite:///{tmp_path / 'jobs.db'}")
    registry.create_tenant("acme", "Acme")
    yield JobStore(registry.engine)
    registry.engine.dispose()


def submit(store: JobStore, priority: int, n: int = 1):
    return store.create_job("acme", "key1", [{"twin_id": "t"}] * n, priority=priority, output_target="inline",
                            url_expiry_s=60, webhook_per_item=False)


def test_results_are_paged_and_each_image_has_its_own_route(client, registry):
    items = [{**ITEM, "sku": f"P-{i}", "seed": 30 + i} for i in range(3)]
    job_id = client.post("/v1/jobs/submit", json={"items": items}).json()["job_id"]
    assert wait_for(client, job_id)["items_done"] == 3
    first = client.get("/v1/jobs/get", params={"job_id": job_id, "limit": 2}).json()
    assert [i["sku"] for i in first["items"]] == ["P-0", "P-1"] and (first["offset"], first["limit"]) == (0, 2)
    assert first["next_offset"] == 2 and first["items_done"] == 3
    last = client.get("/v1/jobs/get", params={"job_id": job_id, "offset": first["next_offset"], "limit": 2}).json()
    assert [i["sku"] for i in last["items"]] == ["P-2"] and last["next_offset"] is None
    assert client.get("/v1/jobs/get", params={"job_id": job_id}).json()["limit"] == 20  # the default page
    beyond = client.get("/v1/jobs/get", params={"job_id": job_id, "offset": 10}).json()
    assert beyond["items"] == [] and beyond["next_offset"] is None
    for params, field in [({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset")]:
        response = client.get("/v1/jobs/get", params={"job_id": job_id, **params})
        assert (response.status_code, response.json()["error"]["field"]) == (422, field), params

    assert error(client.get("/v1/jobs/image", params={"job_id": job_id, "index": 7, "n": 0})) == (404, "item_not_found")
    assert error(client.get("/v1/jobs/image", params={"job_id": job_id, "index": 0, "n": 1})) == (404, "item_not_found")
    assert error(client.get("/v1/jobs/image", params={"job_id": job_id})) == (422, "invalid_field")
    if registry.get_tenant("job-rival") is None:
        registry.create_tenant("job-rival", "Rival")
    rival = {"Authorization": f"Bearer {registry.create_api_key('job-rival', ['generate'])[1]}"}
    assert error(client.get(last["items"][0]["images"][0]["url"], headers=rival)) == (404, "job_not_found")
    assert error(client.get(last["items"][0]["images"][0]["url"], headers={"Authorization": ""})) == (401, "missing_api_key")


# -- S3 delivery and webhooks, on a private copy of the demo ---------------------------------


class Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first `fail` posts, then 204; keeps what it got."""

    fail = 2
    got: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).got.append((dict(self.headers), body))
        self.send_response(500 if len(type(self).got) <= type(self).fail else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def receiver():
    Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/atelier"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def private_jobs(copied_home, engine, s3_server, tmp_path, monkeypatch):
    """CatalogJobs over a copy of the demo registry, delivering to the S3 test server."""
    from service.audit.recorder import Recorder
    from service.config import Settings
    from service.gateway.generation import GuardedGeneration
    from service.gateway.render_client import LocalRenderClient
    from service.jobs.catalog import CatalogJobs
    from service.registry import open_registry
    from service.renderer.runtime import RendererRuntime
    from service.tenancy import Tenancy
    from service.tenancy.revocation import RevocationWatcher

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    settings = Settings.from_env({
        "ATELIER_HOME": str(copied_home), "ATELIER_AUDIT_DIR": str(tmp_path / "audit"),
        "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url, "ATELIER_S3_REGION": s3_server.region,
        "ATELIER_DEV_CALLBACKS": "1", "ATELIER_WEBHOOK_SCHEDULE_S": "0,0.2,0.2,0.2,0.2",
    })
    registry = open_registry(settings.db_url)
    audit = Recorder.from_settings(settings, registry.db)
    tenancy = Tenancy.build(registry, on_revoked=lambda twin: None)
    watcher = RevocationWatcher(registry, on_revoked=lambda twin: None)
    renderer = LocalRenderClient(RendererRuntime(settings, registry, engine, watcher))  # the session's pipeline
    from service.admission_seal import InternalCredential

    generation = GuardedGeneration(renderer, tenancy, audit, credential=InternalCredential.from_settings(settings))
    jobs = CatalogJobs.build(settings, registry, generation)  # items sealed as the gateway seals them
    yield jobs, registry
    audit.close()
    registry.engine.dispose()


def run_job(jobs, job_id: str):
    """Dispatch the queue here, one leased group at a time, until the job is finished."""
    for _ in range(100):
        job = jobs.store.get_job("demo", job_id)
        if job.status in ("completed", "failed", "canceled"):
            return job
        leases = jobs.renders.lease()
        assert leases, f"job {job_id} is {job.status} with nothing to lease"
        jobs.renders.dispatch(leases)
    raise AssertionError(f"job {job_id} did not finish")


def test_s3_delivery_with_presigned_urls_and_signed_webhooks_with_retries(private_jobs, s3_server, receiver, demo_keys):
    from service.jobs.webhooks import new_secret
    from service.schemas import JobSubmitBody
    from service.tenancy.auth import Authenticator

    jobs, registry = private_jobs
    secret = new_secret()
    jobs.store.set_tenant_delivery("demo", output_target=f"s3://{s3_server.bucket}/brand-out", url_expiry_s=600,
                                   webhook_url=receiver, webhook_secret=secret)
    principal = Authenticator(registry).authenticate(f"Bearer {demo_keys['ATELIER_DEMO_KEY']}", "generate")
    body = JobSubmitBody.model_validate({"items": [ITEM, {**ITEM, "twin_id": "nobody"}, {**ITEM, "count": 2, "sku": "RC-3"}]})
    job_id = jobs.submit(principal, body)
    final = run_job(jobs, job_id)
    assert (final.status, final.items_done, final.items_failed) == ("completed", 2, 1)

    result = jobs.results("demo", job_id)
    images = [image for item in result["items"] for image in item.get("images", [])]
    assert result["next_offset"] is None and "data_base64" not in json.dumps(result)
    assert [image["key"] for image in images] == [f"brand-out/{job_id}/0-0.png", f"brand-out/{job_id}/2-0.png",
                                                  f"brand-out/{job_id}/2-1.png"]
    for image in images:
        with urllib.request.urlopen(image["url"], timeout=10) as response:  # presigned: no credentials needed
            data = response.read()
        assert open_image(data).size == (256, 256) and hashlib.sha256(data).hexdigest() == image["sha256"]
        with urllib.request.urlopen(image["sidecar_url"], timeout=10) as response:
            sidecar = json.loads(response.read())
        assert sidecar["sha256"] == image["sha256"] and sidecar["watermark_id"] == image["watermark_id"]
        assert sidecar["job_id"] == job_id and sidecar["twin_id"] == "demo-ava" and sidecar["generation_id"]
        assert sidecar["seed"] == image["seed"] and "red wool coat" in sidecar["prompt"]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(Receiver.got) < 3:
        jobs.dispatcher.send_due()
        time.sleep(0.05)
    assert len(Receiver.got) == 3  # 500, 500, then accepted
    ids = {headers["webhook-id"] for headers, _ in Receiver.got}
    assert len(ids) == 1  # the same message, retried
    for headers, raw in Receiver.got:
        verify(secret, headers, raw)  # raises when the signature does not hold
    event = json.loads(Receiver.got[-1][1])
    assert event["type"] == "job.completed" and event["data"] == {
        "job_id": job_id, "status": "completed", "items_total": 3, "items_done": 2, "items_failed": 1,
        "finished_at": event["data"]["finished_at"]}
    [delivery] = jobs.store.deliveries("demo", job_id)
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert [entry["status_code"] for entry in delivery.log] == [500, 500, 204]

    redelivered = jobs.store.redeliver(delivery.id)
    assert redelivered.status == "pending" and redelivered.attempts == 0
    assert jobs.dispatcher.send_due() and len(Receiver.got) == 4


def test_items_stop_when_the_submitting_key_is_revoked(private_jobs, demo_keys):
    from service.schemas import JobSubmitBody
    from service.tenancy.auth import Authenticator

    jobs, registry = private_jobs
    key_id, token = registry.create_api_key("demo", ["generate"], name="short-lived")
    principal = Authenticator(registry).authenticate(f"Bearer {token}", "generate")
    job_id = jobs.submit(principal, JobSubmitBody.model_validate({"items": [ITEM, ITEM]}))
    registry.revoke_key(key_id)
    final = run_job(jobs, job_id)
    assert (final.status, final.items_done, final.items_failed) == ("failed", 0, 2)
    items = jobs.results("demo", job_id)["items"]
    assert [(i["status"], i["error"]["code"]) for i in items] == [("failed", "invalid_api_key")] * 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "https://10.0.0.7/hook", "https://169.254.169.254/latest",
                                 "ftp://example.com/x", "https://user:pw@example.com/x"])
def test_callback_urls_to_private_targets_are_refused(client, admin_headers, url):
    response = client.post("/v1/admin/tenants/delivery", headers=admin_headers, json={"tenant_id": "demo", "webhook_url": url})
    assert error(response) == (422, "callback_url_refused")
    assert response.json()["error"]["field"] == "webhook_url"


def test_delivery_settings_show_a_new_secret_once(client, admin_headers, records):
    first = client.post("/v1/admin/tenants/delivery", headers=admin_headers,
                        json={"tenant_id": "demo", "url_expiry_s": 900, "rotate_webhook_secret": True}).json()
    assert first["webhook_secret"].startswith("whsec_") and first["delivery"]["url_expiry_s"] == 900
    again = client.post("/v1/admin/tenants/delivery", headers=admin_headers, json={"tenant_id": "demo"}).json()
    assert "webhook_secret" not in again and again["delivery"]["has_webhook_secret"] is True
    assert first["webhook_secret"] not in json.dumps(records("event", "admin.tenant_delivery"))
    bad = client.post("/v1/admin/tenants/delivery", headers=admin_headers, json={"tenant_id": "demo", "output_target": "s3://"})
    assert error(bad) == (422, "invalid_field")
    client.post("/v1/admin/tenants/delivery", headers=admin_headers, json={"tenant_id": "demo", "url_expiry_s": 3600})


def test_tenant_presets_extend_the_builtin_scenes(client, admin_headers):
    response = client.post("/v1/admin/presets", headers=admin_headers, json={
        "tenant_id": "demo", "name": "atelier_loft", "prompt": "industrial loft with brick walls, north light"})
    assert response.status_code == 200 and not response.json()["presets"]["atelier_loft"]["builtin"]
    assert response.json()["presets"]["studio_white"]["builtin"]
    job_id = client.post("/v1/jobs/submit", json={"items": [{**ITEM, "scene": "atelier_loft"}]}).json()["job_id"]
    wait_for(client, job_id)
    result = client.get("/v1/jobs/get", params={"job_id": job_id}).json()
    assert "brick walls" in result["items"][0]["prompt"]


def test_the_delivery_log_is_listed_for_operators_only(client, admin_headers):
    listed = client.get("/v1/admin/webhooks/deliveries", headers=admin_headers, params={"tenant_id": "demo"})
    assert listed.status_code == 200 and all(d["tenant_id"] == "demo" for d in listed.json()["deliveries"])
    assert error(client.get("/v1/admin/webhooks/deliveries")) == (403, "insufficient_scope")
    missing = client.post("/v1/admin/webhooks/redeliver", headers=admin_headers, json={"delivery_id": "msg_" + "0" * 32})
    assert error(missing) == (404, "delivery_not_found")


def test_finished_jobs_are_purged_after_the_retention_period(store):
    from datetime import datetime, timedelta, timezone

    from service.registry import JobNotFound

    done, running = submit(store, 5), submit(store, 5)
    [lease] = store.lease_items("w", 60)
    assert lease.job_id == done.id  # equal priority: the older job first
    assert store.finish_item(lease, result={"images": []}).job_closed.status == "completed"
    store.set_tenant_delivery("acme", webhook_url="https://hooks.example.com/x", webhook_secret="whsec_dGVzdA==")
    store.enqueue_event("acme", done.id, "job.item.completed", {"job_id": done.id})
    later = datetime.now(timezone.utc) + timedelta(days=31)
    assert store.purge_finished(timedelta(days=30), now=later) == 1
    with pytest.raises(JobNotFound):
        store.get_job("acme", done.id)
    assert store.deliveries("acme", done.id) == []
    assert store.get_job("acme", running.id).status == "queued"  # unfinished jobs are never purged


def test_lease_renewal_keeps_an_item_from_other_dispatchers(store):
    """Renewed before it lapses, an item's lease holds past its first term; once renewals stop,
    it lapses and another dispatcher takes the item under the next fencing token."""
    from datetime import datetime, timedelta, timezone

    t0 = datetime.now(timezone.utc)
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    submit(store, 5)
    [lease] = store.lease_items("a", 30, now=t0)
    for step in (20, 40, 60):
        assert store.renew_items([lease], 30, now=at(step)) == [True]
        assert store.lease_items("b", 30, now=at(step + 25)) == []  # past the first term, still held
    assert store.holds(lease, now=at(89)) and not store.holds(lease, now=at(91))
    [taken] = store.lease_items("b", 30, now=at(91))
    assert (taken.index, taken.token) == (lease.index, lease.token + 1)
    assert store.renew_items([lease], 30, now=at(92)) == [False]  # the old holder learns it lost the item


def test_concurrent_submits_with_one_key_create_one_job(client, registry):
    from sqlalchemy import func, select

    from service.registry.models import JobRow

    key_id, token = registry.create_api_key("demo", ["generate"], name="racer", max_concurrent_jobs=10,
                                            requests_per_minute=600)  # wait_for polls 10 times a second
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "race-1"}
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(client.post("/v1/jobs/submit", json={"items": [ITEM]},
                                                                             headers=headers)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.json()["job_id"] for a in answers}) == 1
    with registry.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(JobRow).where(JobRow.key_id == key_id)).scalar() == 1
    wait_for(client, answers[0].json()["job_id"], headers={"Authorization": f"Bearer {token}"})


def test_revocation_stops_replays_and_withholds_finished_job_images(client, admin_headers, demo_home, records):
    from tests.test_tenancy import new_twin

    new_twin(client, admin_headers, demo_home, "jobs-rae", seed=501)
    body = {"twin_id": "jobs-rae", "prompt": "linen shirt, studio", "width": 256, "height": 256, "steps": 2}
    first = client.post("/v1/generate", json=body, headers={"Idempotency-Key": "rae-1"})
    assert first.status_code == 200
    job_id = client.post("/v1/jobs/submit", json={"items": [{**ITEM, "twin_id": "jobs-rae"}]}).json()["job_id"]
    assert wait_for(client, job_id)["items_done"] == 1
    assert client.post("/v1/admin/twins/revoke", headers=admin_headers, json={"twin_id": "jobs-rae"}).status_code == 200

    replay = client.post("/v1/generate", json=body, headers={"Idempotency-Key": "rae-1"})
    assert error(replay) == (403, "revoked")
    refused = [r for r in records("event", "generation") if r["twin_id"] == "jobs-rae"][-1]
    assert (refused["outcome"], refused["reason"], refused["tenant"]) == ("refused", "revoked", "demo")
    item = client.get("/v1/jobs/get", params={"job_id": job_id}).json()["items"][0]
    assert item["images"] == [] and item["withheld"] == "revoked"
    image = client.get("/v1/jobs/image", params={"job_id": job_id, "index": 0, "n": 0})
    assert error(image) == (403, "revoked") and not image.headers["content-type"].startswith("image/")
