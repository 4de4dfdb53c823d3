"""The audit record's pieces: canonical records, RFC 6962 Merkle trees, usage counting, the dev
key, and finding records in a directory of archived segment files (written from a registry
chain by ChainArchive). Appending, checkpoints and the chain itself: tests/test_audit_chain.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from builds.audit_key import build_audit_key
from service.audit import merkle
from service.audit.archive import ChainArchive
from service.audit.chain import ChainLog
from service.audit.checkpoint import CheckpointSigner, verify_checkpoint
from service.audit.record import GENESIS_HASH, InvalidEvent, canonical_json, record_hash
from service.audit.segments import find_records, iter_records
from service.audit.usage import aggregate, to_csv, to_json
from service.registry import open_registry
from service.registry.audit import AuditRecords


def event(i: int, **extra) -> dict:
    return {"tenant": "acme", "key_id": "k1", "twin_id": "twin-a", "generation_id": f"gen-{i}", "outcome": "ok",
            "num_images": 1, **extra}


def segment_names(directory: Path) -> list[str]:
    return sorted(p.name for p in (directory / "segments").iterdir())


def archived(tmp_path: Path, events: list[dict], segment_records: int) -> Path:
    """`events` appended to a chain in a fresh SQLite registry, then archived as segment files."""
    registry = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    try:
        store = AuditRecords(registry.db)
        with ChainLog(store, checkpoint_seconds=0, heartbeat_s=3600) as log:
            for item in events:
                log.append(item)
        return ChainArchive(store, tmp_path, segment_records=segment_records).export(log.log_id, tmp_path / "audit")
    finally:
        registry.engine.dispose()


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


# ---- reading archived segment files -------------------------------------------------------------


def test_find_and_iter_read_every_segment_file(tmp_path):
    directory = archived(tmp_path, [event(i) for i in range(7)] + [{"generation_id": "gen-1", "outcome": "delivered"}],
                         segment_records=3)
    assert segment_names(directory) == [
        "000000000001-000000000003.jsonl", "000000000004-000000000006.jsonl", "000000000007-000000000008.jsonl"]
    assert [r["seq"] for r in iter_records(directory)] == list(range(1, 9))
    found = find_records(directory, "generation_id", "gen-1")
    assert [(r["seq"], r["outcome"]) for r in found] == [(2, "ok"), (8, "delivered")]
    assert find_records(directory, "generation_id", "gen-1", limit=1)[0]["seq"] == 8  # newest first
    assert find_records(directory, "generation_id", "gen-99") == []
    assert find_records(directory, "tenant", "gen-1") == []  # the value elsewhere in the line is not a match
    # A directory of the old local-file log may end in an open segment: it is read like the others.
    last = directory / "segments" / "000000000007-000000000008.jsonl"
    last.rename(directory / "segments" / "open-000000000007.jsonl")
    assert [r["seq"] for r in find_records(directory, "generation_id", "gen-1")] == [2, 8]
    assert [r["seq"] for r in iter_records(directory)] == list(range(1, 9))


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
