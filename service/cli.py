"""`atelier`: the admin command line.

Owns: argument parsing, defaults from `Settings`, exit codes and what is printed.
    atelier audit verify [--dir DIR] [--key PUBKEY_PEM ...] [--all] [--from-s3]   0 ok, 1 problems
    atelier audit show GENERATION_ID [--dir DIR] [--from-s3]                      0 found, 1 none
    atelier usage [--twin ID] [--from DAY] [--to DAY] [--format csv|json] [--dir DIR] [--from-s3]
Exit 2: bad arguments or settings, missing S3 support. Defaults: `--dir` = `$ATELIER_HOME/audit`
(ATELIER_AUDIT_DIR), `--key` = `$ATELIER_HOME/keys/audit_ed25519.pub.pem`.
Must never: write to the audit log (every command is read-only), print key material or secrets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from service.audit.record import AuditError
from service.config import ConfigError, Settings


class UsageError(Exception):
    """Bad input that argparse cannot see (a missing key file, S3 support absent): exit 2."""


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _default_dir() -> Path:
    settings = _settings()
    return getattr(settings, "audit_dir", settings.home / "audit")


def _default_key() -> Path:
    return _settings().home / "keys" / "audit_ed25519.pub.pem"


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


# ---- S3 ------------------------------------------------------------------------------------------
# `--from-s3` downloads the shipped log into a temporary directory and runs the command there.
# The download itself belongs to service.audit.shipper (`download_log(dest: Path)`), imported
# lazily so the CLI works where S3 support is not installed or not configured.


def _download_from_s3() -> Path:
    try:
        from service.audit.shipper import download_log
    except ImportError as exc:
        raise UsageError(f"--from-s3 needs service.audit.shipper.download_log, which is not available ({exc})") from None
    dest = Path(tempfile.mkdtemp(prefix="atelier-audit-"))
    try:
        download_log(dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def _log_dir(args: argparse.Namespace) -> Path:
    if args.from_s3:
        args.cleanup = _download_from_s3()
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


# ---- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier", description="Atelier admin tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    log_source = argparse.ArgumentParser(add_help=False)
    log_source.add_argument("--dir", type=Path, default=None, help="audit log directory (default: $ATELIER_HOME/audit)")
    log_source.add_argument(
        "--from-s3", action="store_true", help="download the shipped log from S3 into a temp dir and use that"
    )

    audit = commands.add_parser("audit", help="verify and inspect the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = audit_commands.add_parser("verify", parents=[log_source], help="check hashes, chain, checkpoints")
    verify.add_argument(
        "--key", action="append", type=Path, default=None, metavar="PUBKEY_PEM",
        help="trusted Ed25519 public key (repeatable; default: $ATELIER_HOME/keys/audit_ed25519.pub.pem)",
    )
    verify.add_argument("--all", action="store_true", help="list every problem, not only the first")
    verify.set_defaults(handler=cmd_audit_verify)
    show = audit_commands.add_parser("show", parents=[log_source], help="print the records of one generation")
    show.add_argument("generation_id")
    show.set_defaults(handler=cmd_audit_show)

    usage = commands.add_parser("usage", parents=[log_source], help="images per day, tenant and twin")
    usage.add_argument("--twin", default=None, help="only this twin id")
    usage.add_argument("--from", dest="date_from", type=_day, default=None, metavar="YYYY-MM-DD", help="first day (UTC)")
    usage.add_argument("--to", dest="date_to", type=_day, default=None, metavar="YYYY-MM-DD", help="last day (UTC), inclusive")
    usage.add_argument("--format", choices=("csv", "json"), default="csv")
    usage.set_defaults(handler=cmd_usage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.cleanup = None
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        print(f"atelier: {exc}", file=sys.stderr)
        return 2
    except AuditError as exc:  # e.g. a line that is not JSON: `audit verify` says more
        print(f"atelier: the audit log cannot be read: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.cleanup is not None:
            shutil.rmtree(args.cleanup, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
