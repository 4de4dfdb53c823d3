"""The service's audit recorder: one place that turns requests into durable records.

Owns: opening the audit log from the settings (with its checkpoint signing key), the WORM
shipper when `ATELIER_AUDIT_S3` is set, appending each event (fsync'ed before the caller
answers), the generation lookup used by /v1/verify, and closing everything on shutdown.
Must never send a response itself: a failed append raises, and the caller answers 503.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import logging
from typing import Any

from service.audit.checkpoint import CheckpointSigner
from service.audit.log import AuditLog
from service.config import Settings
from service.errors import ModelLoadError

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


class Recorder:
    def __init__(self, audit_log: AuditLog, prompts: str, shipper=None):
        self.log = audit_log
        self.prompts = prompts
        self.shipper = shipper

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
        """Append and fsync; raises (AuditError: 503) if the record cannot be made durable."""
        return self.log.append(event)

    def generation_summary(self, generation_id: str | None) -> dict[str, Any] | None:
        """The generation record behind a generation id, in brief (for /v1/verify)."""
        if not generation_id:
            return None
        for record in self.log.find("generation_id", generation_id):
            if record.get("event") == "generation":
                return {
                    "seq": record["seq"],
                    "event_id": record["event_id"],
                    "ts": record["ts"],
                    "generation_id": generation_id,
                    "twin_id": record.get("twin_id"),
                    "tenant": record.get("tenant"),
                    "outcome": record.get("outcome"),
                    "images": len(record.get("images") or []),
                    "hash": record["hash"],
                }
        return None

    def close(self) -> None:
        """Final checkpoint, seal the open segment, and ship what is sealed."""
        self.log.close()
        if self.shipper is not None:
            self.shipper.stop(flush=True)
