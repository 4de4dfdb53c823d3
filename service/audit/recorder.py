"""The service's audit recorder: one place that turns requests into durable records.

Owns: opening this process's audit chain in the registry database from the settings (with
its checkpoint signing key, its archive under `ATELIER_AUDIT_DIR/chains` and the WORM shipper
when `ATELIER_AUDIT_S3` is set), appending each event (committed before the caller answers),
healing after a failed commit, and closing everything on shutdown.

While the log cannot write (the database unreachable or refusing writes), every append raises one
typed error, `503 audit_unavailable`, that names no file, path or OS error (those go to the
operator's log); `available()` is what /readyz reports, and it retries the log (at most once
per `heal_interval_s`), as does the next append: once a write succeeds again the log takes
appends by itself, and its first record says how long it was unavailable and how many
appends it refused meanwhile. Must never send a response itself: a failed append raises, and
the caller answers 503.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import logging
from typing import Any

from service.audit.checkpoint import CheckpointSigner
from service.audit.archive import ChainArchive
from service.audit.chain import ChainLog, writer_name
from service.audit.record import AuditError, InvalidEvent, utc_timestamp
from service.config import Settings
from service.errors import AtelierError, ModelLoadError
from service.registry.audit import AuditRecords

log = logging.getLogger("atelier.audit")


def shipper_factory(settings: Settings):
    """(chain directory, log_id) -> an `AuditShipper` to `ATELIER_AUDIT_S3/<log_id>/`, or None
    when no archive bucket is configured. Each chain ships under its own id: every chain numbers
    its records from 1, so a shared prefix would make segment names collide."""
    if not settings.audit_s3:
        return None
    from service.audit.shipper import AuditShipper

    bucket, _, prefix = settings.audit_s3[len("s3://"):].partition("/")
    checked: list[bool] = []

    def make(directory: Path, chain_id: str) -> AuditShipper:
        shipper = AuditShipper(directory, bucket, f"{prefix.strip('/')}/{chain_id}".strip("/"),
                               settings.audit_retention_days, endpoint_url=settings.s3_endpoint_url,
                               region=settings.s3_region)
        if not checked:  # once per process: the bucket's lock and retention settings
            checked.append(True)
            for problem in shipper.check_bucket():
                log.warning("audit bucket problem", extra={"fields": {"problem": problem}})
        return shipper

    return make


class AuditUnavailable(AuditError):
    """What a caller is told while the audit log cannot write: 503, no internals."""

    code = "audit_unavailable"

    def __init__(self, message: str = "the audit log cannot record requests right now, so nothing is done; "
                                      "retry later", **kwargs):
        super().__init__(message, **kwargs)

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class Recorder:
    heal_interval_s = 1.0

    def __init__(self, audit_log: ChainLog, prompts: str, clock=time.monotonic):
        self.log = audit_log
        self.prompts = prompts
        self._clock = clock
        self._heal_lock = threading.Lock()
        self._last_heal = float("-inf")
        self._down_since: str | None = None  # UTC time of the first failure of this outage
        self._down_reason: str | None = None
        self._refused = 0  # appends refused during this outage

    @classmethod
    def from_settings(cls, settings: Settings, db) -> "Recorder":
        """The recorder of this gateway process: its own chain in the registry database `db`
        (a `service.registry.Database`), archived under `ATELIER_AUDIT_DIR/chains` and shipped
        to `ATELIER_AUDIT_S3` when it is set."""
        if not settings.audit_key.is_file():
            raise ModelLoadError(
                f"the audit checkpoint key {str(settings.audit_key)!r} is missing: run `make demo` "
                "(builds a development key) or set ATELIER_AUDIT_KEY"
            )
        store = AuditRecords(db)
        signer = CheckpointSigner.from_pem(settings.audit_key)
        archive = ChainArchive(store, settings.audit_dir, segment_records=settings.audit_segment_records,
                               signer=signer, shipper_for=shipper_factory(settings), archiver=writer_name(),
                               orphan_after_s=settings.audit_orphan_after_s)
        chain = ChainLog(store, signer, checkpoint_every=settings.audit_checkpoint_records,
                         checkpoint_seconds=settings.audit_checkpoint_seconds,
                         heartbeat_s=settings.audit_heartbeat_s, archive=archive)
        return cls(chain, settings.audit_prompts)

    def record(self, event: dict[str, Any], watermarks=()) -> dict[str, Any]:
        """Append and commit (with a generation's watermark index rows, in the same transaction);
        raises `AuditUnavailable` (503) if the record cannot be made durable."""
        if self.log.failed and not self._heal():
            self._refused += 1
            raise AuditUnavailable()
        try:
            return self.log.append(event, watermarks)
        except InvalidEvent:
            log.exception("audit event refused")  # a bug: an event that is not canonical JSON
            raise AtelierError("an unexpected error occurred; it has been logged") from None
        except AuditError as exc:
            self._refused += 1
            if self._down_since is None:
                self._down_since, self._down_reason = utc_timestamp(), self.log.failed or exc.code
                log.error("audit log unavailable", extra={"fields": {"reason": self._down_reason}})
            raise AuditUnavailable() from None

    def refused(self) -> AuditUnavailable:
        """The error for a request refused up front because nothing could be recorded (counted
        in the outage's `audit_resumed` record, like a refused append)."""
        self._refused += 1
        return AuditUnavailable()

    def available(self) -> bool:
        """Whether appends can be made durable now (retries a failed log first): /readyz."""
        return not self.log.failed or self._heal()

    def _heal(self, force: bool = False) -> bool:
        """Retry a failed log (at most once per `heal_interval_s`); True once it writes again."""
        with self._heal_lock:
            if not self.log.failed:
                return True
            now = self._clock()
            if not force and now - self._last_heal < self.heal_interval_s:
                return False
            self._last_heal = now
            if self._down_since is None:
                self._down_since, self._down_reason = utc_timestamp(), self.log.failed
            if not self.log.recover():
                return False
            try:  # a write proves the disk takes records again; it also tells the outage
                self.log.append({"event": "audit_resumed", "unavailable_since": self._down_since,
                                 "reason": self._down_reason, "refused_appends": self._refused})
            except AuditError:
                return False
            log.warning("audit log available again", extra={"fields": {"refused_appends": self._refused}})
            self._down_since, self._down_reason, self._refused = None, None, 0
            return True

    def close(self) -> None:
        """Final checkpoint, end the chain, seal and ship what it holds."""
        self.log.close()
