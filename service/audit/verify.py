"""Offline verification of an audit log directory (local, or files downloaded from S3).

Owns: recomputing every record hash, every `prev_hash` link, seq continuity (gaps, reorders,
duplicates, missing segment files), and every checkpoint: its Ed25519 signature against the
trusted keys, its Merkle root and last hash against the records present, and whether it covers
records that are no longer there (a truncated tail). Every problem names its kind, seq and file;
`VerifyResult.first` is the earliest broken spot. Must never modify, repair or create a file.

Limits: records after the newest checkpoint are protected by the hash chain alone; cutting them
off leaves a shorter valid log, detectable only against a checkpoint kept elsewhere (S3).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.audit.checkpoint import CheckpointError, verify_checkpoint
from service.audit.merkle import CompactRange, leaf_hash
from service.audit.record import GENESIS_HASH, InvalidEvent, canonical_json, record_hash
from service.audit.segments import (
    CHECKPOINT_FILE,
    CHECKPOINTS_DIR,
    OPEN_SEGMENT,
    SEALED_SEGMENT,
    SEGMENTS_DIR,
    TEMP_PREFIX,
    Segment,
    list_checkpoints,
    list_segments,
    read_lines,
)


@dataclass(frozen=True)
class Problem:
    kind: str
    seq: int | None
    file: str | None
    detail: str

    def __str__(self) -> str:
        where = " ".join(part for part in (f"seq {self.seq}" if self.seq else "", self.file or "") if part)
        return f"{self.kind} ({where}): {self.detail}" if where else f"{self.kind}: {self.detail}"


@dataclass
class VerifyResult:
    ok: bool
    records: int
    checkpoints: int
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    unanchored: int = 0  # records after the newest checkpoint

    @property
    def first(self) -> Problem | None:
        """The problem at the lowest seq (problems without a seq come last)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq or 0))


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class _Chain:
    """Walks the records in file order and collects problems."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.expected = 1
        self.prev_hash = GENESIS_HASH
        self.link_known = True  # False after a gap: the next link cannot be checked
        self.seen: set[int] = set()
        self.leaves: list[bytes] = []

    def problem(self, kind: str, seq: int | None, file: str | None, detail: str) -> None:
        self.problems.append(Problem(kind, seq, file, detail))

    def enter(self, segment: Segment, previous: Segment | None) -> None:
        name = segment.path.name
        if segment.first_seq > self.expected:
            if previous is not None and previous.sealed and previous.last_seq >= self.expected:
                self.problem(
                    "seq_gap", self.expected, previous.path.name,
                    f"records {self.expected}..{previous.last_seq} are missing from the end of the file",
                )
            else:
                self.problem(
                    "missing_segment", self.expected, name,
                    f"no segment file holds records {self.expected}..{segment.first_seq - 1} (before {name})",
                )
            self.expected = segment.first_seq
            self.link_known = False
        elif segment.first_seq < self.expected:
            self.problem(
                "segment_overlap", segment.first_seq, name,
                f"starts at seq {segment.first_seq}, but records up to {self.expected - 1} came before it",
            )

    def segment(self, segment: Segment, is_last: bool) -> None:
        name = segment.path.name
        lines, rest = read_lines(segment.path)
        if rest:
            if not segment.sealed and is_last:
                self.warnings.append(Problem(
                    "torn_tail", self.expected + len(lines), name,
                    f"{len(rest)} bytes without a newline at the end (a crash or a write in progress)",
                ))
            else:
                self.problem("torn_line", None, name, f"{len(rest)} bytes after the last newline of a closed file")
        parsed: list[tuple[int, bytes, dict | None]] = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            parsed.append((number, line, record if isinstance(record, dict) else None))
        seqs_here = {r.get("seq") for _, _, r in parsed if r is not None}
        first_seq = last_seq = None
        for number, line, record in parsed:
            seq = self._line(name, number, line, record, seqs_here)
            if seq is not None:
                first_seq = seq if first_seq is None else first_seq
                last_seq = seq
        if segment.sealed:
            count = len(lines)
            want = segment.last_seq - segment.first_seq + 1
            if (first_seq, last_seq, count) != (segment.first_seq, segment.last_seq, want):
                self.problem(
                    "segment_range", None, name,
                    f"the name promises seq {segment.first_seq}..{segment.last_seq} ({want} records); "
                    f"the file holds {count} lines, seq {first_seq}..{last_seq}",
                )
        elif first_seq is not None and first_seq != segment.first_seq:
            self.problem("segment_range", None, name, f"the name says seq {segment.first_seq}, the first record is {first_seq}")

    def _line(self, name: str, number: int, line: bytes, record: dict | None, seqs_here: set) -> int | None:
        where = f"line {number}"
        seq = record.get("seq") if record is not None else None
        if record is None or not isinstance(seq, int) or isinstance(seq, bool) or not _is_hash(record.get("hash")):
            self.problem("malformed_record", self.expected, name, f"{where} is not a record (JSON object with seq and hash)")
            self.expected += 1
            self.link_known = False
            return None
        stored = record["hash"]
        try:
            actual = record_hash(record)
            canonical = canonical_json(record)
        except InvalidEvent as exc:
            actual, canonical = None, None
            self.problem("malformed_record", seq, name, f"{where}: {exc}")
        if actual is not None and actual != stored:
            self.problem("hash_mismatch", seq, name, f"{where}: the content hashes to {actual[:16]}…, the record says {stored[:16]}…")
        elif canonical is not None and canonical != line:
            self.problem("not_canonical", seq, name, f"{where}: the bytes are not the canonical JSON of the record")
        if seq != self.expected:
            if seq in self.seen:
                self.problem("duplicate_seq", seq, name, f"{where}: seq {seq} appears a second time")
            elif seq > self.expected and self.expected not in seqs_here:
                self.problem("seq_gap", self.expected, name, f"{where}: seq {seq} follows {self.expected - 1}; records {self.expected}..{seq - 1} are missing")
            else:
                self.problem("reorder", min(seq, self.expected), name, f"{where}: seq {seq} where seq {self.expected} belongs")
            self.link_known = False
        elif self.link_known and record.get("prev_hash") != self.prev_hash:
            self.problem("broken_link", seq, name, f"{where}: prev_hash does not match the hash of the record before it")
        self.seen.add(seq)
        self.expected = max(self.expected, seq + 1)
        self.prev_hash = stored
        self.link_known = True
        self.leaves.append(bytes.fromhex(stored))
        return seq


def _check_checkpoints(directory: Path, leaves: list[bytes], keys: list, chain: _Chain) -> tuple[int, int]:
    """Check every checkpoint against signatures and the records; return (count, newest valid size)."""
    entries = list_checkpoints(directory)
    folder = Path(directory) / CHECKPOINTS_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            if not CHECKPOINT_FILE.match(path.name) and not path.name.startswith(TEMP_PREFIX):
                chain.warnings.append(Problem("unknown_file", None, path.name, "not a checkpoint name; ignored"))
    checked: list[tuple[int, str, dict]] = []
    for size, path in entries:
        name = path.name
        try:
            cp = json.loads(path.read_bytes())
            verify_checkpoint(cp, keys)
        except ValueError as exc:
            kind = exc.kind if isinstance(exc, CheckpointError) else "checkpoint_malformed"
            chain.problem(kind, size, name, str(exc))
            continue
        if cp["tree_size"] != size:
            chain.problem("checkpoint_malformed", size, name, f"the file name says {size}, the content {cp['tree_size']}")
            continue
        checked.append((size, name, cp))
    newest = 0
    merkle = CompactRange()
    present = len(leaves)
    for size, name, cp in checked:  # sizes ascending: one pass over the leaves
        if size > present:
            chain.problem(
                "checkpoint_beyond_log", present + 1, name,
                f"the checkpoint covers {size} records, the log holds {present}: records {present + 1}..{size} are gone",
            )
            continue
        while merkle.size < size:
            merkle.append(leaf_hash(leaves[merkle.size]))
        if merkle.root().hex() != cp["root_hash"]:
            chain.problem("checkpoint_root", size, name, "the signed Merkle root does not match the records 1..{size}".format(size=size))
        elif leaves[size - 1].hex() != cp["last_hash"]:
            chain.problem("checkpoint_last_hash", size, name, f"the signed last_hash is not the hash of record {size}")
        else:
            newest = max(newest, size)
    return len(entries), newest


def verify_log(directory: Path, public_keys: Iterable = ()) -> VerifyResult:
    """Verify the log under `directory` against the trusted Ed25519 `public_keys` (keys, PEM bytes or paths)."""
    directory = Path(directory)
    keys = list(public_keys)
    chain = _Chain()
    if not (directory / SEGMENTS_DIR).is_dir():
        chain.problem("no_log", None, str(directory), f"no {SEGMENTS_DIR}/ folder here")
        return VerifyResult(False, 0, 0, chain.problems)
    for path in (directory / SEGMENTS_DIR).iterdir():
        if not (SEALED_SEGMENT.match(path.name) or OPEN_SEGMENT.match(path.name)):
            chain.warnings.append(Problem("unknown_file", None, path.name, "not a segment name; ignored"))
    segments = list_segments(directory)
    opened = [s for s in segments if not s.sealed]
    if len(opened) > 1 or (opened and segments[-1] is not opened[0]):
        chain.problem("open_segment_not_last", None, opened[0].path.name, "an open segment must be the newest and only one")
    previous = None
    for index, segment in enumerate(segments):
        chain.enter(segment, previous)
        chain.segment(segment, index == len(segments) - 1)
        previous = segment
    count, newest = _check_checkpoints(directory, chain.leaves, keys, chain)
    records = len(chain.leaves)
    return VerifyResult(
        ok=not chain.problems,
        records=records,
        checkpoints=count,
        problems=chain.problems,
        warnings=chain.warnings,
        unanchored=max(0, records - newest),
    )
