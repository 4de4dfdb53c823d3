"""`atelier audit verify|show` and `atelier usage`: the fleet's audit record, or an archived chain.

Owns: where a command finds the record (by default the registry database, `ATELIER_DB_URL`:
every chain of every gateway; `--dir` for one chain's files, e.g. a chain directory under
`$ATELIER_HOME/audit/chains/`; or `--from-s3`, a chain downloaded from the archive into a
temporary directory that `service.cli` removes afterwards), the default public key, and what
each command prints. Must never write to the audit record (verifying the database exports each
chain to a temporary directory and checks it exactly as an archived copy is checked).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from service.commands.common import UsageError, load_settings


def _store():
    """The fleet's records in the registry database (`ATELIER_DB_URL`)."""
    from service.registry import Database
    from service.registry.audit import AuditRecords

    return AuditRecords(Database(load_settings().db_url))


def _from_files(args: argparse.Namespace) -> bool:
    return bool(args.dir or args.from_s3)


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
        local = args.dir / "log_id" if args.dir else None
        if log_id is None and local is not None and local.is_file():
            log_id = local.read_text().strip()  # the chain of that directory
        if log_id is None:
            raise UsageError("--from-s3 needs --log-id: the chain to download (`atelier audit verify` lists the "
                             "registry's chains with --all)")
        args.cleanup = _download_from_s3(log_id)
        return args.cleanup
    return args.dir


# ---- commands ------------------------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from service.audit.checkpoint import KeyFileError, load_public_key
    from service.audit.verify import verify_log

    paths = args.key or [_default_key()]
    try:
        keys = [load_public_key(Path(p)) for p in paths]
    except KeyFileError as exc:
        raise UsageError(f"{exc} (pass --key, or build one with `python builds/audit_key.py`)") from None
    if not _from_files(args):
        return _verify_database(keys, args)
    directory = _log_dir(args)
    return _report(verify_log(directory, keys), str(directory), args)


def _report(result, where: str, args: argparse.Namespace) -> int:
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.ok:
        print(f"OK: {result.records} records, {result.checkpoints} checkpoints verified in {where}")
    else:
        print(f"FAIL: {result.first}")
        for problem in result.problems if args.all else ():
            print(f"  {problem}")
        print(
            f"{len(result.problems)} problem(s); {result.records} records, {result.checkpoints} checkpoints in {where}"
            + ("" if args.all else " (--all lists every problem)")
        )
    if result.unanchored:
        print(f"note: {result.unanchored} record(s) after the newest checkpoint are covered by the hash chain only")
    return 0 if result.ok else 1


def _verify_database(keys, args: argparse.Namespace) -> int:
    """Every chain of the fleet, each exported and verified as an archived copy would be."""
    from service.audit.archive import ChainArchive
    from service.audit.verify import verify_log

    store = _store()
    archive = ChainArchive(store, Path(tempfile.gettempdir()))
    chains = store.chains()
    failed = records = checkpoints = 0
    for chain in chains:
        with tempfile.TemporaryDirectory(prefix="atelier-chain-") as temp:
            result = verify_log(archive.export(chain.log_id, Path(temp)), keys)
        state = "ended" if chain.ended_at else "open"
        if not result.ok or args.all:
            _report(result, f"chain {chain.log_id} ({state}, written by {chain.writer})", args)
        failed += 0 if result.ok else 1
        records += result.records
        checkpoints += result.checkpoints
    where = f"{len(chains)} chain(s) of the registry database"
    if failed:
        print(f"FAIL: {failed} of {where} did not verify")
        return 1
    print(f"OK: {records} records, {checkpoints} checkpoints verified in {where}")
    return 0


def cmd_audit_show(args: argparse.Namespace) -> int:
    from service.audit.segments import find_records

    if _from_files(args):
        records = find_records(_log_dir(args), "generation_id", args.generation_id)
    else:
        records = _store().find("generation_id", args.generation_id)
    for record in records:
        print(json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True))
    if not records:
        print(f"no audit record with generation_id {args.generation_id!r}", file=sys.stderr)
        return 1
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from service.audit.segments import iter_records
    from service.audit.usage import aggregate, to_csv, to_json

    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise UsageError("--from is after --to")
    if _from_files(args):
        rows = aggregate(iter_records(_log_dir(args)), twin=args.twin, date_from=args.date_from,
                         date_to=args.date_to)
    else:  # the whole fleet's record, counted in the database
        rows = _store().usage(twin=args.twin, date_from=args.date_from and args.date_from.isoformat(),
                              date_to=args.date_to and args.date_to.isoformat())
    sys.stdout.write(to_csv(rows) if args.format == "csv" else to_json(rows))
    return 0
