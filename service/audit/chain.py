"""The audit log of one gateway process: a hash chain committed to the registry database.

Owns appending: each record is built (`record.py`: seq, ts, prev hash, hash) in this process,
then committed to the registry (`service.registry.audit`) before `append` returns, so an
acknowledged record outlives the pod. Concurrent appenders share one transaction (group
commit: the first waiter commits everything built before it). Every process writes a chain of
its own (`log_id`, 16 hex, new at each start): chains never contend for a sequence, a dead
pod's chain simply ends, and each chain is verified on its own (docs/SCALING.md says why).

With a signer, a checkpoint (signed tree head, `checkpoint.py`) is stored when the chain
reaches a multiple of `checkpoint_every` records, every `checkpoint_seconds` from the
maintenance thread when there is something new, and at close. The same thread beats the
chain's heartbeat (a chain whose heartbeat stops is adopted and archived by another gateway:
`archive.py`) and hands full segments to the archive.

A failed commit (database unreachable, disk full on its server) stops the chain: the append
and every append waiting on that commit raise `AuditWriteFailed` (nothing is acknowledged),
and further appends are refused until `recover()` ends this chain and opens a new one (a
record whose commit failed ambiguously is either in the old chain or nowhere; the new chain
starts clean, so the hash chain never has to be rewound).

Must never: acknowledge a record before its transaction commits; rewrite or delete a record;
log the content of an event.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from service.audit.checkpoint import CheckpointSigner
from service.audit.merkle import CompactRange, leaf_hash
from service.audit.record import GENESIS_HASH, AuditError, build_record, canonical_json
from service.audit.usage import images_in
from service.registry.audit import StoredRecord

logger = logging.getLogger("atelier.audit")


class AuditWriteFailed(AuditError):
    """Committing failed; the chain refuses further appends until it is recovered."""

    code = "audit_write_failed"


class AuditLogClosed(AuditError):
    code = "audit_log_closed"


def writer_name() -> str:
    """Who writes a chain, for operators: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def stored(record: dict[str, Any], line: bytes, log_id: str, watermarks=()) -> StoredRecord:
    """The row of `record` (its canonical line and the fields reports count on)."""
    consent = record.get("consent")
    params = record.get("params")
    version = consent.get("version") if isinstance(consent, dict) else None
    licence = consent.get("licence_id") if isinstance(consent, dict) else None
    use = params.get("use") if isinstance(params, dict) else None
    return StoredRecord(
        log_id=log_id, seq=record["seq"], hash=record["hash"], ts=record["ts"], event=str(record.get("event"))[:64],
        tenant=_short(record.get("tenant")), twin_id=_short(record.get("twin_id")),
        generation_id=_short(record.get("generation_id"), 64), outcome=_short(record.get("outcome"), 16),
        images=images_in(record), use=_short(use, 64),
        consent_version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        licence_id=_short(licence, 40), watermarks=tuple(watermarks),
        line=line.decode("utf-8").rstrip("\n"))


def failure_name(exc: BaseException) -> str:
    """What failed, for the operator and the `audit_resumed` record: the driver's own error name
    (SQLite's `SQLITE_FULL`, PostgreSQL's SQLSTATE), never a path or a message."""
    orig = getattr(exc, "orig", None)
    name = getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None)
    return f"{type(orig or exc).__name__}:{name}" if name else type(orig or exc).__name__


def _short(value: Any, limit: int = 128) -> str | None:
    return value[:limit] if isinstance(value, str) else None


