"""The audit shipper against a real SeaweedFS S3 server with Object Lock buckets.

Each test uses buckets of its own (Object Lock buckets with locked objects cannot be emptied,
so they are left in the session's temp data dir). Tests that stop the shared server start it
again in a `finally`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from service.audit.shipper import SHIPPED_LOG, AuditShipper, AuditShipError, download_log, ship_plan

RETENTION_DAYS = 1
POLL_TIMEOUT_S = 60.0  # generous: a condition is awaited, never a duration asserted


# -- fake audit directories -----------------------------------------------------------------
def _record(seq: int) -> dict:
    return {"seq": seq, "event": "generation", "hash": hashlib.sha256(f"record {seq}".encode()).hexdigest()}


def write_segment(directory: Path, first: int, last: int, open_: bool = False) -> Path:
    segments = directory / "segments"
    segments.mkdir(parents=True, exist_ok=True)
    name = f"open-{first:012d}.jsonl" if open_ else f"{first:012d}-{last:012d}.jsonl"
    path = segments / name
    path.write_text("".join(json.dumps(_record(seq)) + "\n" for seq in range(first, last + 1)))
    return path


def write_checkpoint(directory: Path, tree_size: int) -> Path:
    checkpoints = directory / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    path = checkpoints / f"{tree_size:012d}.json"
    path.write_text(json.dumps({"tree_size": tree_size, "root": hashlib.sha256(str(tree_size).encode()).hexdigest()}))
    return path


def seg(first: int, last: int) -> str:
    return f"segments/{first:012d}-{last:012d}.jsonl"


def cp(size: int) -> str:
    return f"checkpoints/{size:012d}.json"


def snapshot(directory: Path) -> dict[str, str]:
    """sha256 of every local file but shipped.log: the shipper must never change them."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != SHIPPED_LOG}


@pytest.fixture()
def audit_dir(tmp_path) -> Path:
    """As the log numbers records: sealed 1-3 and 4-6, open from 7; checkpoints 3 and 6 (covered)
    and 7 (record 7 is still in the open segment)."""
    directory = tmp_path / "audit"
    write_segment(directory, 1, 3)
    write_segment(directory, 4, 6)
    write_segment(directory, 7, 8, open_=True)
    for size in (3, 6, 7):
        write_checkpoint(directory, size)
    return directory


def new_bucket(s3_server, lock: bool = True, versioning: bool = False) -> str:
    name = f"audit-{uuid.uuid4().hex[:16]}"
    client = s3_server.client()
    if lock:
        client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    else:
        client.create_bucket(Bucket=name)
        if versioning:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture()
def locked_bucket(s3_server) -> str:
    return new_bucket(s3_server)


def shipper_for(s3_server, directory: Path, bucket: str, **kwargs) -> AuditShipper:
    return AuditShipper(directory, bucket, "audit/prod", RETENTION_DAYS, client=s3_server.client(), **kwargs)


def remote_bytes(s3_server, bucket: str, key: str) -> bytes:
    return s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def remote_keys(s3_server, bucket: str) -> list[str]:
    listing = s3_server.client().list_objects_v2(Bucket=bucket)
    return sorted(entry["Key"] for entry in listing.get("Contents") or [])


