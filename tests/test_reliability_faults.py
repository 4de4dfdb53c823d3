"""Fault tests of the reliability harness: the registry's PostgreSQL goes away and comes back,
and S3 becomes unreachable under adapter cold loads, audit shipping and job delivery.

PostgreSQL: the gateway (in this process, tests/trust_support.py) talks to ATELIER_TEST_PG_URL
through a loopback TCP proxy that the test cuts (every connection reset, new ones refused: what
the service sees of a stopped or failed-over server) and restores. Without ATELIER_TEST_PG_URL
(`.ci/run` starts a PostgreSQL) the test skips and says why.

S3: the session's SeaweedFS (tests/s3server.py) is stopped for real and started again.
(The renderer killed mid-request and the audit disk full are in test_reliability_served.py.)
"""

from __future__ import annotations

import hashlib
import os
import sys

import pytest
from sqlalchemy.engine import make_url

from tests.reliability_support import TcpProxy

PG_ENV = "ATELIER_TEST_PG_URL"
GEN = {"twin_id": "demo-ava", "prompt": "studio photo, linen dress", "width": 256, "height": 256, "steps": 2}


def test_postgres_stopped_and_restarted_gives_503_then_recovers(demo_home, tmp_path):
    url = os.environ.get(PG_ENV)
    if not url:
        print(f"\n{PG_ENV} is not set: the PostgreSQL fault test is skipped (.ci/run starts one)", file=sys.stderr)
        pytest.skip(f"{PG_ENV} is not set: the PostgreSQL fault test needs a throwaway PostgreSQL")
    from builds.demo import ENV_FILE, DemoAssets, setup_demo_registry
    from tests.conftest import reset_pg
    from tests.trust_support import audit_records, build_world

    reset_pg(url)
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    proxy.start()
    proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    def on_postgres(home) -> None:
        (home / ENV_FILE).unlink()
        setup_demo_registry(DemoAssets(home, home / "demo" / "pipeline", home / "adapters", home / ENV_FILE), db_url=proxied)

    world = build_world(demo_home, tmp_path, env={"ATELIER_DB_URL": proxied}, before_open=on_postgres)
    try:
        client = world.client("demo")
        assert client.post("/v1/generate", json=GEN).status_code == 200
        proxy.stop()  # PostgreSQL is gone
        answers = [client.post("/v1/generate", json=GEN), client.get("/v1/jobs/status", params={"job_id": "0" * 32}),
                   world.client("admin").get("/v1/admin/twins/list")]
        for answer in answers:  # the audit record lives in PostgreSQL too: a refusal it cannot record says so
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] in ("registry_unavailable", "audit_unavailable")
            assert answer.headers["retry-after"]
            assert "psycopg" not in answer.text and "5432" not in answer.text and str(proxy.port) not in answer.text
        assert not world.core.audit.available()  # /readyz says so while the record cannot be committed
        proxy.start()  # and back, on the same address
        from tests.polling import wait_for

        wait_for(world.core.audit.available, timeout=30, every=0.2)  # /readyz: heals within a second
        after = client.post("/v1/generate", json=GEN)
        assert after.status_code == 200, after.text
        assert world.client("admin").get("/v1/admin/twins/list").status_code == 200
        [ok] = audit_records(world, generation_id=after.json()["generation_id"])
        assert ok["outcome"] == "ok"
        [resumed] = audit_records(world, event="audit_resumed")  # the first record of the new chain
        assert resumed["refused_appends"] >= 1 and resumed["reason"]
    finally:
        world.close()
        proxy.stop()


