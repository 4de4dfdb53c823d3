"""The audit log's pieces: canonical records, RFC 6962 Merkle trees, the appender, usage, dev key."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builds.audit_key import build_audit_key
from service.audit import merkle
from service.audit.checkpoint import CheckpointError, CheckpointSigner, verify_checkpoint
from service.audit.log import AuditLog, AuditLogClosed, LogCorrupt, find_records, iter_records
from service.audit.record import GENESIS_HASH, InvalidEvent, canonical_json, record_hash
from service.audit.usage import aggregate, to_csv, to_json
from service.audit.verify import verify_log

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def signer() -> CheckpointSigner:
    return CheckpointSigner(Ed25519PrivateKey.generate())


def event(i: int, **extra) -> dict:
    return {"tenant": "acme", "key_id": "k1", "twin_id": "twin-a", "generation_id": f"gen-{i}", "outcome": "ok",
            "num_images": 1, **extra}


def segment_names(directory: Path) -> list[str]:
    return sorted(p.name for p in (directory / "segments").iterdir())


# ---- records ----------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8_and_refuses_nan():
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    for bad in (float("nan"), float("inf"), {"x": float("-inf")}):
        with pytest.raises(InvalidEvent):
            canonical_json(bad)
    with pytest.raises(InvalidEvent):
        canonical_json({"x": object()})


def test_record_hash_covers_every_field_but_hash():
    record = {"seq": 1, "prev_hash": GENESIS_HASH, "tenant": "acme"}
    expected = hashlib.sha256(canonical_json(record)).hexdigest()
    assert record_hash(record) == expected
    assert record_hash({**record, "hash": "whatever"}) == expected
    assert record_hash({**record, "tenant": "acmf"}) != expected


# ---- Merkle trees: RFC 6962 test vectors (certificate-transparency) and an independent check ----

RFC_LEAVES = [bytes.fromhex(h) for h in
              ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
RFC_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
RFC_INCLUSION = [  # (0-based index, tree size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
RFC_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 written out literally, independent of merkle.py."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def test_merkle_roots_match_rfc6962_vectors():
    for size, expected in enumerate(RFC_ROOTS):
        assert merkle.root(RFC_LEAVES[:size]).hex() == expected
        assert reference_root(RFC_LEAVES[:size]).hex() == expected


def test_merkle_inclusion_and_consistency_match_rfc6962_vectors():
    for index, size, path in RFC_INCLUSION:
        proof = merkle.inclusion_proof(index, RFC_LEAVES[:size])
        assert [p.hex() for p in proof] == path
        assert merkle.verify_inclusion(RFC_LEAVES[index], index, size, proof, bytes.fromhex(RFC_ROOTS[size]))
    for first, second, path in RFC_CONSISTENCY:
        proof = merkle.consistency_proof(first, RFC_LEAVES[:second])
        assert [p.hex() for p in proof] == path
        assert merkle.verify_consistency(first, second, proof, bytes.fromhex(RFC_ROOTS[first]),
                                         bytes.fromhex(RFC_ROOTS[second]))


def test_merkle_proofs_verify_for_every_leaf_and_fail_when_tampered():
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(33)]
    for size in range(1, len(leaves) + 1):
        tree = leaves[:size]
        root = merkle.root(tree)
        assert root == reference_root(tree)
        compact = merkle.CompactRange()
        compact.extend(merkle.leaf_hash(leaf) for leaf in tree)
        assert compact.root() == root
        for index in range(size):
            proof = merkle.inclusion_proof(index, tree)
            assert merkle.verify_inclusion(tree[index], index, size, proof, root)
            tampered = bytes([tree[index][0] ^ 1]) + tree[index][1:]
            assert not merkle.verify_inclusion(tampered, index, size, proof, root)
            if size > 1:
                assert not merkle.verify_inclusion(tree[index], (index + 1) % size, size, proof, root)
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(first, tree)
            old_root = merkle.root(tree[:first])
            assert merkle.verify_consistency(first, size, proof, old_root, root)
            if first < size:
                forged = merkle.root([b"x"] + tree[1:first])
                assert not merkle.verify_consistency(first, size, proof, forged, root)


# ---- the appender -------------------------------------------------------------------------------


def test_append_builds_a_hash_chain_written_as_canonical_lines(tmp_path):
    log = AuditLog(tmp_path)
    records = [log.append(event(i)) for i in range(5)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev_hash"] == GENESIS_HASH
    for before, after in zip(records, records[1:]):
        assert after["prev_hash"] == before["hash"]
    for record in records:
        assert record["hash"] == record_hash(record)
        assert re.fullmatch(r"[0-9a-f]{32}", record["event_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["ts"])
    lines = (tmp_path / "segments" / "open-000000000001.jsonl").read_bytes().splitlines()
    assert lines == [canonical_json(r) for r in records]
    assert list(log.iter_records()) == records
    assert log.fsyncs == 5  # one per append when nothing runs concurrently
    log.close()
    assert segment_names(tmp_path) == ["000000000001-000000000005.jsonl"]


def test_append_refuses_reserved_fields_and_a_closed_log(tmp_path):
    log = AuditLog(tmp_path)
    with pytest.raises(InvalidEvent):
        log.append({"seq": 7})
    with pytest.raises(InvalidEvent):
        log.append({"x": float("nan")})
    assert log.size == 0
    log.close()
    with pytest.raises(AuditLogClosed):
        log.append(event(1))


def test_records_survive_a_process_that_dies_right_after_append(tmp_path):
    script = (
        "import os, sys; from pathlib import Path; from service.audit.log import AuditLog\n"
        "log = AuditLog(Path(sys.argv[1]))\n"
        "for i in range(3): log.append({'i': i})\n"
        "os._exit(0)\n"  # no close, no flush, no atexit
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, check=True)
    log = AuditLog(tmp_path)
    assert log.size == 3
    assert [r["i"] for r in log.iter_records()] == [0, 1, 2]
    log.append({"i": 3})
    log.close()
    assert verify_log(tmp_path).ok


def test_segments_roll_over_and_seal(tmp_path):
    log = AuditLog(tmp_path, segment_records=4)
    for i in range(10):
        log.append(event(i))
    assert segment_names(tmp_path) == [
        "000000000001-000000000004.jsonl", "000000000005-000000000008.jsonl", "open-000000000009.jsonl"]
    log.seal()
    assert segment_names(tmp_path)[-1] == "000000000009-000000000010.jsonl"
    log.append(event(10))
    assert segment_names(tmp_path)[-1] == "open-000000000011.jsonl"
    log.close()
    assert segment_names(tmp_path)[-1] == "000000000011-000000000011.jsonl"
    assert [r["seq"] for r in iter_records(tmp_path)] == list(range(1, 12))


def test_many_threads_make_one_valid_chain(tmp_path, signer):
    log = AuditLog(tmp_path, signer, checkpoint_every=250, segment_records=500, checkpoint_seconds=0)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(200):
                log.append({"thread": t, "i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert errors == []
    records = list(iter_records(tmp_path))
    assert [r["seq"] for r in records] == list(range(1, 1601))
    assert sorted((r["thread"], r["i"]) for r in records) == [(t, i) for t in range(8) for i in range(200)]
    result = verify_log(tmp_path, [signer.public_key])
    assert result.ok, result.problems
    assert (result.records, result.checkpoints) == (1600, 7)  # 250..1500 by count, 1600 on close


def simulate_crash(log: AuditLog) -> None:
    """What process death does to a writer: its descriptors (and so its flock) are gone, and
    nothing is flushed, checkpointed or sealed."""
    import os

    log._stop.set()
    if log._fd is not None:
        os.close(log._fd)
    os.close(log._dir_lock)


@pytest.mark.parametrize("with_signer", [True, False], ids=["replay", "tail-only"])
def test_restart_resumes_the_chain(tmp_path, signer, with_signer):
    key = signer if with_signer else None
    log = AuditLog(tmp_path, key, segment_records=4, checkpoint_seconds=0)
    for i in range(6):
        log.append(event(i))
    abandoned_root = log.root_hash()
    simulate_crash(log)  # no close: the open segment stays open
    log = AuditLog(tmp_path, key, segment_records=4, checkpoint_seconds=0)
    assert log.size == 6
    if with_signer:
        assert log.root_hash() == abandoned_root
    assert log.append(event(6))["seq"] == 7
    log.close()
    log = AuditLog(tmp_path, key, segment_records=4, checkpoint_seconds=0)
    assert log.append(event(7))["seq"] == 8
    log.close()
    result = verify_log(tmp_path, [signer.public_key])
    assert result.ok, result.problems
    assert result.records == 8


def test_a_torn_last_line_is_cut_away_on_open(tmp_path, caplog):
    log = AuditLog(tmp_path)
    for i in range(3):
        log.append(event(i))
    segment = tmp_path / "segments" / "open-000000000001.jsonl"
    with open(segment, "ab") as handle:
        handle.write(b'{"event_id":"abc","generat')  # a crash in the middle of a write
    assert verify_log(tmp_path).warnings[0].kind == "torn_tail"
    simulate_crash(log)
    with caplog.at_level(logging.WARNING, logger="atelier.audit"):
        log = AuditLog(tmp_path)
    assert log.torn_tail_bytes == len(b'{"event_id":"abc","generat')
    assert any("torn" in r.getMessage() for r in caplog.records)
    assert segment.read_bytes().endswith(b"\n")
    assert log.append(event(3))["seq"] == 4
    log.close()
    result = verify_log(tmp_path)
    assert result.ok and result.records == 4 and not result.warnings


def test_a_log_with_a_checkpoint_beyond_its_records_refuses_to_open(tmp_path, signer):
    log = AuditLog(tmp_path, signer, checkpoint_every=3, checkpoint_seconds=0)
    for i in range(4):
        log.append(event(i))
    simulate_crash(log)
    segment = tmp_path / "segments" / "open-000000000001.jsonl"
    segment.write_bytes(b"".join(line + b"\n" for line in segment.read_bytes().splitlines()[:2]))
    with pytest.raises(LogCorrupt, match="checkpoint 3"):
        AuditLog(tmp_path, signer)


def test_checkpoints_by_count_are_signed_merkle_roots(tmp_path, signer):
    log = AuditLog(tmp_path, signer, checkpoint_every=5, checkpoint_seconds=0)
    records = [log.append(event(i)) for i in range(12)]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["000000000005.json", "000000000010.json"]
    log.close()
    leaves = [bytes.fromhex(r["hash"]) for r in records]
    for size in (5, 10, 12):
        cp = json.loads((tmp_path / "checkpoints" / f"{size:012d}.json").read_bytes())
        assert set(cp) == {"tree_size", "root_hash", "last_hash", "ts", "key_id", "signature"}
        assert cp["tree_size"] == size and cp["key_id"] == signer.key_id
        assert cp["root_hash"] == merkle.root(leaves[:size]).hex()
        assert cp["last_hash"] == records[size - 1]["hash"]
        verify_checkpoint(cp, [signer.public_key])
        with pytest.raises(CheckpointError) as info:
            verify_checkpoint({**cp, "tree_size": size + 1}, [signer.public_key])
        assert info.value.kind == "checkpoint_signature"


def test_checkpoints_by_time_come_from_the_timer(tmp_path, signer):
    log = AuditLog(tmp_path, signer, checkpoint_every=1000, checkpoint_seconds=0.05)
    for i in range(3):
        log.append(event(i))
    assert log.wait_for_checkpoint(3, timeout=30), "the timer wrote no checkpoint"
    assert (tmp_path / "checkpoints" / "000000000003.json").is_file()
    timer = log._timer
    log.close()
    assert timer is not None and not timer.is_alive()
    assert verify_log(tmp_path, [signer.public_key]).ok


def test_find_scans_every_segment(tmp_path):
    log = AuditLog(tmp_path, segment_records=3)
    for i in range(7):
        log.append(event(i))
    log.append({"generation_id": "gen-1", "outcome": "delivered"})
    found = log.find("generation_id", "gen-1")
    assert [(r["seq"], r["outcome"]) for r in found] == [(2, "ok"), (8, "delivered")]
    assert find_records(tmp_path, "generation_id", "gen-1", limit=1)[0]["seq"] == 8
    assert log.find("generation_id", "gen-99") == []
    assert log.find("tenant", "gen-1") == []  # the value elsewhere in the line is not a match
    before = segment_names(tmp_path)
    assert [r["seq"] for r in AuditLog.read_only(tmp_path).find("generation_id", "gen-1")] == [2, 8]
    assert segment_names(tmp_path) == before  # the reader beside a live writer changes nothing
    log.close()


# ---- usage ----------------------------------------------------------------------------------------


def test_usage_counts_ok_images_per_day_tenant_and_twin():
    def rec(ts, tenant, twin, outcome="ok", **fields):
        return {"ts": ts, "tenant": tenant, "twin_id": twin, "outcome": outcome, **fields}

    records = [
        rec("2025-03-01T10:00:00.000000Z", "acme", "t1", num_images=2),
        rec("2025-03-01T23:59:59.999999Z", "acme", "t1", images=[{}, {}, {}], num_images=9),
        rec("2025-03-01T12:00:00.000000Z", "acme", "t2", num_images=1),
        rec("2025-03-01T12:00:00.000000Z", "zeta", "t1", num_images=4),
        rec("2025-03-02T00:00:00.000000Z", "acme", "t1", num_images=5),
        rec("2025-03-02T00:00:00.000000Z", "acme", "t1", outcome="error", num_images=50),
        rec("2025-03-02T00:00:00.000000Z", "acme", "t1"),  # no image count: skipped
        rec("2025-03-03T00:00:00.000000Z", "acme", None, num_images=1),
    ]
    rows = aggregate(records)
    assert [(r["day"], r["tenant"], r["twin_id"], r["generations"], r["images"]) for r in rows] == [
        ("2025-03-01", "acme", "t1", 2, 5),
        ("2025-03-01", "acme", "t2", 1, 1),
        ("2025-03-01", "zeta", "t1", 1, 4),
        ("2025-03-02", "acme", "t1", 1, 5),
        ("2025-03-03", "acme", None, 1, 1),
    ]
    assert [r["images"] for r in aggregate(records, twin="t1")] == [5, 4, 5]
    window = aggregate(records, date_from=dt.date(2025, 3, 2), date_to=dt.date(2025, 3, 2))
    assert [(r["day"], r["images"]) for r in window] == [("2025-03-02", 5)]
    csv_text = to_csv(rows)
    assert csv_text.splitlines()[0] == "day,tenant,twin_id,generations,images"
    assert csv_text.splitlines()[-1] == "2025-03-03,acme,,1,1"
    assert json.loads(to_json(rows)) == rows


# ---- the dev key ----------------------------------------------------------------------------------


def test_build_audit_key_is_private_and_idempotent(tmp_path):
    private, public = build_audit_key(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    first = (private.read_bytes(), public.read_bytes())
    assert build_audit_key(tmp_path / "keys") == (private, public)
    assert (private.read_bytes(), public.read_bytes()) == first
    public.unlink()
    build_audit_key(tmp_path / "keys")
    assert public.read_bytes() == first[1]
    signer = CheckpointSigner.from_pem(private)
    verify_checkpoint(signer.sign(1, "a" * 64, "b" * 64), [public])


def test_a_second_writer_on_the_same_directory_is_refused(tmp_path):
    from service.audit.log import AuditLog, LogCorrupt

    first = AuditLog(tmp_path / "audit")
    try:
        with pytest.raises(LogCorrupt, match="another process"):
            AuditLog(tmp_path / "audit")
        first.append({"event": "still-works"})
    finally:
        first.close()
    AuditLog(tmp_path / "audit").close()  # released on close
