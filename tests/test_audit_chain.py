"""The fleet's audit record in the registry: chains committed before an answer, on SQLite and
PostgreSQL (`db_url` runs each test on both when ATELIER_TEST_PG_URL is set).

- Appends from many threads share transactions (group commit) and every acknowledged record
  is in the database, in one unbroken, checkpointed chain.
- Two writers (two gateway processes) write chains of their own on one database; usage,
  statements and finds count both, and only `ok` records with images.
- A chain can never be forked or extended after it ended.
- A chain whose writer died is adopted by one gateway: ended, signed over every stored record,
  sealed and verifiable; a live chain is never adopted.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.archive import ChainArchive
from service.audit.chain import AuditWriteFailed, ChainLog
from service.audit.checkpoint import CheckpointSigner
from service.audit.verify import verify_log
from service.registry import open_registry
from service.registry.audit import AuditRecords, ChainConflict

SIGNER = CheckpointSigner(Ed25519PrivateKey.generate())


@pytest.fixture()
def store(db_url):
    registry = open_registry(db_url)
    yield AuditRecords(registry.db)
    registry.engine.dispose()


def generation(i: int, *, twin="demo-ava", tenant="acme", outcome="ok", images=1, use="ecommerce", version=2):
    event = {"event": "generation", "tenant": tenant, "twin_id": twin, "generation_id": f"g-{twin}-{i}",
             "outcome": outcome, "params": {"use": use}, "consent": {"consent_id": 7, "version": version}}
    if outcome == "ok":
        event["images"] = [{"index": n} for n in range(images)]
    return event


def verified(store: AuditRecords, log_id: str, tmp_path) -> tuple[int, int]:
    result = verify_log(ChainArchive(store, tmp_path).export(log_id, tmp_path / f"export-{log_id}"), [SIGNER.public_key])
    assert result.ok, [str(p) for p in result.problems]
    return result.records, result.checkpoints


def test_concurrent_appends_are_all_committed_in_one_chain(store, tmp_path):
    log = ChainLog(store, SIGNER, checkpoint_every=25, checkpoint_seconds=0)
    acknowledged: list[int] = []

    def work(k: int) -> None:
        for i in range(25):
            acknowledged.append(log.append(generation(k * 100 + i))["seq"])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    log.close()
    assert sorted(acknowledged) == list(range(1, 101))
    chain = store.chain(log.log_id)
    assert (chain.size, chain.ended_at is not None) == (100, True)
    assert log.commits <= 100  # shared where threads met; never more than one per record
    records, checkpoints = verified(store, log.log_id, tmp_path)
    assert records == 100 and checkpoints >= 1


def test_two_writers_one_record_usage_and_statement_count_both(store, tmp_path):
    a, b = ChainLog(store, SIGNER, checkpoint_seconds=0), ChainLog(store, SIGNER, checkpoint_seconds=0)
    assert a.log_id != b.log_id
    for i in range(3):
        a.append(generation(i, images=2))
        b.append(generation(10 + i, twin="demo-ben", tenant="rival", use="advertising"))
    a.append(generation(99, outcome="failed"))
    b.append(generation(98, outcome="refused"))
    b.append({"event": "generation", "tenant": "acme", "twin_id": "demo-ava", "outcome": "ok", "params": {"use": "ecommerce"}})
    a.append(generation(50, version=3))  # after the person's consent moved to version 3
    usage = store.usage()
    assert [(r["tenant"], r["twin_id"], r["generations"], r["images"]) for r in usage] == [
        ("acme", "demo-ava", 4, 7), ("rival", "demo-ben", 3, 3)]
    statement = store.statement(twins=frozenset({"demo-ava"}), date_from="2000-01-01", date_to="2999-12-31")
    assert statement == [
        {"twin_id": "demo-ava", "brand": "acme", "use": "ecommerce", "consent_version": 2, "licence_id": None,
         "generations": 3, "images": 6},
        {"twin_id": "demo-ava", "brand": "acme", "use": "ecommerce", "consent_version": 3, "licence_id": None,
         "generations": 1, "images": 1}]
    assert store.statement(twins=frozenset(), date_from="2000-01-01", date_to="2999-12-31") == []
    assert store.usage(date_from="2999-01-01") == []
    [found] = store.find("generation_id", "g-demo-ben-11")  # from either writer
    assert found["tenant"] == "rival"
    assert [r["reason"] if "reason" in r else r["outcome"] for r in store.find("outcome", "refused")] == ["refused"]
    a.close(), b.close()
    assert verified(store, a.log_id, tmp_path)[0] == 5 and verified(store, b.log_id, tmp_path)[0] == 5


def test_a_chain_cannot_be_forked_or_extended_after_it_ended(store):
    log = ChainLog(store, SIGNER, checkpoint_seconds=0)
    log.append({"event": "one"})
    from service.audit.chain import stored
    from service.audit.record import build_record

    record, line = build_record({"event": "fork"}, 1, "0" * 64)
    with pytest.raises(ChainConflict):  # seq 1 again: another writer cannot fork the chain
        store.commit(log.log_id, [stored(record, line, log.log_id)])
    log.close()
    record, line = build_record({"event": "late"}, 2, log.last_hash)
    with pytest.raises(ChainConflict):  # ended: nothing is appended after the end
        store.commit(log.log_id, [stored(record, line, log.log_id)])
    assert store.chain(log.log_id).size == 1


def test_a_dead_writers_chain_is_adopted_once_and_a_live_one_never(store, tmp_path):
    dead = ChainLog(store, SIGNER, checkpoint_every=1000, checkpoint_seconds=0, heartbeat_s=3600)
    for i in range(7):
        dead.append(generation(i))
    live = ChainLog(store, SIGNER, checkpoint_every=1000, checkpoint_seconds=0, heartbeat_s=0.05)
    live.append(generation(100))
    time.sleep(0.6)  # the dead writer's heartbeat is 0.6 s old; the live one beats every 50 ms
    first = ChainArchive(store, tmp_path / "a", segment_records=3, signer=SIGNER, archiver="gateway-a",
                         orphan_after_s=0.5)
    second = ChainArchive(store, tmp_path / "b", segment_records=3, signer=SIGNER, archiver="gateway-b",
                          orphan_after_s=0.5)
    assert first.adopt_orphans() == [dead.log_id]
    assert second.adopt_orphans() == []  # sealed already, and leased to the first
    chain = store.chain(dead.log_id)
    assert chain.ended_at is not None and chain.archived == chain.size == 7
    sealed = sorted(p.name for p in (first.chain_dir(dead.log_id) / "segments").iterdir())
    assert sealed == ["000000000001-000000000003.jsonl", "000000000004-000000000006.jsonl",
                      "000000000007-000000000007.jsonl"]
    result = verify_log(first.chain_dir(dead.log_id), [SIGNER.public_key])
    assert result.ok and (result.records, result.checkpoints, result.unanchored) == (7, 1, 0)
    with pytest.raises(AuditWriteFailed):  # the dead process, were it alive, could not write on
        dead.append({"event": "zombie"})
    live.close()
    assert store.claim_orphan(live.log_id, "x", timedelta(seconds=60), timedelta(seconds=60))  # ended by its writer


def test_an_adopted_chain_ships_whole_with_its_checkpoint_though_its_writer_sealed_a_segment(store, tmp_path):
    """The writer sealed (and may or may not have shipped) its first segment, then died. The
    adopter seals from record 1 in its own directory, so the final checkpoint, which covers
    records 1..N, is ready to ship there: not held back behind records it never saw sealed."""
    from service.audit.shipper import ship_plan

    dead = ChainLog(store, SIGNER, checkpoint_every=1000, checkpoint_seconds=0, heartbeat_s=3600)
    for i in range(5):
        dead.append(generation(i))
    writer = ChainArchive(store, tmp_path / "dead", segment_records=3, signer=SIGNER, archiver="dead")
    assert writer.seal_full(dead.log_id, 5) == 1  # 1-3 sealed on the writer's own disk
    time.sleep(0.6)
    adopter = ChainArchive(store, tmp_path / "b", segment_records=3, signer=SIGNER, archiver="gateway-b",
                           orphan_after_s=0.5)
    assert adopter.adopt_orphans() == [dead.log_id]
    plan, held = ship_plan(adopter.chain_dir(dead.log_id), shipped=set())
    assert held == []
    assert [item.name for item in plan] == ["segments/000000000001-000000000003.jsonl",
                                            "segments/000000000004-000000000005.jsonl",
                                            "checkpoints/000000000005.json"]
    result = verify_log(adopter.chain_dir(dead.log_id), [SIGNER.public_key])
    assert result.ok and (result.records, result.checkpoints, result.unanchored) == (5, 1, 0)


# ---- what the local-file writer's tests guarded, asked of the chain ------------------------------


def test_append_builds_a_hash_chain_stored_as_canonical_lines(store):
    import re

    from service.audit.record import GENESIS_HASH, canonical_json, record_hash

    log = ChainLog(store, checkpoint_seconds=0, heartbeat_s=3600)
    records = [log.append(generation(i)) for i in range(5)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev_hash"] == GENESIS_HASH
    for before, after in zip(records, records[1:]):
        assert after["prev_hash"] == before["hash"]
    for record in records:
        assert record["hash"] == record_hash(record)
        assert re.fullmatch(r"[0-9a-f]{32}", record["event_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["ts"])
    assert [line.encode() for line in store.lines(log.log_id)] == [canonical_json(r) for r in records]
    assert log.commits == 5  # one transaction per append when nothing runs concurrently
    log.close()


def test_append_refuses_reserved_fields_and_a_closed_chain(store):
    from service.audit.chain import AuditLogClosed
    from service.audit.record import InvalidEvent

    log = ChainLog(store, checkpoint_seconds=0, heartbeat_s=3600)
    with pytest.raises(InvalidEvent):
        log.append({"seq": 7})
    with pytest.raises(InvalidEvent):
        log.append({"x": float("nan")})
    assert log.size == 0 and store.chain(log.log_id).size == 0
    log.close()
    with pytest.raises(AuditLogClosed):
        log.append(generation(1))
    assert store.chain(log.log_id).size == 0


def test_records_survive_a_process_killed_right_after_append(db_url, store, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import os, sys\n"
        "from service.audit.chain import ChainLog\n"
        "from service.registry import open_registry\n"
        "from service.registry.audit import AuditRecords\n"
        "log = ChainLog(AuditRecords(open_registry(sys.argv[1]).db), checkpoint_seconds=0, heartbeat_s=3600)\n"
        "for i in range(3): log.append({'event': 'fault', 'i': i})\n"
        "print(log.log_id, flush=True)\n"
        "os._exit(0)\n"  # no close, no end of the chain, no atexit
    )
    repo = Path(__file__).resolve().parent.parent
    child = subprocess.run([sys.executable, "-c", script, db_url], cwd=repo, check=True, capture_output=True,
                           text=True, timeout=120)
    log_id = child.stdout.strip()
    chain = store.chain(log_id)
    assert (chain.size, chain.ended_at) == (3, None)  # committed, and nobody ended it
    assert [json.loads(line)["i"] for line in store.lines(log_id)] == [0, 1, 2]
    assert verified(store, log_id, tmp_path) == (3, 0)  # the hash chain alone: no signer


def test_checkpoints_by_count_are_signed_merkle_roots(store):
    import json

    from service.audit import merkle
    from service.audit.checkpoint import CheckpointError, verify_checkpoint

    log = ChainLog(store, SIGNER, checkpoint_every=5, checkpoint_seconds=0, heartbeat_s=3600)
    records = [log.append(generation(i)) for i in range(12)]
    assert [size for size, _ in store.checkpoints(log.log_id)] == [5, 10]
    log.close()
    checkpoints = dict(store.checkpoints(log.log_id))
    assert sorted(checkpoints) == [5, 10, 12]  # and one at close
    leaves = [bytes.fromhex(r["hash"]) for r in records]
    for size in (5, 10, 12):
        cp = json.loads(checkpoints[size])
        assert set(cp) == {"tree_size", "root_hash", "last_hash", "ts", "key_id", "signature"}
        assert cp["tree_size"] == size and cp["key_id"] == SIGNER.key_id
        assert cp["root_hash"] == merkle.root(leaves[:size]).hex()
        assert cp["last_hash"] == records[size - 1]["hash"]
        verify_checkpoint(cp, [SIGNER.public_key])
        with pytest.raises(CheckpointError) as info:
            verify_checkpoint({**cp, "tree_size": size + 1}, [SIGNER.public_key])
        assert info.value.kind == "checkpoint_signature"


def test_checkpoints_by_time_come_from_the_maintenance_thread(store, tmp_path):
    log = ChainLog(store, SIGNER, checkpoint_every=1000, checkpoint_seconds=0.05, heartbeat_s=0.05)
    for i in range(3):
        log.append(generation(i))
    assert log.wait_for_checkpoint(3, timeout=60), "the maintenance thread stored no checkpoint"
    sizes = [size for size, _ in store.checkpoints(log.log_id)]
    assert sizes[-1] == 3  # by time (1000 by count is never reached)
    thread = log._thread
    log.close()
    assert not thread.is_alive()
    assert [size for size, _ in store.checkpoints(log.log_id)] == sizes  # close had nothing new to sign
    assert verified(store, log.log_id, tmp_path) == (3, len(sizes))


def test_a_live_chain_archives_full_segments_and_its_short_last_one_at_close(store, tmp_path):
    from service.audit.segments import iter_records

    archive = ChainArchive(store, tmp_path, segment_records=4)
    log = ChainLog(store, checkpoint_seconds=0, heartbeat_s=3600, archive=archive)
    for i in range(10):
        log.append(generation(i))
    directory = archive.chain_dir(log.log_id)

    def sealed() -> list[str]:
        return sorted(p.name for p in (directory / "segments").iterdir())

    assert archive.seal_full(log.log_id, log.size) == 2  # what the maintenance thread does
    assert sealed() == ["000000000001-000000000004.jsonl", "000000000005-000000000008.jsonl"]
    log.seal()
    assert sealed()[-1] == "000000000009-000000000010.jsonl"
    log.append(generation(10))
    log.close()
    assert sealed()[-1] == "000000000011-000000000011.jsonl"
    assert [r["seq"] for r in iter_records(directory)] == list(range(1, 12))
    assert store.chain(log.log_id).archived == 11
    assert verify_log(directory).ok


def test_a_generations_watermark_index_rows_are_committed_with_its_record_or_not_at_all(store, db_url):
    from service.registry import open_registry

    registry = open_registry(db_url)
    log = ChainLog(store, SIGNER, checkpoint_seconds=0)
    marks = [("00aa00aa00aa00aa", "f" * 32, "acme", "demo-ava", 0), ("00bb00bb00bb00bb", "f" * 32, "acme", "demo-ava", 1)]
    log.append(generation(1), watermarks=marks)
    found = registry.twins.find_watermark("00aa00aa00aa00aa")
    assert (found.generation_id, found.image_index) == ("f" * 32, 0)
    assert registry.twins.taken_watermarks(["00bb00bb00bb00bb", "00cc00cc00cc00cc"]) == {"00bb00bb00bb00bb"}
    log.close()  # ended: a commit on it fails, and takes its index rows with it
    from service.audit.chain import stored
    from service.audit.record import build_record

    record, line = build_record(generation(2), 2, log.last_hash)
    with pytest.raises(ChainConflict):
        store.commit(log.log_id, [stored(record, line, log.log_id, [("00dd00dd00dd00dd", "e" * 32, "acme", None, 0)])])
    assert registry.twins.find_watermark("00dd00dd00dd00dd") is None
    registry.engine.dispose()


def test_a_tenants_generations_come_newest_first_a_page_at_a_time_and_never_anothers(store):
    """Studio's gallery reads through the (tenant, ts) index: paged, filtered in SQL."""
    a, b = ChainLog(store, SIGNER, checkpoint_seconds=0), ChainLog(store, SIGNER, checkpoint_seconds=0)
    for i in range(7):
        a.append({**generation(i, twin="demo-ava" if i % 2 else "demo-ben"), "job": {"job_id": "f" * 32, "item": i}}
                 if i < 3 else generation(i, twin="demo-ava" if i % 2 else "demo-ben"))
        b.append(generation(100 + i, tenant="rival"))
    a.append(generation(50, outcome="error"))  # a refusal: never in a gallery
    a.append({**generation(51), "event": "verify"})
    first = store.tenant_generations("acme", limit=4)
    second = store.tenant_generations("acme", offset=4, limit=4)
    ids = [r["generation_id"] for r in first + second]
    assert len(first) == 4 and len(second) == 3 and len(set(ids)) == 7
    assert all(r["tenant"] == "acme" and r["outcome"] == "ok" and r["event"] == "generation" for r in first + second)
    assert [r["ts"] for r in first + second] == sorted((r["ts"] for r in first + second), reverse=True)
    assert {r["generation_id"] for r in store.tenant_generations("acme", twin="demo-ava")} == {
        "g-demo-ava-1", "g-demo-ava-3", "g-demo-ava-5"}
    assert {r["generation_id"] for r in store.tenant_generations("acme", job_id="f" * 32)} == {
        "g-demo-ben-0", "g-demo-ava-1", "g-demo-ben-2"}
    today = first[0]["ts"][:10]
    assert len(store.tenant_generations("acme", day_from=today, day_to=today, limit=50)) == 7
    assert store.tenant_generations("acme", day_to="2000-01-01") == []
    assert store.tenant_generations("nobody") == [] and len(store.tenant_generations("rival", limit=50)) == 7
    assert store.tenant_generations("acme", job_id='x","tenant":"rival') == []  # a value, never SQL or JSON
    a.close()
    b.close()
