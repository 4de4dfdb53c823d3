"""The append-only audit log on local disk: one hash-chained JSON line per event, fsynced.

Owns appending and recovering the log, in the directory layout of `segments.py` (one writer per
directory, held by a lock file). `append` writes the
line and fsyncs it before returning (concurrent appenders share one fsync: group commit), so an
event acknowledged to the caller survives a crash. A segment is sealed when it holds
`segment_records` records, on `seal()` and on `close()`. With a signer, a checkpoint
(`checkpoint.py`) is written when the log reaches a multiple of `checkpoint_every` records, every
`checkpoint_seconds` from a timer thread when there is something new (0 disables the timer), and
on `close()`. Without a signer no checkpoints are written: the hash chain alone protects the log.

On open the log recovers: a torn last line of the open segment (a crash mid-write, no newline)
is cut away (logged as a warning, kept in `torn_tail_bytes`); the sequence number and previous
hash come from the tail, and with a signer every record hash is re-read to rebuild the Merkle
frontier (O(records) once per start). Sealed segments must stay on local disk for that: the
shipper copies them, it must not delete them.

`find` and `iter_records` read the files as `segments.py` does (`AuditLog.read_only(dir)` is
its `LogReader`, for reading without a writer). This module also re-exports that module's names,
its public face for callers that know the log as `service.audit.log`.

A failed write or fsync (disk full, file-size limit, I/O error) stops the log: appends are
refused (`failed` says why) until `recover()` succeeds. Recovery cuts the open segment back to
its last fsynced byte (records past it were never acknowledged: their appends raised), then
re-reads the log from disk as at start-up. Nothing acknowledged is ever cut.

Must never: rewrite or delete a record, a sealed segment or a checkpoint; return from `append`
before the record is on stable storage; log the content of an event.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from service.audit.checkpoint import CheckpointSigner
from service.audit.merkle import CompactRange, leaf_hash
from service.audit.record import GENESIS_HASH, AuditError, build_record, canonical_json
from service.audit.segments import (  # noqa: F401  (re-exported: the log's public face)
    CHECKPOINT_FILE,
    CHECKPOINTS_DIR,
    OPEN_SEGMENT,
    SEALED_SEGMENT,
    SEGMENTS_DIR,
    TEMP_PREFIX,
    LogCorrupt,
    LogReader,
    Segment,
    find_records,
    fsync_dir,
    iter_records,
    list_checkpoints,
    list_segments,
    parse_line,
    read_lines,
    segment_name,
)

logger = logging.getLogger("atelier.audit")


class AuditWriteFailed(AuditError):
    """Writing or syncing failed (disk full, I/O error); the log refuses further appends."""

    code = "audit_write_failed"


class AuditLogClosed(AuditError):
    code = "audit_log_closed"


def _lock_directory(directory: Path) -> int:
    """Take an exclusive, non-blocking flock on `<directory>/.writer.lock`.

    Two writers on one log (two replicas sharing a volume, a second process on the same home)
    would interleave seqs and seal each other's segments; the second one is refused instead.
    The lock dies with the process, so a crash leaves nothing to clean up."""
    import fcntl

    fd = os.open(directory / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogCorrupt(f"the audit log {str(directory)!r} is open for writing by another process") from None
    return fd


class AuditLog:
    """Appends events to the hash chain in `directory`; safe to share between threads."""

    def __init__(
        self,
        directory: Path,
        signer: CheckpointSigner | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
        segment_records: int = 10000,
    ):
        if checkpoint_every < 1 or segment_records < 1 or checkpoint_seconds < 0:
            raise ValueError("checkpoint_every and segment_records must be >= 1, checkpoint_seconds >= 0")
        self.directory = Path(directory)
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.segment_records = segment_records
        self.segments_dir = self.directory / SEGMENTS_DIR
        self.checkpoints_dir = self.directory / CHECKPOINTS_DIR
        self.segments_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        self._dir_lock = _lock_directory(self.directory)  # one writer per directory, ever

        self._lock = threading.Lock()  # seq, prev hash, frontier, the open segment
        self._sync_lock = threading.Lock()  # one fsync at a time; the others wait and share it
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_written = threading.Condition()
        self._seq = 0
        self._last_hash = GENESIS_HASH
        self._merkle = CompactRange()
        self._fd: int | None = None
        self._open_path: Path | None = None
        self._segment_first = 0
        self._segment_count = 0
        self._durable = 0  # every record up to this seq is on stable storage
        self._offset = 0  # bytes written to the open segment
        self._durable_offset = 0  # bytes of the open segment known to be on stable storage
        self._failed: str | None = None
        self._closed = False
        self.torn_tail_bytes = 0
        self.last_checkpoint_size = 0
        self.fsyncs = 0  # record fsyncs issued by appends (fewer than appends when threads share them)

        self._recover()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if signer is not None and checkpoint_seconds > 0:
            self._timer = threading.Thread(target=self._run_timer, name="audit-checkpoints", daemon=True)
            self._timer.start()

    # ---- state -------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Records in the log (the seq of the last one)."""
        return self._seq

    @property
    def last_hash(self) -> str:
        return self._last_hash

    @property
    def failed(self) -> str | None:
        """Why appends are refused since a write failure (None while the log can write)."""
        return self._failed

    def root_hash(self) -> str:
        with self._lock:
            return self._merkle.root().hex()

    # ---- appending ---------------------------------------------------------------------------

    def append(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Seal `event` into the next record, write it and fsync it; return the record."""
        with self._lock:
            if self._closed:
                raise AuditLogClosed("the audit log is closed")
            if self._failed:
                raise AuditWriteFailed(f"the audit log stopped after a write failure: {self._failed}")
            seq = self._seq + 1
            record, line = build_record(event, seq, self._last_hash)
            if self._fd is None:
                self._open_segment(seq)
            try:
                written = os.write(self._fd, line)
                while written < len(line):
                    written += os.write(self._fd, line[written:])
            except OSError as exc:
                self._fail(exc)
            self._offset += len(line)
            self._seq = seq
            self._last_hash = record["hash"]
            self._merkle.append(leaf_hash(bytes.fromhex(record["hash"])))
            self._segment_count += 1
            if self._segment_count >= self.segment_records:
                self._seal_locked()
        self._sync_to(seq)
        if self.signer is not None and seq % self.checkpoint_every == 0:
            try:
                self.checkpoint()
            except Exception:  # the record is durable; the timer (or close) writes the checkpoint
                logger.exception("audit checkpoint failed")
        return record

    def _fail(self, exc: OSError) -> None:
        import errno

        self._failed = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        logger.error("audit write failed", extra={"fields": {"error": self._failed}})
        raise AuditWriteFailed(f"cannot write the audit log: {self._failed}") from exc

    def _sync_to(self, seq: int) -> None:
        """Return once record `seq` is durable; one thread fsyncs for all that wrote before it."""
        if self._durable >= seq:
            return
        with self._sync_lock:
            with self._lock:
                if self._durable >= seq:
                    return
                if self._failed or self._fd is None:
                    raise AuditWriteFailed(f"the audit log stopped after a write failure: {self._failed}")
                fd = os.dup(self._fd)  # survives a concurrent seal closing the original
                target, path, offset = self._seq, self._open_path, self._offset
            try:
                os.fsync(fd)
                self.fsyncs += 1
            except OSError as exc:
                with self._lock:
                    self._fail(exc)
            finally:
                os.close(fd)
            with self._lock:
                self._durable = max(self._durable, target)
                if path == self._open_path:
                    self._durable_offset = max(self._durable_offset, offset)

    def _open_segment(self, first_seq: int) -> None:
        path = self.segments_dir / segment_name(first_seq)
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
            fsync_dir(self.segments_dir)
        except FileExistsError:
            raise LogCorrupt(f"{path.name} exists already") from None
        except OSError as exc:
            self._fail(exc)
        self._open_path = path
        self._segment_first = first_seq
        self._segment_count = 0
        self._offset = self._durable_offset = 0

    def _seal_locked(self) -> None:
        """fsync, close and rename the open segment to its sealed name (caller holds the lock)."""
        if self._fd is None:
            return
        assert self._open_path is not None
        if self._segment_count == 0:  # nothing to seal: drop the empty open file
            os.close(self._fd)
            self._open_path.unlink()
            fsync_dir(self.segments_dir)
            self._fd = self._open_path = None
            return
        sealed = self.segments_dir / segment_name(self._segment_first, self._seq)
        if sealed.exists():
            raise LogCorrupt(f"{sealed.name} exists already")
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            os.rename(self._open_path, sealed)
            fsync_dir(self.segments_dir)
        except OSError as exc:
            self._fail(exc)
        self._open_path = None
        self._durable = self._seq
        self._offset = self._durable_offset = 0

    def seal(self) -> None:
        """Seal the open segment now (no-op when it is empty)."""
        with self._lock:
            self._seal_locked()

    # ---- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign and write a checkpoint of the current tree, unless one of this size exists."""
        if self.signer is None:
            return None
        with self._checkpoint_lock:
            with self._lock:
                size, root, last = self._seq, self._merkle.root().hex(), self._last_hash
            if size == 0 or size <= self.last_checkpoint_size:
                return None
            self._sync_to(size)  # a checkpoint never covers a record that is not durable
            cp = self.signer.sign(size, root, last)
            target = self.checkpoints_dir / f"{size:012d}.json"
            temp = self.checkpoints_dir / f"{TEMP_PREFIX}{size:012d}-{uuid.uuid4().hex}.json"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, canonical_json(cp) + b"\n")
                os.fsync(fd)
            except OSError:
                temp.unlink(missing_ok=True)  # never published; a later checkpoint covers it
                raise
            finally:
                os.close(fd)
            if target.exists():
                temp.unlink()
                raise LogCorrupt(f"checkpoint {target.name} exists already")
            os.rename(temp, target)
            fsync_dir(self.checkpoints_dir)
            with self._checkpoint_written:
                self.last_checkpoint_size = size
                self._checkpoint_written.notify_all()
        logger.info("audit checkpoint", extra={"fields": {"tree_size": size, "root_hash": root}})
        return cp

    def wait_for_checkpoint(self, tree_size: int, timeout: float | None = None) -> bool:
        """Block until a checkpoint covering `tree_size` records is written (False on timeout)."""
        with self._checkpoint_written:
            return self._checkpoint_written.wait_for(lambda: self.last_checkpoint_size >= tree_size, timeout)

    def _run_timer(self) -> None:
        while not self._stop.wait(self.checkpoint_seconds):
            try:
                self.checkpoint()
            except Exception:  # keep the timer alive; the next tick tries again
                logger.exception("audit checkpoint failed")

    # ---- healing -----------------------------------------------------------------------------

    def recover(self) -> bool:
        """After a write failure: cut what was never acknowledged, re-read the log from disk
        and take appends again. True when the log can write again (its disk may still be
        full: the next append tells). Never cuts an acknowledged record."""
        with self._sync_lock, self._lock:
            if self._failed is None:
                return True
            if self._closed:
                return False
            try:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                if self._open_path is not None and self._open_path.exists():
                    if self._open_path.stat().st_size > self._durable_offset:
                        fd = os.open(self._open_path, os.O_WRONLY)
                        try:
                            os.ftruncate(fd, self._durable_offset)
                            os.fsync(fd)
                        finally:
                            os.close(fd)
                self._seq, self._last_hash, self._merkle = 0, GENESIS_HASH, CompactRange()
                self._open_path, self._segment_first, self._segment_count = None, 0, 0
                self._offset = self._durable_offset = 0
                self._recover()
            except OSError as exc:
                logger.warning("audit log recovery failed", extra={"fields": {"error": type(exc).__name__}})
                return False
            logger.warning("audit log recovered", extra={"fields": {"after": self._failed, "seq": self._seq}})
            self._failed = None
            return True

    # ---- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse new appends, stop the timer, write a final checkpoint and seal the segment."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        try:
            if not self._failed:
                self.checkpoint()
        finally:
            with self._lock:
                if not self._failed:
                    self._seal_locked()
                elif self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
            os.close(self._dir_lock)  # releases the flock

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- reading -----------------------------------------------------------------------------

    @staticmethod
    def read_only(directory: Path) -> LogReader:
        """A reader for `directory` that does not recover, truncate or append (safe beside a writer)."""
        return LogReader(directory)

    def find(self, field: str, value: Any, limit: int | None = None) -> list[dict[str, Any]]:
        return find_records(self.directory, field, value, limit)

    def iter_records(self) -> Iterator[dict[str, Any]]:
        return iter_records(self.directory)

    # ---- recovery ----------------------------------------------------------------------------

    def _recover(self) -> None:
        for temp in self.checkpoints_dir.glob(TEMP_PREFIX + "*"):
            temp.unlink()  # a checkpoint that a crash left half-written was never published
        segments = list_segments(self.directory)
        opened = [s for s in segments if not s.sealed]
        if len(opened) > 1 or (opened and segments[-1] is not opened[0]):
            raise LogCorrupt(f"open segment(s) {[s.path.name for s in opened]} are not the last segment")
        if opened:
            self._cut_torn_tail(opened[0].path)
        if self.signer is not None:
            self._replay(segments)
        else:
            self._read_tail(segments)
        checkpoints = list_checkpoints(self.directory)
        self.last_checkpoint_size = checkpoints[-1][0] if checkpoints else 0
        if self.last_checkpoint_size > self._seq:
            raise LogCorrupt(
                f"checkpoint {self.last_checkpoint_size} covers more records than the {self._seq} on disk: "
                "records were lost"
            )
        self._durable = self._seq
        if opened:
            segment = opened[0]
            expected_first = self._seq - self._segment_count + 1 if self._segment_count else self._seq + 1
            if segment.first_seq != expected_first:
                raise LogCorrupt(f"{segment.path.name} should start at seq {expected_first}")
            self._fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND)
            self._open_path = segment.path
            self._segment_first = segment.first_seq
            self._offset = self._durable_offset = segment.path.stat().st_size
            if self._segment_count >= self.segment_records:
                self._seal_locked()

    def _cut_torn_tail(self, path: Path) -> None:
        lines, rest = read_lines(path)
        if not rest:
            return
        keep = path.stat().st_size - len(rest)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, keep)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.torn_tail_bytes = len(rest)
        logger.warning(
            "audit log: cut a torn last line left by a crash",
            extra={"fields": {"segment": path.name, "bytes": len(rest), "complete_records": len(lines)}},
        )

    def _adopt(self, record: dict, segment: Segment, number: int) -> None:
        seq, prev = record.get("seq"), record.get("prev_hash")
        if seq != self._seq + 1 or prev != self._last_hash or not isinstance(record.get("hash"), str):
            raise LogCorrupt(f"{segment.path.name} line {number}: the chain breaks at seq {seq}")
        self._seq = seq
        self._last_hash = record["hash"]

    def _replay(self, segments: list[Segment]) -> None:
        """Re-read every record hash: seq, prev hash and the Merkle frontier."""
        for segment in segments:
            lines, _ = read_lines(segment.path)
            for number, line in enumerate(lines, 1):
                record = parse_line(line, segment.path, number)
                self._adopt(record, segment, number)
                self._merkle.append(leaf_hash(bytes.fromhex(record["hash"])))
            self._check_range(segment, len(lines))

    def _read_tail(self, segments: list[Segment]) -> None:
        """Only the last record: enough to continue the chain when no checkpoints are signed."""
        for index in range(len(segments) - 1, -1, -1):
            segment = segments[index]
            lines, _ = read_lines(segment.path)
            if lines:
                record = parse_line(lines[-1], segment.path, len(lines))
                if not isinstance(record.get("seq"), int) or record["seq"] < 1:
                    raise LogCorrupt(f"{segment.path.name} line {len(lines)} has no valid seq")
                self._seq = record["seq"] - 1
                self._last_hash = record.get("prev_hash")
                self._adopt(record, segment, len(lines))
                self._check_range(segment, len(lines))
                return
            if segment.sealed:
                raise LogCorrupt(f"sealed segment {segment.path.name} is empty")
        self._segment_count = 0

    def _check_range(self, segment: Segment, count: int) -> None:
        last = self._seq
        if segment.sealed:
            if (segment.first_seq, segment.last_seq) != (last - count + 1, last) or count == 0:
                raise LogCorrupt(f"{segment.path.name} holds seq {last - count + 1}..{last}")
        self._segment_count = count if not segment.sealed else 0
