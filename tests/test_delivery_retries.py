"""Deliveries survive outages: a catalogue item whose S3 delivery fails waits (`delivering`), is
retried by any gateway until its deadline, and is delivered exactly once when S3 is back.

Real components: the session's SeaweedFS (tests/s3server.py), stopped for real and started
again; the demo registry copied per test (SQLite); the session's tiny pipeline rendering in
process (`private_jobs` of tests/test_jobs.py); webhooks posted to a local receiver. Time for
the retry schedule and the deadline is passed in (`now`), never waited for.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.registry import NotRedeliverable
from tests.test_jobs import ITEM, private_jobs  # noqa: F401 - the fixture

LATER = timedelta(hours=1)  # past any jittered retry delay, well inside the 24 h deadline


class Events(BaseHTTPRequestHandler):
    """Accepts every webhook (204) and keeps each event's type and data, in arrival order."""

    got: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).got.append((body["type"], body["data"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def events():
    Events.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Events)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/atelier"
    server.shutdown()
    server.server_close()


def submit(jobs, registry, demo_keys, items: list[dict]) -> str:
    from service.schemas import JobSubmitBody
    from service.tenancy.auth import Authenticator

    principal = Authenticator(registry).authenticate(f"Bearer {demo_keys['ATELIER_DEMO_KEY']}", "generate")
    return jobs.submit(principal, JobSubmitBody.model_validate({"items": items, "webhook_per_item": True}))


def dispatch_all(jobs) -> None:
    """Lease and render until nothing is left to lease (items waiting to deliver are not)."""
    for _ in range(20):
        leases = jobs.renders.lease()
        if not leases:
            return
        jobs.renders.dispatch(leases)
    raise AssertionError("the queue did not drain")


def send_webhooks(jobs) -> list:
    while jobs.dispatcher.send_due():
        pass
    return [(kind, data.get("index"), data.get("status")) for kind, data in Events.got]


def item(jobs, job_id: str, index: int) -> dict:
    return jobs.results("demo", job_id)["items"][index]


def objects(s3_server, prefix: str) -> list[str]:
    listing = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


class Clock:
    """The registry's injectable clock, moved on by the test (the system clock plus an offset)."""

    def __init__(self, real):
        self.real, self.offset = real, timedelta(0)

    def __call__(self):
        return self.real() + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


@pytest.fixture()
def s3_jobs(private_jobs, s3_server, events, monkeypatch):  # noqa: F811
    jobs, registry = private_jobs
    monkeypatch.setattr(registry.db, "_clock", Clock(registry.db._clock))  # Database(now=...) after the fact
    jobs.store.set_tenant_delivery("demo", output_target=f"s3://{s3_server.bucket}/retries", url_expiry_s=600,
                                   webhook_url=events, webhook_secret="whsec_" + "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0")
    yield jobs, registry
    s3_server.start()  # a no-op when it runs: the session's server is up for the next test


def test_items_wait_through_an_s3_outage_and_are_delivered_once_with_webhooks_in_order(s3_jobs, s3_server, demo_keys):
    jobs, registry = s3_jobs
    # two items of different shapes: two render calls, one before the outage and one during it
    job_id = submit(jobs, registry, demo_keys, [ITEM, {**ITEM, "sku": "RC-2", "width": 320}])
    jobs.renders.dispatch(jobs.renders.lease())
    assert item(jobs, job_id, 0)["status"] == "done"
    s3_server.stop()
    try:
        dispatch_all(jobs)
        waiting = item(jobs, job_id, 1)
        assert waiting["status"] == "delivering" and waiting["error"] is None and "images" not in waiting
        assert waiting["delivery"]["attempts"] == 1 and waiting["delivery"]["next_attempt_at"]
        assert waiting["delivery"]["deadline"] and "s3://" in waiting["delivery"]["last_error"]
        status = jobs.status("demo", job_id)
        assert (status["status"], status["items_done"], status["items_failed"]) == ("running", 1, 0)
        registry.db._clock.advance(LATER)
        assert jobs.retrier.run_once() == 0  # still down: it waits again
        assert item(jobs, job_id, 1)["delivery"]["attempts"] == 2
        assert item(jobs, job_id, 1)["status"] == "delivering"
    finally:
        s3_server.start()
    assert send_webhooks(jobs) == [("job.item.completed", 0, "done")]  # nothing of item 1 yet, no job.completed
    registry.db._clock.advance(LATER)
    assert jobs.retrier.run_once() == 1
    registry.db._clock.advance(LATER)
    assert jobs.retrier.run_once() == 0  # delivered once, never again
    done = item(jobs, job_id, 1)
    assert done["status"] == "done" and done["delivery"]["attempts"] == 3 and done["delivery"]["next_attempt_at"] is None
    assert [image["key"] for image in done["images"]] == [f"retries/{job_id}/1-0.png"]
    assert objects(s3_server, f"retries/{job_id}/1-") == [f"retries/{job_id}/1-0.json", f"retries/{job_id}/1-0.png"]
    final = jobs.status("demo", job_id)
    assert (final["status"], final["items_done"], final["items_failed"]) == ("completed", 2, 0)
    assert send_webhooks(jobs) == [("job.item.completed", 0, "done"), ("job.item.completed", 1, "done"),
                                   ("job.completed", None, "completed")]  # job.completed last, each event once
    staged = jobs.store.retries.db  # the staged copy went with the delivery
    from sqlalchemy import select

    from service.registry.models import JobItemRow

    with staged.session() as s:
        assert s.scalar(select(JobItemRow.staged).where(JobItemRow.job_id == job_id, JobItemRow.idx == 1)) is None


def test_past_the_deadline_the_item_is_delivery_failed_and_an_admin_can_redeliver_it(s3_jobs, s3_server, demo_keys):
    jobs, registry = s3_jobs
    job_id = submit(jobs, registry, demo_keys, [ITEM])
    s3_server.stop()
    try:
        dispatch_all(jobs)
        deadline = item(jobs, job_id, 0)["delivery"]["deadline"]
        from datetime import datetime

        registry.db._clock.advance(datetime.fromisoformat(deadline) + timedelta(seconds=1) - registry.db.now())
        assert jobs.retrier.run_once() == 1  # the try at the deadline fails: given up
    finally:
        s3_server.start()
    failed = item(jobs, job_id, 0)
    assert failed["status"] == "failed" and failed["error"]["code"] == "delivery_failed"
    assert "deadline" in failed["error"]["message"] and failed["delivery"]["attempts"] == 2
    assert jobs.status("demo", job_id)["status"] == "failed"
    assert send_webhooks(jobs) == [("job.item.completed", 0, "failed"), ("job.completed", None, "failed")]

    again = jobs.redeliver(job_id, 0)  # the operator, once the brand's bucket is back
    assert again["status"] == "delivering" and again["delivery"]["next_attempt_at"]
    assert jobs.status("demo", job_id)["status"] == "running"
    assert jobs.retrier.run_once() == 1
    done = item(jobs, job_id, 0)
    assert done["status"] == "done" and objects(s3_server, f"retries/{job_id}/0-0.png")
    final = jobs.status("demo", job_id)
    assert (final["status"], final["items_done"], final["items_failed"]) == ("completed", 1, 0)
    assert send_webhooks(jobs)[2:] == [("job.item.completed", 0, "done"), ("job.completed", None, "completed")]
    with pytest.raises(NotRedeliverable):  # delivered: nothing left to redeliver
        jobs.redeliver(job_id, 0)


def test_a_second_gateway_finishes_a_delivery_the_first_one_started(s3_jobs, s3_server, demo_keys, tmp_path,
                                                                    monkeypatch):
    from service.config import Settings
    from service.jobs.catalog import CatalogJobs
    from service.registry import open_registry

    jobs, registry = s3_jobs
    job_id = submit(jobs, registry, demo_keys, [ITEM])
    s3_server.stop()
    try:
        dispatch_all(jobs)
    finally:
        s3_server.start()
    assert item(jobs, job_id, 0)["status"] == "delivering"
    # pod A claims the retry and is lost before it records anything
    registry.db._clock.advance(LATER)
    [lost] = jobs.store.retries.claim_due(jobs.retrier.hold_s)

    # pod B: its own ATELIER_HOME, the same registry database
    other = Settings.from_env({"ATELIER_HOME": str(tmp_path / "pod-b"), "ATELIER_DB_URL": registry.engine.url.render_as_string(hide_password=False),
                               "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url, "ATELIER_S3_REGION": s3_server.region})
    registry_b = open_registry(other.db_url)
    monkeypatch.setattr(registry_b.db, "_clock", registry.db._clock)  # one clock for the fleet
    try:
        pod_b = CatalogJobs.build(other, registry_b, jobs.renders.generation)
        assert pod_b.retrier.run_once() == 0  # A's claim holds
        registry.db._clock.advance(timedelta(seconds=jobs.retrier.hold_s + 1))
        assert pod_b.retrier.run_once() == 1
        assert jobs.retrier.attempt(lost) == 0  # A's late try records nothing
    finally:
        registry_b.engine.dispose()
    done = item(jobs, job_id, 0)
    assert done["status"] == "done" and done["delivery"]["attempts"] == 3
    assert jobs.status("demo", job_id)["status"] == "completed"
    assert send_webhooks(jobs) == [("job.item.completed", 0, "done"), ("job.completed", None, "completed")]


def test_staged_images_wait_in_the_shared_object_store_when_the_assets_are_in_s3(s3_jobs, s3_server, demo_keys):
    """The brand's S3 is unreachable (a closed port) while Atelier's own S3 answers: the image
    waits under `staging/` there, not in the database, and goes when delivered."""
    import socket

    from service.assets.store import S3Blobs
    from service.jobs.delivery import Staging, deliverer_for

    jobs, registry = s3_jobs
    blobs = S3Blobs(f"s3://{s3_server.bucket}/atelier-assets", s3_server.endpoint_url, s3_server.region)
    jobs.retrier.staging = Staging(blobs)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    brand_down = lambda target: deliverer_for(target, closed, s3_server.region)  # noqa: E731
    reachable = jobs.renders.deliverer_for
    jobs.renders.deliverer_for = jobs.retrier.deliverer_for = brand_down
    job_id = submit(jobs, registry, demo_keys, [ITEM])
    dispatch_all(jobs)
    assert item(jobs, job_id, 0)["status"] == "delivering"
    assert objects(s3_server, f"atelier-assets/staging/{job_id}/") == [f"atelier-assets/staging/{job_id}/0-0.png"]
    from sqlalchemy import select

    from service.registry.models import JobItemRow

    with registry.db.session() as s:
        staged = s.scalar(select(JobItemRow.staged).where(JobItemRow.job_id == job_id))
    assert "data_base64" not in json.dumps(staged)  # no image bytes in the registry
    jobs.retrier.deliverer_for = reachable  # the brand's S3 is back
    registry.db._clock.advance(LATER)
    assert jobs.retrier.run_once() == 1
    assert item(jobs, job_id, 0)["status"] == "done"
    assert objects(s3_server, f"atelier-assets/staging/{job_id}/") == []


def test_a_tampered_staged_image_is_never_delivered(s3_jobs, s3_server, demo_keys):
    """Whoever can write the staging prefix cannot get other bytes delivered under Atelier's
    name: a staged copy that is not the rendered image (sha256) fails the item, nothing is written."""
    from service.assets.store import S3Blobs
    from service.jobs.delivery import Staging

    jobs, registry = s3_jobs
    blobs = S3Blobs(f"s3://{s3_server.bucket}/atelier-assets", s3_server.endpoint_url, s3_server.region)
    jobs.retrier.staging = Staging(blobs)
    job_id = submit(jobs, registry, demo_keys, [ITEM])
    s3_server.stop()
    try:  # the whole S3 is down: the copy cannot go to the object store either, so the row holds it
        dispatch_all(jobs)
    finally:
        s3_server.start()
    from sqlalchemy import update

    from service.registry.models import JobItemRow

    with registry.db.session() as s, s.begin():
        staged = s.get(JobItemRow, (job_id, 0)).staged
        assert "data_base64" in staged["images"][0]  # the fallback: the bytes wait in the registry
        s3_key = f"staging/{job_id}/0-0.png"
        blobs.put(s3_key, b"not the rendered image")  # and a swapped copy, pointed at
        staged["images"][0] = {**{k: v for k, v in staged["images"][0].items() if k != "data_base64"}, "blob": s3_key}
        s.execute(update(JobItemRow).where(JobItemRow.job_id == job_id).values(staged=staged))
    registry.db._clock.advance(LATER)
    assert jobs.retrier.run_once() == 1
    failed = item(jobs, job_id, 0)
    assert failed["status"] == "failed" and failed["error"]["code"] == "delivery_failed"
    assert "damaged" in failed["error"]["message"]
    assert objects(s3_server, f"retries/{job_id}/") == []


def test_with_no_deadline_a_failed_delivery_fails_the_item_at_once(private_jobs, s3_server, demo_keys, tmp_path):  # noqa: F811
    """ATELIER_DELIVERY_DEADLINE_S=0: the behaviour before retries (no retrier, nothing staged)."""
    from service.config import Settings
    from service.jobs.catalog import CatalogJobs

    jobs, registry = private_jobs
    settings = Settings.from_env({"ATELIER_HOME": str(tmp_path / "pod"), "ATELIER_DELIVERY_DEADLINE_S": "0",
                                  "ATELIER_DB_URL": registry.engine.url.render_as_string(hide_password=False),
                                  "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url, "ATELIER_S3_REGION": s3_server.region})
    strict = CatalogJobs.build(settings, registry, jobs.renders.generation)
    assert strict.renders.retrier is None
    strict.store.set_tenant_delivery("demo", output_target=f"s3://{s3_server.bucket}/strict")
    job_id = submit(strict, registry, demo_keys, [ITEM])
    s3_server.stop()
    try:
        dispatch_all(strict)
    finally:
        s3_server.start()
    failed = item(strict, job_id, 0)
    assert failed["status"] == "failed" and failed["error"]["code"] == "delivery_failed" and "delivery" not in failed
    with pytest.raises(NotRedeliverable):  # nothing was kept to redeliver
        strict.redeliver(job_id, 0)


def test_migration_0009_downgrade_fails_items_still_delivering(tmp_path):
    from sqlalchemy import create_engine, text

    from service.registry import downgrade, upgrade
    from service.registry.migrate import current_revision

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(url, "0009")
    engine = create_engine(url)  # a plain SQLite engine: foreign keys off, so the job needs no tenant row
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (id, tenant_id, key_id, status, priority, items_total, items_done, items_failed, "
            "output_target, url_expiry_s, webhook_per_item, cancel_requested, created_at) VALUES "
            "('j', 't', 'k', 'running', 0, 1, 0, 0, 's3://b', 60, 0, 0, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO job_items (job_id, idx, spec, status, deliver_attempts, staged) "
                          "VALUES ('j', 0, '{}', 'delivering', 2, '{}')"))
    downgrade(url, "0008")
    assert current_revision(url) == "0008"
    with engine.begin() as conn:
        status, error = conn.execute(text("SELECT status, error FROM job_items WHERE job_id = 'j'")).one()
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(job_items)"))}
    assert status == "failed" and json.loads(error)["code"] == "delivery_failed"
    assert not columns & {"deliver_after", "deliver_by", "deliver_attempts", "deliver_error", "staged"}
    upgrade(url, "0009")
    assert current_revision(url) == "0009"
    engine.dispose()


def test_a_due_retry_is_claimed_by_one_gateway_and_a_stale_claim_records_nothing(db_url):
    """On SQLite, and on PostgreSQL when ATELIER_TEST_PG_URL is set: two gateways' repositories
    over one database, with the clock passed in."""
    from datetime import datetime, timezone

    from service.registry import JobStore, open_registry
    from service.registry.job_records import PENDING_DELIVERY

    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    registry = open_registry(db_url)
    try:
        registry.create_tenant("acme", "Acme")
        key_id = registry.create_api_key("acme", ["generate"])[0]
        a, b = JobStore(registry.engine), JobStore(make_engine_of(registry))
        job = a.create_job("acme", key_id, [{"twin_id": "ava", "sku": "S-0"}], priority=5, output_target="s3://b/p",
                           url_expiry_s=60, webhook_per_item=False)
        [lease] = a.lease_items("pod-a", 30, now=t0)
        pending = {"staged": {"result": {"images": []}, "sidecar": {}, "images": []}, "retry_at": t0 + timedelta(seconds=10),
                   "deadline": t0 + timedelta(days=1), "error": "s3 down"}
        [finish] = a.finish_items([(lease, {PENDING_DELIVERY: pending}, None)], now=t0)
        assert finish.recorded and finish.job_closed is None
        assert a.get_item("acme", job.id, 0).status == "delivering"
        assert a.retries.claim_due(300, now=t0 + timedelta(seconds=5)) == []  # not due yet
        due = t0 + timedelta(seconds=11)
        [claim] = a.retries.claim_due(300, now=due)
        assert b.retries.claim_due(300, now=due) == []  # held by A
        [taken] = b.retries.claim_due(300, now=due + timedelta(seconds=301))  # A's hold lapsed
        assert taken.attempt == claim.attempt + 1
        assert not a.retries.record_try(claim, result={"images": []}, now=due).recorded  # A's claim is stale
        done = b.retries.record_try(taken, result={"images": []}, now=due + timedelta(seconds=302))
        assert done.recorded and done.job_closed is not None and done.job_closed.status == "completed"
        item = a.get_item("acme", job.id, 0)
        assert item.status == "done" and item.delivery["attempts"] == 3
    finally:
        registry.engine.dispose()
        if "b" in locals():
            b.engine.dispose()


def make_engine_of(registry):
    """A second engine on the registry's database (another gateway's connection pool)."""
    from service.registry import make_engine

    return make_engine(registry.engine.url.render_as_string(hide_password=False))
