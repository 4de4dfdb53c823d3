"""`atelier audit verify|show` and `atelier usage`: the audit log, read locally or from S3.

Owns: where a command finds the log (`--dir`, `$ATELIER_HOME/audit`, or a copy downloaded
from S3 into a temporary directory that `service.cli` removes afterwards), the default public
key, and what each command prints. Must never write to the audit log.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from service.commands.common import UsageError, load_settings


def _default_dir() -> Path:
    settings = load_settings()
    return getattr(settings, "audit_dir", settings.home / "audit")


def _default_key() -> Path:
    return load_settings().home / "keys" / "audit_ed25519.pub.pem"


# ---- S3 ------------------------------------------------------------------------------------------
# `--from-s3` downloads the shipped log into a temporary directory and runs the command there.
# The download itself belongs to service.audit.shipper (`download_log(dest: Path)`), imported
# lazily so the CLI works where S3 support is not installed or not configured.


def _download_from_s3(log_id: str | None) -> Path:
    try:
        from service.audit.shipper import download_log
    except ImportError as exc:
        raise UsageError(f"--from-s3 needs service.audit.shipper.download_log, which is not available ({exc})") from None
    dest = Path(tempfile.mkdtemp(prefix="atelier-audit-"))
    try:
        download_log(dest) if log_id is None else download_log(dest, log_id=log_id)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def _log_dir(args: argparse.Namespace) -> Path:
    if args.from_s3:
        log_id = getattr(args, "log_id", None)
        local = (args.dir or _default_dir()) / "log_id"
        if log_id is None and local.is_file():
            log_id = local.read_text().strip()  # this machine's log, by default
        args.cleanup = _download_from_s3(log_id)
        return args.cleanup
    return args.dir or _default_dir()


# ---- commands ------------------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from service.audit.checkpoint import KeyFileError, load_public_key
    from service.audit.verify import verify_log

    paths = args.key or [_default_key()]
    try:
        keys = [load_public_key(Path(p)) for p in paths]
    except KeyFileError as exc:
        raise UsageError(f"{exc} (pass --key, or build one with `python builds/audit_key.py`)") from None
    directory = _log_dir(args)
    result = verify_log(directory, keys)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.ok:
        print(f"OK: {result.records} records, {result.checkpoints} checkpoints verified in {directory}")
    else:
        print(f"FAIL: {result.first}")
        for problem in result.problems if args.all else ():
            print(f"  {problem}")
        print(
            f"{len(result.problems)} problem(s); {result.records} records, {result.checkpoints} checkpoints in {directory}"
            + ("" if args.all else " (--all lists every problem)")
        )
    if result.unanchored:
        print(f"note: {result.unanchored} record(s) after the newest checkpoint are covered by the hash chain only")
    return 0 if result.ok else 1


def cmd_audit_show(args: argparse.Namespace) -> int:
    from service.audit.log import find_records

    records = find_records(_log_dir(args), "generation_id", args.generation_id)
    for record in records:
        print(json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True))
    if not records:
        print(f"no audit record with generation_id {args.generation_id!r}", file=sys.stderr)
        return 1
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from service.audit.log import iter_records
    from service.audit.usage import aggregate, to_csv, to_json

    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise UsageError("--from is after --to")
    rows = aggregate(iter_records(_log_dir(args)), twin=args.twin, date_from=args.date_from, date_to=args.date_to)
    sys.stdout.write(to_csv(rows) if args.format == "csv" else to_json(rows))
    return 0
