"""Ships the audit log's sealed files to an S3 bucket with Object Lock, and fetches them back.

Owns: the remote layout (`<prefix>/segments/<name>`, `<prefix>/checkpoints/<name>`), the upload
order (sealed segments by first seq; a checkpoint of tree size N right after the segment that
holds its N-th record, and only once sealed segments hold all N), the upload itself (one PUT with
COMPLIANCE retention until now + retention_days, an x-amz-checksum-sha256 the server checks, and
the file's sha256 in metadata), the verification that follows (HEAD: size, sha256, lock mode and
retain-until date where the server reports them), the append-only, fsync'ed `shipped.log` in the
audit directory, the background loop with exponential backoff and jitter, `check_bucket` and
`download_log`.

Idempotency: before a PUT the shipper HEADs the key. An object that already holds the same
bytes (same sha256) is verified and recorded without a second PUT (the crash-between-upload-and-
record case); an object with other bytes stops the pass with an error and is never overwritten.

Must never: ship an open segment (`segments/open-*.jsonl`); delete, rewrite or move any local
file (local copies are the first copy; pruning is a separate operator action, not done here);
drop a file after a failure (it stays pending and is retried); create a bucket or change a
bucket's versioning, lock or retention settings; put credentials in an error or a log line
(network failures are reported by exception class name); wait minutes on a dead endpoint.
One shipper per audit directory (threads inside one process are serialised by a lock).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from service.audit.segments import fsync_dir
from service.s3client import make_client, public_endpoint

log = logging.getLogger("atelier.audit")

# A dead endpoint fails within seconds; the backoff loop, not botocore, does the waiting.
READ_TIMEOUT_S = 10  # connect timeout and attempts: service.s3client

SHIPPED_LOG = "shipped.log"
LOCK_MODE = "COMPLIANCE"
SEALED_SEGMENT = re.compile(r"^(\d{12,})-(\d{12,})\.jsonl$")
OPEN_SEGMENT = re.compile(r"^open-(\d{12,})\.jsonl$")
CHECKPOINT = re.compile(r"^(\d{12,})\.json$")
FIRST_SEQ = 1  # the log's first record, when no segment says otherwise
# The server may store the retain-until date to the second.
RETENTION_SLACK = timedelta(seconds=1)


class AuditShipError(Exception):
    """A shipping, checking or download step failed; the message never carries credentials."""


@dataclass
class ShipReport:
    """One pass: what was shipped now, what is still waiting (sealed files only), and why not."""

    shipped: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _LocalFile:
    name: str  # "segments/<file>" or "checkpoints/<file>": the shipped.log entry and key suffix
    path: Path


def _clean_prefix(prefix: str | None) -> str:
    return "/".join(part for part in (prefix or "").split("/") if part)


def _error_code(exc) -> tuple[str, int | None]:
    return (exc.response.get("Error", {}).get("Code") or "unknown",
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _describe_failure(exc: BaseException, action: str) -> str:
    """Only the S3 error code and status, or the exception's class name: a message may echo
    request details (signatures, headers), so it is never included."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code, status = _error_code(exc)
        return f"{action}: S3 error {code} (HTTP {status})"
    return f"{action}: {type(exc).__name__}"


def _is_not_found(exc) -> bool:
    code, status = _error_code(exc)
    return code in ("404", "NoSuchKey", "NotFound") or status == 404