def wait_for(condition, what: str):
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture()
def s3_env(s3_server, monkeypatch):
    """The fixture's credentials in the standard AWS variables, so shippers build their own client."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_server


# -- planning (no server) ---------------------------------------------------------------------
def test_plan_orders_segments_by_seq_and_holds_checkpoints_of_open_records(tmp_path):
    directory = tmp_path / "audit"
    for first, last in ((11, 12), (4, 10), (1, 3)):  # written out of order
        write_segment(directory, first, last)
    write_segment(directory, 13, 14, open_=True)
    for size in (13, 12, 10, 2, 3):
        write_checkpoint(directory, size)
    (directory / "segments" / "000000000004-000000000010.jsonl.tmp").write_text("not a segment")

    plan, held = ship_plan(directory, shipped=set())

    assert [item.name for item in plan] == [seg(1, 3), cp(2), cp(3), seg(4, 10), cp(10), seg(11, 12), cp(12)]
    assert held == [cp(13)]  # tree size 13 needs record 13, which is in the open segment
    # Shipped (perhaps pruned) segments still count as holding their records.
    (directory / seg(1, 3)).unlink()
    plan, held = ship_plan(directory, shipped={seg(1, 3), cp(2)})
    assert [item.name for item in plan] == [cp(3), seg(4, 10), cp(10), seg(11, 12), cp(12)]
    # A gap (records 4-10 missing) holds back every checkpoint past it.
    (directory / seg(4, 10)).unlink()
    plan, held = ship_plan(directory, shipped={seg(1, 3), cp(2)})
    assert [item.name for item in plan] == [cp(3), seg(11, 12)]
    assert held == [cp(10), cp(12), cp(13)]


def test_plan_follows_a_log_that_numbers_records_from_zero(tmp_path):
    directory = tmp_path / "audit"
    write_segment(directory, 0, 2)
    write_segment(directory, 3, 5)
    write_checkpoint(directory, 3)  # records 0, 1, 2
    write_checkpoint(directory, 6)  # records 0..5
    plan, held = ship_plan(directory, shipped=set())
    assert [item.name for item in plan] == [seg(0, 2), cp(3), seg(3, 5), cp(6)] and held == []


# -- shipping ---------------------------------------------------------------------------------
def test_ships_sealed_files_in_order_never_the_open_segment(s3_server, audit_dir, locked_bucket):
    before = snapshot(audit_dir)
    shipper = shipper_for(s3_server, audit_dir, locked_bucket)

    report = shipper.ship_once()

    assert report.error is None
    assert report.shipped == [seg(1, 3), cp(3), seg(4, 6), cp(6)]
    assert report.pending == [cp(7)]
    assert remote_keys(s3_server, locked_bucket) == sorted(f"audit/prod/{name}" for name in report.shipped)
    for name in report.shipped:
        assert remote_bytes(s3_server, locked_bucket, f"audit/prod/{name}") == (audit_dir / name).read_bytes()
    assert (audit_dir / SHIPPED_LOG).read_text() == "".join(f"{name}\n" for name in report.shipped)
    assert snapshot(audit_dir) == before  # nothing local changed, the open segment included

    again = shipper.ship_once()
    assert (again.shipped, again.pending, again.error) == ([], [cp(7)], None)
    assert (audit_dir / SHIPPED_LOG).read_text().count("\n") == 4

    # The log seals 7-8 and opens 9: the held checkpoint follows its segment.
    (audit_dir / "segments" / "open-000000000007.jsonl").rename(audit_dir / "segments" / "000000000007-000000000008.jsonl")
    write_segment(audit_dir, 9, 9, open_=True)
    assert shipper.ship_once().shipped == [seg(7, 8), cp(7)]


def test_shipped_objects_carry_compliance_retention(s3_server, audit_dir, locked_bucket):
    asked_at = datetime.now(timezone.utc)
    assert shipper_for(s3_server, audit_dir, locked_bucket).ship_once().error is None
    client = s3_server.client()
    for name in (seg(1, 3), cp(3)):
        retention = client.get_object_retention(Bucket=locked_bucket, Key=f"audit/prod/{name}")["Retention"]
        assert retention["Mode"] == "COMPLIANCE"
        # Retain-until is now + 1 day (stored to the second): later than the moment we asked
        # plus a day minus that rounding, and not absurdly far away.
        until = retention["RetainUntilDate"]
        assert asked_at + timedelta(days=RETENTION_DAYS) - timedelta(seconds=1) <= until
        assert until < asked_at + timedelta(days=RETENTION_DAYS + 1)
        head = client.head_object(Bucket=locked_bucket, Key=f"audit/prod/{name}")
        assert head["Metadata"]["sha256"] == hashlib.sha256((audit_dir / name).read_bytes()).hexdigest()


def test_a_delete_of_a_shipped_segment_is_denied(s3_server, audit_dir, locked_bucket):
    """SeaweedFS 4.48 enforces COMPLIANCE retention: deleting the version and shortening its
    retention are refused with AccessDenied (a plain DELETE only adds a delete marker, as on AWS)."""
    assert shipper_for(s3_server, audit_dir, locked_bucket).ship_once().error is None
    client = s3_server.client()
    key = f"audit/prod/{seg(1, 3)}"
    version = client.head_object(Bucket=locked_bucket, Key=key)["VersionId"]
    if not version:
        pytest.skip("this S3 server returned no VersionId for a shipped object, so a version delete cannot be tried")

    with pytest.raises(ClientError) as denied:
        client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as denied:
        client.delete_object(Bucket=locked_bucket, Key=key, VersionId=version, BypassGovernanceRetention=True)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as shortened:
        client.put_object_retention(Bucket=locked_bucket, Key=key, VersionId=version, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(timezone.utc) + timedelta(minutes=5)})
    assert shortened.value.response["Error"]["Code"] == "AccessDenied"

    # A delete without a version id hides the object behind a marker; the locked version stays.
    client.delete_object(Bucket=locked_bucket, Key=key)
    kept = client.get_object(Bucket=locked_bucket, Key=key, VersionId=version)["Body"].read()
    assert kept == (audit_dir / seg(1, 3)).read_bytes()


def test_after_a_crash_before_recording_the_same_bytes_are_recorded_not_reuploaded(s3_server, audit_dir, locked_bucket):
    shipper = shipper_for(s3_server, audit_dir, locked_bucket)
    first = shipper.ship_once().shipped
    # A crash after the upload, before shipped.log: the last line is torn, the rest missing.
    (audit_dir / SHIPPED_LOG).write_text(f"{seg(1, 3)}\n{cp(3)[:9]}")

    report = shipper.ship_once()

    assert report.error is None
    assert report.shipped == first[1:]
    assert (audit_dir / SHIPPED_LOG).read_text().splitlines() == [seg(1, 3), cp(3)[:9], *first[1:]]
    versions = s3_server.client().list_object_versions(Bucket=locked_bucket, Prefix="audit/prod/")["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted(f"audit/prod/{name}" for name in first)  # one each


def test_remote_object_with_other_bytes_stops_the_pass_and_is_not_overwritten(s3_server, audit_dir, locked_bucket):
    client = s3_server.client()
    client.put_object(Bucket=locked_bucket, Key=f"audit/prod/{cp(3)}", Body=b"{}", Metadata={"sha256": "0" * 64})

    report = shipper_for(s3_server, audit_dir, locked_bucket).ship_once()

    assert report.shipped == [seg(1, 3)]
    assert "other bytes" in report.error and cp(3) in report.error
    assert report.pending == [cp(3), seg(4, 6), cp(6), cp(7)]
    assert (audit_dir / SHIPPED_LOG).read_text() == f"{seg(1, 3)}\n"
    assert remote_bytes(s3_server, locked_bucket, f"audit/prod/{cp(3)}") == b"{}"


def test_upload_to_a_bucket_without_object_lock_fails_and_stays_pending(s3_server, audit_dir):
    bucket = new_bucket(s3_server, lock=False)
    report = shipper_for(s3_server, audit_dir, bucket).ship_once()
    assert report.shipped == [] and report.error is not None
    assert report.pending[0] == seg(1, 3)
    assert not (audit_dir / SHIPPED_LOG).exists()


def test_outage_keeps_everything_pending_then_ships_all(s3_env, audit_dir, locked_bucket):
    s3_server = s3_env
    shipper = AuditShipper(audit_dir, locked_bucket, "audit/prod", RETENTION_DAYS,
                           endpoint_url=s3_server.endpoint_url, region=s3_server.region)
    assert shipper.ship_once().error is None
    (audit_dir / "segments" / "open-000000000007.jsonl").rename(audit_dir / "segments" / "000000000007-000000000008.jsonl")
    write_segment(audit_dir, 9, 10)
    before_log = (audit_dir / SHIPPED_LOG).read_text()
    before = snapshot(audit_dir)

    s3_server.stop()
    try:
        report = shipper.ship_once()
    finally:
        s3_server.start()

    assert report.shipped == []
    assert report.pending == [seg(7, 8), cp(7), seg(9, 10)]
    assert "EndpointConnectionError" in report.error or "ConnectTimeoutError" in report.error
    assert s3_server.secret_key not in report.error and s3_server.access_key not in report.error
    assert (audit_dir / SHIPPED_LOG).read_text() == before_log
    assert snapshot(audit_dir) == before

    after = shipper.ship_once()
    assert after.error is None
    assert after.shipped == [seg(7, 8), cp(7), seg(9, 10)] and after.pending == []
    for path in [*(audit_dir / "segments").iterdir(), *(audit_dir / "checkpoints").iterdir()]:
        name = f"{path.parent.name}/{path.name}"
        assert remote_bytes(s3_server, locked_bucket, f"audit/prod/{name}") == path.read_bytes()


def test_concurrent_passes_ship_each_file_once(s3_server, audit_dir, locked_bucket):
    shipper = shipper_for(s3_server, audit_dir, locked_bucket)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(shipper.ship_once())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shipped = [name for report in reports for name in report.shipped]
    assert sorted(shipped) == sorted([seg(1, 3), cp(3), seg(4, 6), cp(6)])
    lines = (audit_dir / SHIPPED_LOG).read_text().splitlines()
    assert len(lines) == len(set(lines)) == 4


# -- background loop --------------------------------------------------------------------------
def test_background_thread_ships_a_file_written_after_start(s3_server, audit_dir, locked_bucket):
    shipper = shipper_for(s3_server, audit_dir, locked_bucket)
    shipper.start(interval=0.05)
    try:
        wait_for(lambda: cp(6) in shipper.shipped(), "the first files to ship")
        assert cp(7) not in shipper.shipped()  # record 7 is still in the open segment
        # The log seals its open segment (an atomic rename) while the loop runs.
        (audit_dir / "segments" / "open-000000000007.jsonl").rename(audit_dir / seg(7, 8))
        wait_for(lambda: cp(7) in shipper.shipped(), "the segment sealed after start and its checkpoint to ship")
    finally:
        final = shipper.stop(flush=True)
    assert final is not None and final.error is None and final.pending == []
    assert shipper.shipped() == {seg(1, 3), cp(3), seg(4, 6), cp(6), seg(7, 8), cp(7)}
    assert remote_bytes(s3_server, locked_bucket, f"audit/prod/{seg(7, 8)}") == (audit_dir / seg(7, 8)).read_bytes()


def _dead_endpoint() -> str:
    with socket.socket() as sock:  # a port nobody listens on (bound, then released)
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_background_thread_backs_off_and_logs_without_secrets(s3_env, audit_dir):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("atelier.audit")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    shipper = AuditShipper(audit_dir, "audit-unreachable", "p", RETENTION_DAYS, endpoint_url=_dead_endpoint(),
                           region="us-east-1", backoff_initial=0.01, backoff_max=0.04)
    shipper.start(interval=0.01)
    try:
        wait_for(lambda: shipper.failures >= 3, "three failed passes")
    finally:
        assert shipper.stop(flush=False) is None
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    warnings = [r for r in records if r.getMessage() == "audit_ship_failed"]
    assert len(warnings) >= 3
    fields = warnings[0].fields
    assert fields["pending"] == 5 and "EndpointConnectionError" in fields["error"]
    assert all(s3_env.secret_key not in json.dumps(r.fields) and s3_env.access_key not in json.dumps(r.fields)
               for r in warnings)
    assert not (audit_dir / SHIPPED_LOG).exists()


def test_backoff_grows_to_its_ceiling_with_jitter(tmp_path):
    shipper = AuditShipper(tmp_path, "b", "", 1, client=object(), backoff_initial=1.0, backoff_max=8.0)
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (60, 8.0)):
        for _ in range(20):
            assert ceiling * 0.5 <= shipper.backoff_delay(failures) <= ceiling


# -- bucket checks and download ---------------------------------------------------------------
def test_check_bucket_reports_what_is_missing(s3_server, tmp_path, locked_bucket):
    def problems(bucket):
        return shipper_for(s3_server, tmp_path, bucket).check_bucket()

    assert problems(locked_bucket) == []
    plain = problems(new_bucket(s3_server, lock=False))
    assert len(plain) == 2
    assert "versioning is not enabled" in plain[0] and "Object Lock is not enabled" in plain[1]
    versioned = problems(new_bucket(s3_server, lock=False, versioning=True))
    assert len(versioned) == 1 and "Object Lock is not enabled" in versioned[0]
    missing = problems(f"audit-missing-{uuid.uuid4().hex[:8]}")
    assert len(missing) == 1 and "does not exist" in missing[0]


def test_download_log_round_trip_from_environment(s3_env, audit_dir, locked_bucket, tmp_path, monkeypatch):
    shipper = shipper_for(s3_env, audit_dir, locked_bucket)
    assert shipper.ship_once().error is None
    s3_env.client().put_object(Bucket=locked_bucket, Key="audit/prod/segments/open-000000000007.jsonl", Body=b"x")
    monkeypatch.setenv("ATELIER_AUDIT_S3", f"s3://{locked_bucket}/audit/prod")
    monkeypatch.setenv("ATELIER_S3_ENDPOINT_URL", s3_env.endpoint_url)
    monkeypatch.setenv("ATELIER_S3_REGION", s3_env.region)

    dest = download_log(tmp_path / "copy")

    fetched = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert fetched == sorted([seg(1, 3), seg(4, 6), cp(3), cp(6)])  # no open segment, no held checkpoint
    for name in fetched:
        assert (dest / name).read_bytes() == (audit_dir / name).read_bytes()


def test_download_log_refuses_bytes_that_do_not_match_their_sha256(s3_server, locked_bucket, tmp_path):
    s3_server.client().put_object(Bucket=locked_bucket, Key=f"x/{seg(0, 0)}", Body=b"tampered\n",
                                  Metadata={"sha256": hashlib.sha256(b"original\n").hexdigest()})
    with pytest.raises(AuditShipError, match="do not match"):
        download_log(tmp_path / "copy", bucket=locked_bucket, prefix="x", client=s3_server.client())


def test_each_gateway_chain_ships_under_its_own_id(s3_env, locked_bucket, tmp_path, monkeypatch):
    """Two gateways on one registry each write a chain numbered from 1: under one prefix their
    segment names would collide, so each ships under `<prefix>/<log id>`."""
    from service.audit.recorder import Recorder
    from service.config import Settings
    from service.registry import open_registry
    from builds.audit_key import build_audit_key

    from service.audit.checkpoint import load_public_key
    from service.audit.verify import verify_log

    private, public = build_audit_key(tmp_path / "keys")
    registry = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    ids = []
    for replica in ("a", "b"):
        settings = Settings.from_env({
            "ATELIER_HOME": str(tmp_path), "ATELIER_AUDIT_DIR": str(tmp_path / f"audit-{replica}"),
            "ATELIER_AUDIT_KEY": str(private), "ATELIER_AUDIT_S3": f"s3://{locked_bucket}/fleet",
            "ATELIER_S3_ENDPOINT_URL": s3_env.endpoint_url, "ATELIER_S3_REGION": s3_env.region,
            "ATELIER_AUDIT_SEGMENT_RECORDS": "2",
        })
        recorder = Recorder.from_settings(settings, registry.db)
        for i in range(3):
            recorder.record({"event": "test", "replica": replica, "i": i})
        recorder.close()  # ends the chain: its last, short segment is sealed and shipped too
        ids.append(recorder.log.log_id)
    assert ids[0] != ids[1]
    for replica, ident in zip(("a", "b"), ids):
        copy = download_log(tmp_path / f"copy-{replica}", bucket=locked_bucket, prefix="fleet", log_id=ident,
                            client=s3_env.client())
        shipped = sorted(p.name for p in (copy / "segments").iterdir())
        assert shipped == ["000000000001-000000000002.jsonl", "000000000003-000000000003.jsonl"]
        local = tmp_path / f"audit-{replica}" / "chains" / ident / "segments"
        assert shipped == sorted(p.name for p in local.iterdir())
        records = [json.loads(line) for name in shipped for line in (copy / "segments" / name).read_text().splitlines()]
        assert [(r["replica"], r["i"]) for r in records] == [(replica, 0), (replica, 1), (replica, 2)]
        assert verify_log(copy, [load_public_key(public)]).ok
