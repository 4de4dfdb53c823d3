"""The audit archive's files: their layout on disk, and reading them.

Owns the directory layout that `archive.py` writes from the registry (one directory per chain),
the shipper copies to S3, `download_log` fetches back and `verify` checks, exactly:

    <dir>/segments/<first_seq:012d>-<last_seq:012d>.jsonl   sealed: written whole, renamed atomically, immutable
    <dir>/checkpoints/<tree_size:012d>.json                 signed tree heads, written atomically, immutable
    <dir>/segments/open-<first_seq:012d>.jsonl              never written by the archive (a log on local
                                                            disk before the registry kept the chains may
                                                            hold one: read and verified, never shipped)

Each line is the canonical JSON of one record (`record.py`) and a newline. `find_records` and
`iter_records` read the files of one directory (a chain's archive, a downloaded copy);
`find_records` is a linear scan, newest segment first. Must never write, rename, lock or delete
anything (`fsync_dir` and `segment_name` are helpers for the writers).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.audit.record import AuditError, canonical_json

SEGMENTS_DIR = "segments"
CHECKPOINTS_DIR = "checkpoints"
OPEN_SEGMENT = re.compile(r"^open-(\d{12})\.jsonl$")
SEALED_SEGMENT = re.compile(r"^(\d{12})-(\d{12})\.jsonl$")
CHECKPOINT_FILE = re.compile(r"^(\d{12})\.json$")
TEMP_PREFIX = ".tmp-"


class LogCorrupt(AuditError):
    """A segment line is not a JSON object; `atelier audit verify` says where the files break."""

    code = "audit_log_corrupt"


@dataclass(frozen=True)
class Segment:
    path: Path
    first_seq: int
    last_seq: int | None  # None while open

    @property
    def sealed(self) -> bool:
        return self.last_seq is not None


def list_segments(directory: Path) -> list[Segment]:
    """Segment files under `<directory>/segments` by first sequence number (other names ignored)."""
    found: list[Segment] = []
    folder = Path(directory) / SEGMENTS_DIR
    if not folder.is_dir():
        return found
    for path in folder.iterdir():
        if match := SEALED_SEGMENT.match(path.name):
            found.append(Segment(path, int(match[1]), int(match[2])))
        elif match := OPEN_SEGMENT.match(path.name):
            found.append(Segment(path, int(match[1]), None))
    found.sort(key=lambda s: (s.first_seq, s.last_seq is None))
    return found


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(tree_size, path) of every checkpoint file, smallest first."""
    folder = Path(directory) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := CHECKPOINT_FILE.match(p.name))]
    return sorted(found)


def segment_name(first_seq: int, last_seq: int | None = None) -> str:
    return f"open-{first_seq:012d}.jsonl" if last_seq is None else f"{first_seq:012d}-{last_seq:012d}.jsonl"


def read_lines(path: Path) -> tuple[list[bytes], bytes]:
    """The complete lines of a segment (without newlines) and the torn rest after the last newline."""
    data = path.read_bytes()
    *lines, rest = data.split(b"\n")
    return lines, rest


def iter_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every complete record, oldest first, parsed but not verified (that is `verify.py`)."""
    for segment in list_segments(directory):
        lines, _ = read_lines(segment.path)
        for number, line in enumerate(lines, 1):
            yield parse_line(line, segment.path, number)


def find_records(directory: Path, field: str, value: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """Records whose top-level `field` equals `value`, in seq order.

    Linear: reads segments newest first and stops once `limit` matches are found. A byte search
    for the canonical JSON of `value` skips most lines without parsing them.
    """
    needle = canonical_json(value)
    matches: list[dict[str, Any]] = []
    for segment in reversed(list_segments(directory)):
        lines, _ = read_lines(segment.path)
        for number in range(len(lines), 0, -1):
            line = lines[number - 1]
            if needle in line:
                record = parse_line(line, segment.path, number)
                if field in record and record[field] == value:
                    matches.append(record)
                    if limit is not None and len(matches) >= limit:
                        return sorted(matches, key=lambda r: r.get("seq", 0))
    return sorted(matches, key=lambda r: r.get("seq", 0))


def parse_line(line: bytes, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        raise LogCorrupt(f"{path.name} line {number} is not JSON") from None
    if not isinstance(record, dict):
        raise LogCorrupt(f"{path.name} line {number} is not a JSON object")
    return record


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
