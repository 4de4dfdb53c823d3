"""The service's audit recorder: one place that turns requests into durable records.

Owns: opening the audit log from the settings (with its checkpoint signing key), the WORM
shipper when `ATELIER_AUDIT_S3` is set, appending each event (fsync'ed before the caller
answers), healing after a write failure, and closing everything on shutdown.

While the log cannot write (disk full, file-size limit, I/O error), every append raises one
typed error, `503 audit_unavailable`, that names no file, path or OS error (those go to the
operator's log); `available()` is what /readyz reports, and it retries the log (at most once
per `heal_interval_s`), as does the next append: once a write succeeds again the log takes
appends by itself, and its first record says how long it was unavailable and how many
appends it refused meanwhile. Must never send a response itself: a failed append raises, and
the caller answers 503.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import logging
from typing import Any

from service.audit.checkpoint import CheckpointSigner
from service.audit.log import AuditLog
from service.audit.record import AuditError, InvalidEvent, utc_timestamp
from service.config import Settings
from service.errors import AtelierError, ModelLoadError

log = logging.getLogger("atelier.audit")


LOG_ID_FILE = "log_id"


def log_id(audit_dir: Path) -> str:
    """This audit log's id (16 hex characters, created with the log, kept with it)."""
    path = Path(audit_dir) / LOG_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_suffix(f".{secrets.token_hex(4)}")
        candidate.write_text(secrets.token_hex(8) + "\n")
        try:
            os.link(candidate, path)  # first writer wins, atomically
        except FileExistsError:
            pass
        finally:
            candidate.unlink(missing_ok=True)
        return path.read_text().strip()


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

    def __init__(self, audit_log: AuditLog, prompts: str, shipper=None, clock=time.monotonic):
        self.log = audit_log
        self.prompts = prompts
        self.shipper = shipper
        self._clock = clock
        self._heal_lock = threading.Lock()
        self._last_heal = float("-inf")
        self._down_since: str | None = None  # UTC time of the first failure of this outage
        self._down_reason: str | None = None
        self._refused = 0  # appends refused during this outage

    @classmethod
    def from_settings(cls, settings: Settings) -> "Recorder":
        if not settings.audit_key.is_file():
            raise ModelLoadError(
                f"the audit checkpoint key {str(settings.audit_key)!r} is missing: run `make demo` "
                "(builds a development key) or set ATELIER_AUDIT_KEY"
            )
        audit_log = AuditLog(
            settings.audit_dir,
            signer=CheckpointSigner.from_pem(settings.audit_key),
            checkpoint_every=settings.audit_checkpoint_records,
            checkpoint_seconds=settings.audit_checkpoint_seconds,
            segment_records=settings.audit_segment_records,
        )
        shipper = None
        if settings.audit_s3:
            from service.audit.shipper import AuditShipper

            bucket, _, prefix = settings.audit_s3[len("s3://") :].partition("/")
            # Each log ships under its own id: replicas (and a replica's successor on a fresh
            # disk) number segments from 1, so a shared prefix would make their names collide.
            prefix = f"{prefix.strip('/')}/{log_id(settings.audit_dir)}".strip("/")
            shipper = AuditShipper(settings.audit_dir, bucket, prefix, settings.audit_retention_days,
                                   endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
            for problem in shipper.check_bucket():
                log.warning("audit bucket problem", extra={"fields": {"problem": problem}})
            shipper.start()
        return cls(audit_log, settings.audit_prompts, shipper)

    def record(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append and fsync; raises `AuditUnavailable` (503) if the record cannot be made durable."""
        if self.log.failed and not self._heal():
            self._refused += 1
            raise AuditUnavailable()
        try:
            return self.log.append(event)
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
        """Final checkpoint, seal the open segment, and ship what is sealed."""
        self.log.close()
        if self.shipper is not None:
            self.shipper.stop(flush=True)