def test_s3_unreachable_is_a_clear_error_and_nothing_is_lost(s3_server, tmp_path):
    """Adapter cold load, audit shipping and job delivery during one real S3 outage."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from service.audit.archive import ChainArchive
    from service.audit.chain import ChainLog
    from service.audit.checkpoint import CheckpointSigner
    from service.audit.segments import list_segments
    from service.audit.shipper import AuditShipper
    from service.errors import AdapterUnavailable
    from service.jobs.delivery import DeliveryFailed, S3Delivery, Staging
    from service.registry import open_registry
    from service.registry.audit import AuditRecords
    from service.rendering import GeneratedImage
    from service.twins.s3_store import S3AdapterStore
    from tests.test_audit_shipper import new_bucket

    store = S3AdapterStore(s3_server.bucket, "faults", endpoint_url=s3_server.endpoint_url, client=s3_server.client())
    store.write_bytes("ava.safetensors", b"adapter bytes")
    registry = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    records = AuditRecords(registry.db)
    bucket, audit_client = new_bucket(s3_server), s3_server.client()
    shippers: list[AuditShipper] = []

    def shipper_for(directory, log_id: str) -> AuditShipper:  # one per chain, as the gateway's
        shippers.append(AuditShipper(directory, bucket, f"audit/faults/{log_id}", 1, client=audit_client))
        return shippers[-1]

    archive = ChainArchive(records, tmp_path / "audit", segment_records=3, shipper_for=shipper_for)
    log = ChainLog(records, CheckpointSigner(Ed25519PrivateKey.generate()), checkpoint_seconds=0, heartbeat_s=3600,
                   archive=archive)
    for i in range(7):
        log.append({"event": "fault", "i": i})
    chain_dir = archive.chain_dir(log.log_id)
    delivery = S3Delivery.__new__(S3Delivery)  # the brand's bucket, with the server's test identity
    delivery.bucket, delivery.prefix, delivery.client = s3_server.bucket, "deliveries", s3_server.client()
    image = GeneratedImage(index=0, format="png", width=1, height=1, seed=1, data=b"png bytes",
                           sha256=hashlib.sha256(b"png bytes").hexdigest(), watermark_id="00" * 8)
    s3_server.stop()
    try:
        with pytest.raises(AdapterUnavailable) as cold:  # a cold twin: 503, the store named, retryable
            store.read_bytes("ava.safetensors")
        assert cold.value.status == 503 and "unreachable" in cold.value.message
        assert archive.seal_full(log.log_id, log.size) == 2  # the maintenance thread's pass: 1-3, 4-6
        [shipper] = shippers
        shipped = shipper.last_report  # the pass shipped at once after sealing
        assert shipped.error and not shipped.shipped  # nothing shipped, and it says why
        assert shipped.pending == ["segments/000000000001-000000000003.jsonl",
                                   "segments/000000000004-000000000006.jsonl"]
        with pytest.raises(DeliveryFailed) as failed:  # a try fails, naming the bucket ...
            delivery.store("job1", 0, 0, image, {"generation_id": "g"})
        assert failed.value.code == "delivery_failed" and "s3://" in failed.value.message
        # ... and the item is not failed: its image is staged (here in the registry's row, the
        # object store being down too) and retried until the deadline (tests/test_delivery_retries.py)
        [staged] = Staging(None).put("job1", 0, [image])
        log.append({"event": "fault", "i": 7})  # the chain goes on meanwhile: its records are in the registry
    finally:
        s3_server.start()
    assert store.read_bytes("ava.safetensors") == b"adapter bytes"
    archive.ship_pending()  # the retry ships everything sealed, in order: nothing was lost
    report = shipper.last_report
    assert report.error is None and report.pending == []
    assert report.shipped == ["segments/000000000001-000000000003.jsonl", "segments/000000000004-000000000006.jsonl"]

    def remote_names() -> list[str]:
        listing = audit_client.list_objects_v2(Bucket=bucket, Prefix=f"audit/faults/{log.log_id}/")
        return sorted(o["Key"].split(f"{log.log_id}/", 1)[1] for o in listing.get("Contents", []))

    assert remote_names() == sorted(f"segments/{s.path.name}" for s in list_segments(chain_dir))
    retried = Staging(None).image(staged)  # the retry delivers the staged bytes, not a new render
    assert retried.data == image.data
    assert delivery.store("job1", 0, 0, retried, {"generation_id": "g"})["key"] == "deliveries/job1/0-0.png"
    log.close()  # seals the short last segment, signs the final checkpoint and ships both
    assert shipper.last_report.error is None
    assert remote_names() == ["checkpoints/000000000008.json", "segments/000000000001-000000000003.jsonl",
                              "segments/000000000004-000000000006.jsonl", "segments/000000000007-000000000008.jsonl"]
    registry.engine.dispose()
