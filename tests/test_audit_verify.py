"""`verify_log` on a real chain committed to a registry by ChainLog and archived as files by
ChainArchive, then damaged the way an attacker or a disk would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit.archive import ChainArchive
from service.audit.chain import ChainLog
from service.audit.checkpoint import CheckpointSigner
from service.audit.record import canonical_json, record_hash
from service.audit.verify import verify_log
from service.registry import open_registry
from service.registry.audit import AuditRecords

SEG1, SEG2, SEG3, SEG4 = (
    "000000000001-000000000010.jsonl",
    "000000000011-000000000020.jsonl",
    "000000000021-000000000030.jsonl",
    "000000000031-000000000035.jsonl",
)


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, signer) -> Path:
    """35 records in segments of 10; checkpoints at 10, 20, 30 (by count) and 35 (on close)."""
    work = tmp_path_factory.mktemp("pristine")
    registry = open_registry(f"sqlite:///{work / 'registry.db'}")
    try:
        store = AuditRecords(registry.db)
        with ChainLog(store, signer, checkpoint_every=10, checkpoint_seconds=0) as log:
            for i in range(35):
                log.append({"tenant": "acme", "twin_id": "t1", "generation_id": f"gen-{i + 1}", "outcome": "ok",
                            "num_images": 1})
        directory = ChainArchive(store, work, segment_records=10).export(log.log_id, work / "audit")
    finally:
        registry.engine.dispose()
    assert sorted(p.name for p in (directory / "segments").iterdir()) == [SEG1, SEG2, SEG3, SEG4]
    assert sorted(p.name for p in (directory / "checkpoints").iterdir()) == [
        f"{size:012d}.json" for size in (10, 20, 30, 35)]
    return directory


@pytest.fixture()
def log_dir(pristine, tmp_path) -> Path:
    target = tmp_path / "audit"
    shutil.copytree(pristine, target)
    return target


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def write_lines(path: Path, content: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in content))


def check(directory: Path, signer: CheckpointSigner):
    return verify_log(directory, [signer.public_key])


def test_an_untouched_log_verifies(log_dir, signer):
    result = check(log_dir, signer)
    assert result.ok and result.problems == [] and result.first is None
    assert (result.records, result.checkpoints, result.unanchored) == (35, 4, 0)


def test_without_the_trusted_key_checkpoints_fail(log_dir):
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    result = verify_log(log_dir, [other.public_key])
    assert not result.ok
    assert {p.kind for p in result.problems} == {"checkpoint_unknown_key"}


def test_an_edited_byte_is_a_hash_mismatch_at_that_seq(log_dir, signer):
    segment = log_dir / "segments" / SEG2
    data = segment.read_bytes()
    at = data.index(b'"gen-15"') + 5
    segment.write_bytes(data[:at] + b"9" + data[at + 1:])  # gen-15 -> gen-95
    result = check(log_dir, signer)
    assert not result.ok
    assert (result.first.kind, result.first.seq, result.first.file) == ("hash_mismatch", 15, SEG2)
    assert "line 5" in result.first.detail


def test_a_deleted_record_is_a_gap(log_dir, signer):
    segment = log_dir / "segments" / SEG2
    content = lines(segment)
    write_lines(segment, content[:4] + content[5:])  # drop seq 15
    result = check(log_dir, signer)
    assert (result.first.kind, result.first.seq, result.first.file) == ("seq_gap", 15, SEG2)
    assert {"segment_range", "checkpoint_root"} <= {p.kind for p in result.problems}


def test_a_swapped_pair_is_a_reorder(log_dir, signer):
    segment = log_dir / "segments" / SEG2
    content = lines(segment)
    content[4], content[5] = content[5], content[4]  # seq 15 and 16
    write_lines(segment, content)
    result = check(log_dir, signer)
    assert (result.first.kind, result.first.seq, result.first.file) == ("reorder", 15, SEG2)


def test_a_rewritten_chain_is_caught_by_the_signed_roots(log_dir, signer):
    """Edit seq 15 and recompute every hash and link after it: only the checkpoints can tell."""
    records = [json.loads(line) for name in (SEG2, SEG3, SEG4) for line in lines(log_dir / "segments" / name)]
    records[4]["tenant"] = "evil"
    for index in range(4, len(records)):
        if index > 0:
            records[index]["prev_hash"] = records[index - 1]["hash"]
        records[index]["hash"] = record_hash(records[index])
    for name, chunk in ((SEG2, records[:10]), (SEG3, records[10:20]), (SEG4, records[20:])):
        write_lines(log_dir / "segments" / name, [canonical_json(r) for r in chunk])
    result = check(log_dir, signer)
    assert {p.kind for p in result.problems} == {"checkpoint_root"}
    assert (result.first.seq, result.first.file) == (20, "000000000020.json")


def test_a_truncated_tail_is_caught_by_the_last_checkpoint(log_dir, signer):
    segment = log_dir / "segments" / SEG4
    write_lines(log_dir / "segments" / "000000000031-000000000033.jsonl", lines(segment)[:3])
    segment.unlink()  # seq 34 and 35 gone, and the file renamed to match
    result = check(log_dir, signer)
    assert [p.kind for p in result.problems] == ["checkpoint_beyond_log"]
    assert (result.first.seq, result.first.file) == (34, "000000000035.json")


def test_a_checkpoint_resigned_with_another_key_is_refused(log_dir, signer):
    path = log_dir / "checkpoints" / "000000000020.json"
    cp = json.loads(path.read_bytes())
    forger = CheckpointSigner(Ed25519PrivateKey.generate())
    path.write_bytes(canonical_json(forger.sign(cp["tree_size"], cp["root_hash"], cp["last_hash"], cp["ts"])))
    result = check(log_dir, signer)
    assert (result.first.kind, result.first.seq, result.first.file) == ("checkpoint_unknown_key", 20, path.name)
    # The same forgery claiming the trusted key's id: the signature does not verify.
    forged = forger.sign(cp["tree_size"], cp["root_hash"], cp["last_hash"], cp["ts"])
    path.write_bytes(canonical_json({**forged, "key_id": signer.key_id}))
    assert check(log_dir, signer).first.kind == "checkpoint_signature"


def test_a_checkpoint_with_an_altered_root_is_refused(log_dir, signer):
    path = log_dir / "checkpoints" / "000000000020.json"
    cp = json.loads(path.read_bytes())
    altered = {**cp, "root_hash": "0" * 64}
    path.write_bytes(canonical_json(altered))
    assert (check(log_dir, signer).first.kind, check(log_dir, signer).first.seq) == ("checkpoint_signature", 20)
    # Signed by the real key (a leaked key, a buggy signer): the root is checked against the records.
    path.write_bytes(canonical_json(signer.sign(20, "0" * 64, cp["last_hash"], cp["ts"])))
    result = check(log_dir, signer)
    assert [(p.kind, p.seq, p.file) for p in result.problems] == [("checkpoint_root", 20, path.name)]


def test_a_missing_middle_segment_is_named(log_dir, signer):
    (log_dir / "segments" / SEG2).unlink()
    result = check(log_dir, signer)
    assert (result.first.kind, result.first.seq, result.first.file) == ("missing_segment", 11, SEG3)
    assert "11..20" in result.first.detail


def test_a_damaged_line_is_malformed_not_a_crash(log_dir, signer):
    segment = log_dir / "segments" / SEG1
    content = lines(segment)
    content[2] = content[2][:-10]  # seq 3 cut short
    write_lines(segment, content)
    result = check(log_dir, signer)
    assert (result.first.kind, result.first.seq, result.first.file) == ("malformed_record", 3, SEG1)


def test_an_empty_directory_is_not_a_valid_log(tmp_path, signer):
    result = verify_log(tmp_path / "nowhere", [signer.public_key])
    assert not result.ok and result.first.kind == "no_log"


def test_a_torn_last_line_is_a_warning_in_an_open_segment_and_a_problem_in_a_sealed_one(log_dir, signer):
    """An open segment (a log on local disk before the registry kept the chains) may end in a
    torn write; the archive's sealed segments are written whole, so there it is damage."""
    torn = b'{"event_id":"abc","generat'
    segment = log_dir / "segments" / SEG4
    segment.write_bytes(segment.read_bytes() + torn)
    result = check(log_dir, signer)
    assert [(p.kind, p.file) for p in result.problems] == [("torn_line", SEG4)]
    segment.rename(log_dir / "segments" / "open-000000000031.jsonl")
    result = check(log_dir, signer)
    assert result.ok and result.records == 35
    assert [(w.kind, w.seq, w.file) for w in result.warnings] == [("torn_tail", 36, "open-000000000031.jsonl")]