def _sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def ship_plan(directory: Path, shipped: set[str]) -> tuple[list[_LocalFile], list[str]]:
    """(files to ship now in order, checkpoints held back because their records are not sealed).

    A checkpoint of tree size N covers the first N records, seqs base..base+N-1 (the log numbers
    records from 1; the base is the lowest first seq of any segment known, open, sealed or
    already shipped). It goes right after the sealed segment holding its last seq, and waits
    while that seq is still in the open segment (or not written yet)."""
    segments_dir, checkpoints_dir = directory / "segments", directory / "checkpoints"
    segments: list[tuple[int, int, str]] = []
    firsts: list[int] = []
    if segments_dir.is_dir():
        for path in segments_dir.iterdir():
            match = SEALED_SEGMENT.match(path.name)
            if match and path.is_file():
                segments.append((int(match[1]), int(match[2]), path.name))
            elif (match := OPEN_SEGMENT.match(path.name)):
                firsts.append(int(match[1]))
    segments.sort()
    # Segments already shipped (and perhaps pruned locally since) hold their seqs too.
    ranges = [(first, last) for first, last, _ in segments]
    for name in shipped:
        match = SEALED_SEGMENT.match(name.rpartition("/")[2]) if name.startswith("segments/") else None
        if match:
            ranges.append((int(match[1]), int(match[2])))
    ranges.sort()
    base = min([*firsts, *(first for first, _ in ranges)], default=FIRST_SEQ)
    covered_to = base - 1  # the last seq held by sealed segments without a gap from the base
    for first, last in ranges:
        if first > covered_to + 1:
            break
        covered_to = max(covered_to, last)
    checkpoints: list[tuple[int, str]] = []
    if checkpoints_dir.is_dir():
        for path in checkpoints_dir.iterdir():
            match = CHECKPOINT.match(path.name)
            if match and path.is_file():
                checkpoints.append((base + int(match[1]) - 1, path.name))  # (last seq covered, name)
    checkpoints.sort()

    ready = [(last, name) for last, name in checkpoints if last <= covered_to]
    held = [f"checkpoints/{name}" for last, name in checkpoints if last > covered_to]
    plan: list[_LocalFile] = []
    position = 0
    for first, _last, name in segments:
        while position < len(ready) and ready[position][0] < first:
            plan.append(_LocalFile(f"checkpoints/{ready[position][1]}", checkpoints_dir / ready[position][1]))
            position += 1
        plan.append(_LocalFile(f"segments/{name}", segments_dir / name))
    for _last, name in ready[position:]:
        plan.append(_LocalFile(f"checkpoints/{name}", checkpoints_dir / name))
    return [item for item in plan if item.name not in shipped], [name for name in held if name not in shipped]


