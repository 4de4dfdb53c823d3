"""Sealed segments of the fleet's audit chains: written from the registry, shipped under Object Lock.

Owns: turning committed ranges of a chain (`service.registry.audit`) into the segment and
checkpoint files of `segments.py`'s layout under `<audit_dir>/chains/<log_id>/` (the staging
copy the shipper reads: a pod's disk, rebuilt from the database whenever it is lost), the
shipping of each chain under `<prefix>/<log_id>/` (`shipper.AuditShipper`, one per chain
directory), and adopting chains whose writer died: a gateway that finds a chain silent for
`orphan_after` takes a lease on it, ends it, signs a final checkpoint over every record the
database holds (the same key signs for every gateway), seals the rest and ships it. So a lost
node loses no record of the archive either.

Segments hold `segment_records` records each, counted from seq 1; a chain's last segment may
be shorter (sealed when the chain ends). A segment file is written whole (temporary file,
fsync, rename): its bytes are the stored lines, each followed by a newline, so writing it
again after a crash gives the same bytes (the shipper recognises an object it already holds).

`export(log_id, dest)` writes a whole chain (every record and checkpoint) to a directory, for
`atelier audit verify` over the database.

Must never write a record or change one; delete a segment or checkpoint; ship a checkpoint
before the segments holding its records (the shipper's order).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

from service.audit.checkpoint import CheckpointSigner
from service.audit.merkle import CompactRange, leaf_hash
from service.audit.record import canonical_json
from service.audit.segments import CHECKPOINTS_DIR, SEGMENTS_DIR, fsync_dir, segment_name
from service.files import atomic_write

log = logging.getLogger("atelier.audit")

CHAINS_DIR = "chains"


def write_file(directory: Path, name: str, data: bytes) -> bool:
    """Write `name` atomically and durably (`service.files.atomic_write`, then the directory
    entry synced); False when a file of that name already holds these bytes."""
    target = directory / name
    if target.exists():
        if target.read_bytes() == data:
            return False
        raise FileExistsError(f"{target} exists with other bytes")
    atomic_write(target, data)
    fsync_dir(directory)
    return True


class ChainArchive:
    def __init__(self, store, directory: Path, *, segment_records: int = 10000,
                 signer: CheckpointSigner | None = None, shipper_for=None, archiver: str = "?",
                 orphan_after_s: float = 60.0):
        if segment_records < 1:
            raise ValueError("segment_records must be >= 1")
        self.store = store  # service.registry.audit.AuditRecords
        self.directory = Path(directory) / CHAINS_DIR
        self.segment_records = segment_records
        self.signer = signer
        self.shipper_for = shipper_for  # (chain directory, log_id) -> AuditShipper, or None
        self.archiver = archiver
        self.orphan_after = timedelta(seconds=orphan_after_s)
        self._shippers: dict[str, object] = {}
        self._lock = threading.Lock()  # one sealing pass at a time in this process

    def chain_dir(self, log_id: str) -> Path:
        return self.directory / log_id

    # ---- sealing ---------------------------------------------------------------------------------

    def seal_full(self, log_id: str, committed: int) -> int:
        """Seal every full segment of a live chain up to `committed` records; ship what is sealed."""
        return self._seal(log_id, committed, whole=False)

    def seal_all(self, log_id: str, committed: int | None = None, from_start: bool = False) -> int:
        """Seal everything the chain holds (its last segment may be short): at its end. With
        `from_start`, every segment from record 1 is written here again, those another process
        sealed too (an adopted chain: its writer may have sealed a segment and died before
        shipping it, and a checkpoint ships only after the segments from record 1 it covers);
        the shipper verifies an object already in the bucket instead of writing it twice."""
        return self._seal(log_id, committed, whole=True, from_start=from_start)

    def _seal(self, log_id: str, committed: int | None, whole: bool, from_start: bool = False) -> int:
        with self._lock:
            chain = self.store.chain(log_id)
            if chain is None:
                return 0
            size = chain.size if committed is None else min(committed, chain.size)
            archived = 0 if from_start else chain.archived
            directory = self.chain_dir(log_id)
            sealed = 0
            while archived < size:
                last = min(size, archived + self.segment_records)
                if last - archived < self.segment_records and not whole:
                    break
                data = b"".join(line.encode("utf-8") + b"\n" for line in self.store.lines(log_id, archived + 1, last))
                write_file(directory / SEGMENTS_DIR, segment_name(archived + 1, last), data)
                self.store.set_archived(log_id, last)
                archived, sealed = last, sealed + 1
            for tree_size, body in self.store.checkpoints(log_id):
                if tree_size <= archived:
                    write_file(directory / CHECKPOINTS_DIR, f"{tree_size:012d}.json", body.encode() + b"\n")
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "log_id").write_text(log_id + "\n")
        self.ship(log_id)
        return sealed

    def ship(self, log_id: str) -> None:
        """Ship the chain's sealed files (a failure waits for the next pass: files stay pending)."""
        if self.shipper_for is None:
            return
        shipper = self._shippers.get(log_id)
        if shipper is None:
            shipper = self._shippers[log_id] = self.shipper_for(self.chain_dir(log_id), log_id)
        report = shipper.ship_once()
        if report.error:
            log.warning("audit shipping failed; retried on the next pass",
                        extra={"fields": {"log_id": log_id, "error": report.error}})

    def ship_pending(self) -> None:
        """Retry shipping every chain this process has sealed files of."""
        if self.directory.is_dir():
            for path in sorted(self.directory.iterdir()):
                if path.is_dir():
                    self.ship(path.name)

    # ---- chains whose writer is gone -------------------------------------------------------------

    def adopt_orphans(self) -> list[str]:
        """End, checkpoint, seal and ship every chain whose writer ended it or went silent and
        whose records are not all sealed; one gateway at a time per chain (a lease)."""
        adopted = []
        for chain in self.store.unarchived(self.store.db.now() - self.orphan_after):
            if not self.store.claim_orphan(chain.log_id, self.archiver, self.orphan_after, self.orphan_after * 2):
                continue
            chain = self.store.end_chain(chain.log_id)
            self.final_checkpoint(chain.log_id, chain.size)
            self.seal_all(chain.log_id, from_start=True)
            adopted.append(chain.log_id)
            log.warning("adopted the audit chain of a gone writer",
                        extra={"fields": {"log_id": chain.log_id, "writer": chain.writer, "size": chain.size}})
        return adopted

    def final_checkpoint(self, log_id: str, size: int) -> dict | None:
        """Sign a checkpoint over the chain's `size` stored records unless one exists."""
        if self.signer is None or size == 0:
            return None
        if any(tree_size == size for tree_size, _ in self.store.checkpoints(log_id)):
            return None
        hashes = self.store.hashes(log_id, size)
        tree = CompactRange()
        for value in hashes:
            tree.append(leaf_hash(bytes.fromhex(value)))
        cp = self.signer.sign(len(hashes), tree.root().hex(), hashes[-1])
        self.store.add_checkpoint(log_id, len(hashes), canonical_json(cp).decode())
        return cp

    # ---- a whole chain, for verification ---------------------------------------------------------

    def export(self, log_id: str, dest: Path) -> Path:
        """Write every record and checkpoint of the chain to `dest` in the segments layout."""
        chain = self.store.chain(log_id)
        first = 1
        while chain is not None and first <= chain.size:
            last = min(chain.size, first + self.segment_records - 1)
            data = b"".join(line.encode("utf-8") + b"\n" for line in self.store.lines(log_id, first, last))
            write_file(dest / SEGMENTS_DIR, segment_name(first, last), data)
            first = last + 1
        (dest / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
        (dest / SEGMENTS_DIR).mkdir(parents=True, exist_ok=True)
        for tree_size, body in self.store.checkpoints(log_id):
            write_file(dest / CHECKPOINTS_DIR, f"{tree_size:012d}.json", body.encode() + b"\n")
        return dest