class ChainLog:
    """Appends events to this process's chain in the registry; safe to share between threads."""

    def __init__(self, store, signer: CheckpointSigner | None = None, *, checkpoint_every: int = 1000,
                 checkpoint_seconds: float = 60.0, heartbeat_s: float = 10.0, archive=None,
                 writer: str | None = None):
        if checkpoint_every < 1 or checkpoint_seconds < 0 or heartbeat_s <= 0:
            raise ValueError("checkpoint_every must be >= 1, checkpoint_seconds >= 0, heartbeat_s > 0")
        self.store = store  # service.registry.audit.AuditRecords
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.heartbeat_s = heartbeat_s
        self.archive = archive  # service.audit.archive.ChainArchive, or None
        self.writer = writer or writer_name()
        self._lock = threading.Lock()  # seq, prev hash, frontier, pending rows
        self._commit_lock = threading.Lock()  # one transaction at a time; the others share it
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_written = threading.Condition()
        self._failed: str | None = None
        self._closed = False
        self.commits = 0  # transactions issued by appends (fewer than appends when threads share them)
        self._open_chain()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._maintain, name="audit-chain", daemon=True)
        self._thread.start()

    def _open_chain(self) -> None:
        self.log_id = secrets.token_hex(8)
        self.store.open_chain(self.log_id, self.writer)
        self._seq, self._last_hash, self._merkle = 0, GENESIS_HASH, CompactRange()
        self._pending: list = []
        self._committed = 0
        self.last_checkpoint_size = 0
        self._checkpointed_at = time.monotonic()
        logger.info("audit chain opened", extra={"fields": {"log_id": self.log_id, "writer": self.writer}})

    # ---- state -------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Records appended to this process's current chain (the seq of the last one)."""
        return self._seq

    @property
    def last_hash(self) -> str:
        return self._last_hash

    @property
    def failed(self) -> str | None:
        """Why appends are refused since a failed commit (None while the chain can write)."""
        return self._failed

    def root_hash(self) -> str:
        with self._lock:
            return self._merkle.root().hex()

    # ---- appending ---------------------------------------------------------------------------

    def append(self, event: Mapping[str, Any], watermarks=()) -> dict[str, Any]:
        """Seal `event` into the next record and commit it (with its generation's watermark index
        rows, `(watermark_id, generation_id, tenant_id, twin_id, image_index)` each, in the same
        transaction); return the record."""
        with self._lock:
            if self._closed:
                raise AuditLogClosed("the audit log is closed")
            if self._failed:
                raise AuditWriteFailed(f"the audit log stopped after a failed commit: {self._failed}")
            seq = self._seq + 1
            record, line = build_record(event, seq, self._last_hash)
            self._pending.append(stored(record, line, self.log_id, watermarks))
            self._seq, self._last_hash = seq, record["hash"]
            self._merkle.append(leaf_hash(bytes.fromhex(record["hash"])))
        self._commit_to(seq)
        if self.signer is not None and seq % self.checkpoint_every == 0:
            try:
                self.checkpoint()
            except Exception:  # the record is committed; the maintenance thread (or close) signs
                logger.exception("audit checkpoint failed")
        return record

    def _commit_to(self, seq: int) -> None:
        """Return once record `seq` is committed; one thread commits for all that built before it."""
        if self._committed >= seq:
            return
        with self._commit_lock:
            with self._lock:
                if self._committed >= seq:
                    return
                if self._failed:
                    raise AuditWriteFailed(f"the audit log stopped after a failed commit: {self._failed}")
                batch, self._pending = self._pending, []
            try:
                self.store.commit(self.log_id, batch)
                self.commits += 1
            except Exception as exc:  # noqa: BLE001 - any database failure stops the chain
                with self._lock:
                    self._failed = failure_name(exc)
                logger.error("audit commit failed", extra={"fields": {"error": self._failed, "log_id": self.log_id}})
                raise AuditWriteFailed(f"cannot commit the audit record: {self._failed}") from exc
            with self._lock:
                self._committed = batch[-1].seq

    # ---- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign and store a checkpoint of the committed chain, unless one of this size exists."""
        if self.signer is None:
            return None
        with self._checkpoint_lock:
            with self._lock:
                size, root, last, log_id = self._seq, self._merkle.root().hex(), self._last_hash, self.log_id
            if size == 0 or size <= self.last_checkpoint_size:
                return None
            self._commit_to(size)  # a checkpoint never covers a record that is not committed
            cp = self.signer.sign(size, root, last)
            self.store.add_checkpoint(log_id, size, canonical_json(cp).decode())
            self._checkpointed_at = time.monotonic()
            with self._checkpoint_written:
                self.last_checkpoint_size = size
                self._checkpoint_written.notify_all()
        logger.info("audit checkpoint", extra={"fields": {"log_id": log_id, "tree_size": size, "root_hash": root}})
        return cp

    def wait_for_checkpoint(self, tree_size: int, timeout: float | None = None) -> bool:
        """Block until a checkpoint covering `tree_size` records is stored (False on timeout)."""
        with self._checkpoint_written:
            return self._checkpoint_written.wait_for(lambda: self.last_checkpoint_size >= tree_size, timeout)

    def _maintain(self) -> None:
        """Heartbeat, timed checkpoints and handing sealed ranges to the archive."""
        while not self._stop.wait(self.heartbeat_s):
            try:
                if self._failed:
                    continue
                self.store.heartbeat(self.log_id)
                due = self.checkpoint_seconds and time.monotonic() - self._checkpointed_at >= self.checkpoint_seconds
                if due and self.signer is not None:
                    self.checkpoint()
                if self.archive is not None:
                    self.archive.seal_full(self.log_id, self._committed)
                    self.archive.adopt_orphans()
            except Exception:  # keep the thread alive; the next beat tries again
                logger.exception("audit chain maintenance failed")

    # ---- healing -----------------------------------------------------------------------------

    def recover(self) -> bool:
        """After a failed commit: end the broken chain and open a new one. True when the
        database takes writes again (the caller's next append proves it)."""
        with self._commit_lock, self._lock:
            if self._failed is None:
                return True
            if self._closed:
                return False
            old = self.log_id
            try:
                self.store.end_chain(old)  # the archive seals and checkpoints what it holds
                self._open_chain()
            except Exception as exc:  # noqa: BLE001 - still unreachable
                logger.warning("audit chain recovery failed", extra={"fields": {"error": type(exc).__name__}})
                return False
            logger.warning("audit chain replaced after a failed commit",
                           extra={"fields": {"after": self._failed, "ended": old, "log_id": self.log_id}})
            self._failed = None
            return True

    # ---- lifecycle ---------------------------------------------------------------------------

    def seal(self) -> None:
        """Archive what the chain holds now (a segment may end short of `segment_records`)."""
        if self.archive is not None:
            self.archive.seal_all(self.log_id, self._committed)

    def close(self) -> None:
        """Refuse new appends, stop the thread, store a final checkpoint, end and archive the chain."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._thread.join(timeout=30)
        if self._failed:
            return
        try:
            self.checkpoint()
            self.store.end_chain(self.log_id)
            self.seal()
        except Exception:  # the chain is committed; another gateway adopts and archives it
            logger.exception("audit chain close failed", extra={"fields": {"log_id": self.log_id}})

    def __enter__(self) -> "ChainLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