class AuditShipper:
    """Copies sealed audit segments and checkpoints to `s3://bucket/prefix/` under Object Lock."""

    def __init__(self, directory: Path, bucket: str, prefix: str, retention_days: int, client=None,
                 endpoint_url: str | None = None, region: str | None = None,
                 backoff_initial: float = 1.0, backoff_max: float = 300.0):
        if not bucket or "/" in bucket:
            raise ValueError(f"S3 bucket name must be non-empty and contain no '/', got {bucket!r}")
        if retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {retention_days}")
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("backoff needs 0 < backoff_initial <= backoff_max")
        self.directory = Path(directory)
        self.bucket = bucket
        self.prefix = _clean_prefix(prefix)
        self.retention_days = retention_days
        self.endpoint = public_endpoint(endpoint_url)
        self.client = client if client is not None else make_client(endpoint_url, region, READ_TIMEOUT_S)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._lock = threading.Lock()  # one pass at a time, whoever calls
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # consecutive failed passes of the background loop
        self.last_report: ShipReport | None = None

    # -- naming ---------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    # -- shipped.log ----------------------------------------------------------------------
    @property
    def shipped_log(self) -> Path:
        return self.directory / SHIPPED_LOG

    def shipped(self) -> set[str]:
        """Names recorded as shipped; a torn last line (a crash mid-append) counts as absent."""
        try:
            text = self.shipped_log.read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        lines = text.split("\n")
        return {line for line in lines[:-1] if line}  # the part after the last newline is torn

    def _record(self, name: str) -> None:
        created = not self.shipped_log.exists()
        with open(self.shipped_log, "ab") as handle:
            if handle.tell() > 0:
                with open(self.shipped_log, "rb") as reader:
                    reader.seek(-1, os.SEEK_END)
                    if reader.read(1) != b"\n":
                        handle.write(b"\n")  # end a torn line rather than extend it
            handle.write(name.encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        if created:
            fsync_dir(self.directory)

    # -- one pass -------------------------------------------------------------------------
    def ship_once(self) -> ShipReport:
        """Upload, verify and record every sealed file not yet shipped, in order. Stops at the
        first failure (later files wait, so the remote copy never has a gap before a file)."""
        with self._lock:
            report = self._ship_pass()
        self.last_report = report
        return report

    def _ship_pass(self) -> ShipReport:
        from botocore.exceptions import BotoCoreError, ClientError

        report = ShipReport()
        if not self.directory.is_dir():
            report.error = f"audit directory {self.directory} does not exist"
            return report
        try:
            shipped = self.shipped()
            plan, held = ship_plan(self.directory, shipped)
        except OSError as exc:
            report.error = f"reading the audit directory: {type(exc).__name__}"
            return report
        for index, item in enumerate(plan):
            try:
                self._ship_file(item)
                self._record(item.name)
            except AuditShipError as exc:
                report.error = str(exc)
            except (ClientError, BotoCoreError) as exc:
                report.error = _describe_failure(exc, f"shipping {item.name} to {self.describe()}")
            except OSError as exc:
                report.error = f"shipping {item.name}: {type(exc).__name__}"
            if report.error:
                report.pending = [rest.name for rest in plan[index:]] + held
                return report
            report.shipped.append(item.name)
        report.pending = held
        return report

    def _ship_file(self, item: _LocalFile) -> None:
        from botocore.exceptions import ClientError

        data = item.path.read_bytes()  # one read: the bytes hashed are the bytes sent
        digest = hashlib.sha256(data).hexdigest()
        key = self.key(item.name)
        try:
            existing = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if not _is_not_found(exc):
                raise
            existing = None
        if existing is not None:
            # Uploaded before a crash kept it out of shipped.log: verify, never overwrite.
            self._verify(item, existing, len(data), digest, retain_until=None)
            return
        retain_until = (datetime.now(timezone.utc) + timedelta(days=self.retention_days)).replace(microsecond=0)
        put = self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data,
            ContentType="application/x-ndjson" if item.name.endswith(".jsonl") else "application/json",
            ChecksumSHA256=_sha256_b64(digest),  # the server refuses a body that does not match
            Metadata={"sha256": digest},
            ObjectLockMode=LOCK_MODE, ObjectLockRetainUntilDate=retain_until,
        )
        head_args = {"VersionId": put["VersionId"]} if put.get("VersionId") else {}
        head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED", **head_args)
        self._verify(item, head, len(data), digest, retain_until=retain_until)

    def _verify(self, item: _LocalFile, head: dict, size: int, digest: str,
                retain_until: datetime | None) -> None:
        where = f"{item.name} at {self.describe()}"
        if head.get("ContentLength") != size:
            raise AuditShipError(f"{where}: remote object holds other bytes than the local file (size "
                                 f"{head.get('ContentLength')}, local {size}); not overwriting")
        remote_sha = (head.get("Metadata") or {}).get("sha256")
        remote_checksum = head.get("ChecksumSHA256")
        if remote_checksum and "-" in remote_checksum:  # a composite (multipart) checksum
            remote_checksum = None
        if remote_sha is None and remote_checksum is None:
            raise AuditShipError(f"{where}: the server reports no sha256, so the copy cannot be verified")
        if (remote_sha is not None and remote_sha != digest) or (
                remote_checksum is not None and remote_checksum != _sha256_b64(digest)):
            raise AuditShipError(f"{where}: remote object holds other bytes than the local file; not overwriting")
        mode = head.get("ObjectLockMode")
        if mode is not None and mode != LOCK_MODE:
            raise AuditShipError(f"{where}: remote lock mode is {mode}, not {LOCK_MODE}")
        until = head.get("ObjectLockRetainUntilDate")
        if isinstance(until, datetime):
            until = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
            floor = retain_until if retain_until is not None else datetime.now(timezone.utc)
            if until < floor - RETENTION_SLACK:
                raise AuditShipError(f"{where}: remote retention ends {until.isoformat()}, before {floor.isoformat()}")

    # -- background loop ------------------------------------------------------------------
    def start(self, interval: float = 60.0) -> None:
        """Ship every `interval` seconds in a daemon thread; failures back off, nothing is dropped."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()  # a fresh one: a loop that outlived stop()'s join still ends
        self._thread = threading.Thread(target=self._run, args=(interval, self._stop), name="audit-shipper",
                                        daemon=True)
        self._thread.start()

    def backoff_delay(self, failures: int) -> float:
        """Exponential from backoff_initial to backoff_max, times a jitter in [0.5, 1]."""
        ceiling = min(self.backoff_max, self.backoff_initial * (2 ** min(max(failures - 1, 0), 32)))
        return ceiling * random.uniform(0.5, 1.0)

    def _run(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                report = self.ship_once()
            except Exception as exc:  # the loop must outlive any surprise; files stay pending
                report = ShipReport(error=f"unexpected {type(exc).__name__}")
            if report.error:
                self.failures += 1
                delay = self.backoff_delay(self.failures)
                log.warning("audit_ship_failed", extra={"fields": {
                    "error": report.error, "pending": len(report.pending), "failures": self.failures,
                    "retry_in_s": round(delay, 3), "destination": self.describe()}})
            else:
                if report.shipped:
                    log.info("audit_shipped", extra={"fields": {
                        "shipped": len(report.shipped), "pending": len(report.pending),
                        "destination": self.describe()}})
                self.failures = 0
                delay = interval
            stop.wait(delay)

    def stop(self, flush: bool = True, timeout: float | None = 60.0) -> ShipReport | None:
        """Stop the loop; with `flush`, make one last pass and return its report."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if flush:
            report = self.ship_once()
            if report.error:
                log.warning("audit_ship_failed", extra={"fields": {
                    "error": report.error, "pending": len(report.pending), "final": True,
                    "destination": self.describe()}})
            return report
        return None

    # -- bucket check ---------------------------------------------------------------------
    def check_bucket(self) -> list[str]:
        """Problems that would make shipped files deletable or uploads fail; [] when fine."""
        from botocore.exceptions import BotoCoreError, ClientError

        problems: list[str] = []
        where = self.describe()
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code, status = _error_code(exc)
            if status == 404 or code in ("404", "NoSuchBucket", "NotFound"):
                return [f"bucket {self.bucket!r} does not exist ({where})"]
            return [_describe_failure(exc, f"checking bucket {where}")]
        except (BotoCoreError, OSError) as exc:
            return [_describe_failure(exc, f"checking bucket {where}")]
        try:
            versioning = self.client.get_bucket_versioning(Bucket=self.bucket)
            if versioning.get("Status") != "Enabled":
                problems.append(f"versioning is not enabled on bucket {self.bucket!r} "
                                f"(status: {versioning.get('Status') or 'never enabled'})")
        except (ClientError, BotoCoreError, OSError) as exc:
            problems.append(_describe_failure(exc, f"reading versioning of {where}"))
        try:
            lock = self.client.get_object_lock_configuration(Bucket=self.bucket)
            if (lock.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") != "Enabled":
                problems.append(f"Object Lock is not enabled on bucket {self.bucket!r}")
        except ClientError as exc:
            code, _status = _error_code(exc)
            if code == "ObjectLockConfigurationNotFoundError":
                problems.append(f"Object Lock is not enabled on bucket {self.bucket!r}")
            else:
                problems.append(_describe_failure(exc, f"reading Object Lock configuration of {where}"))
        except (BotoCoreError, OSError) as exc:
            problems.append(_describe_failure(exc, f"reading Object Lock configuration of {where}"))
        return problems


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) from `s3://bucket[/prefix]`."""
    if not isinstance(url, str) or not url.startswith("s3://") or len(url) <= 5:
        raise AuditShipError(f"an audit S3 location looks like 's3://bucket[/prefix]', got {url!r}")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise AuditShipError(f"an audit S3 location looks like 's3://bucket[/prefix]', got {url!r}")
    return bucket, _clean_prefix(prefix)


def download_log(dest: Path, bucket: str | None = None, prefix: str | None = None, client=None,
                 endpoint_url: str | None = None, region: str | None = None, log_id: str | None = None) -> Path:
    """Fetch every shipped segment and checkpoint into `dest/segments` and `dest/checkpoints`.

    Unset arguments come from ATELIER_AUDIT_S3 (s3://bucket/prefix), ATELIER_S3_ENDPOINT_URL and
    ATELIER_S3_REGION (read through service.config). Each object's bytes are checked against the
    sha256 it was shipped with; only names of sealed segments and checkpoints are written."""
    from botocore.exceptions import BotoCoreError, ClientError

    if bucket is None or (client is None and (endpoint_url is None or region is None)):
        from service.config import Settings

        settings = Settings.from_env()
        if bucket is None:
            if not settings.audit_s3:
                raise AuditShipError("no audit bucket given and ATELIER_AUDIT_S3 is not set")
            bucket, url_prefix = parse_s3_url(settings.audit_s3)
            prefix = url_prefix if prefix is None else prefix
        endpoint_url = endpoint_url or settings.s3_endpoint_url
        region = region or settings.s3_region
    if log_id is not None:  # the service ships each log under <prefix>/<log id>
        prefix = f"{_clean_prefix(prefix)}/{log_id}"
    prefix = _clean_prefix(prefix)
    if client is None:
        client = make_client(endpoint_url, region, READ_TIMEOUT_S)
    where = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    dest = Path(dest)
    patterns = {"segments": SEALED_SEGMENT, "checkpoints": CHECKPOINT}
    try:
        for folder, pattern in patterns.items():
            target = dest / folder
            target.mkdir(parents=True, exist_ok=True)
            listing = f"{prefix}/{folder}/" if prefix else f"{folder}/"
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=listing):
                for entry in page.get("Contents") or []:
                    name = entry["Key"][len(listing):]
                    if not pattern.match(name):  # no sub-folders, no open segments, no strays
                        continue
                    response = client.get_object(Bucket=bucket, Key=entry["Key"])
                    body = response["Body"]
                    try:
                        data = body.read()
                    finally:
                        body.close()
                    expected = (response.get("Metadata") or {}).get("sha256")
                    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
                        raise AuditShipError(f"{folder}/{name} from {where}: bytes do not match their sha256")
                    partial = target / f".{name}.part"
                    partial.write_bytes(data)
                    os.replace(partial, target / name)
    except (ClientError, BotoCoreError, OSError) as exc:
        raise AuditShipError(_describe_failure(exc, f"downloading the audit log from {where}")) from None
    return dest
