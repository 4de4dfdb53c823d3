"""`atelier`: the admin command line.

Owns: argument parsing, defaults from `Settings`, exit codes and what is printed.
    atelier audit verify [--dir DIR] [--key PUBKEY_PEM ...] [--all] [--from-s3 [--log-id ID]]   0 ok, 1 problems
    atelier audit show GENERATION_ID [--dir DIR] [--from-s3]                      0 found, 1 none
    atelier usage [--twin ID] [--from DAY] [--to DAY] [--format csv|json] [--dir DIR] [--from-s3]
    atelier db upgrade                                            migrate the registry to head
    atelier tenants create ID --name NAME | tenants list | tenants disable ID [--enable]
    atelier keys create --tenant ID --scopes generate,verify[,admin] [--name N] [--rpm N] [--concurrent N]
    atelier keys list [--tenant ID] | keys revoke KEY_ID          (revoking a revoked key: 0)
    atelier twins list [--all] | twins revoke ID [--delete]
    atelier consent add TWIN --tenants A,B --uses U,V --recorded-by WHO [--territories FR,DE]
        [--valid-from ISO] [--valid-until ISO] [--pay-rate-ref REF] [--exclude CAT] [--include CAT]
        [--deny-term T ...] [--review-unverified-garments]
    atelier consent show TWIN                                     (every version, oldest first)
The registry commands talk to the registry database directly (ATELIER_DB_URL, default
`sqlite:///$ATELIER_HOME/registry.db`; migrated to head unless ATELIER_DB_MIGRATE=0), check
their input with the HTTP API's body models, and print one JSON object on stdout.
Timestamps are ISO 8601 with a timezone (`Z` accepted); a bare YYYY-MM-DD is midnight UTC.
Exit 1: the registry refuses (`error: <code>: <message>` on stderr). Exit 2: bad arguments or
settings, missing S3 support. Defaults: `--dir` = `$ATELIER_HOME/audit`
(ATELIER_AUDIT_DIR), `--key` = `$ATELIER_HOME/keys/audit_ed25519.pub.pem`.
Must never: write to the audit log (every command is read-only; the registry commands write
the registry only, and are not audited), print key material or secrets (an API key's token
is printed once, by `keys create`; its hash never).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from service.audit.record import AuditError
from service.config import ConfigError, Settings
from service.errors import AtelierError


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


def _instant(text: str) -> dt.datetime:
    """An ISO 8601 timestamp with a timezone (`Z` accepted); a bare date is midnight UTC."""
    text = text.strip()
    wrong = argparse.ArgumentTypeError(f"expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], got {text!r}")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.timezone.utc)
        if not re.match(r"\d{4}-\d{2}-\d{2}[Tt ]\d", text):  # else "2025-01-01+02:00" would read as 02:00
            raise wrong
        value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise wrong from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone: add Z or an offset such as +02:00")
    return value


def _names(text: str) -> list[str]:
    """A comma-separated list of one or more values."""
    values = [value.strip() for value in text.split(",")]
    if not all(values):
        raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}")
    return values


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


# ---- registry ------------------------------------------------------------------------------------
# These commands open the registry database themselves (no server needed). What they print is
# `service.tenancy.manage.shown` of the registry's records, the shape the admin HTTP API uses.


@contextlib.contextmanager
def _registry(settings: Settings) -> Iterator[Any]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from service.registry import open_registry

    try:
        url = make_url(settings.db_url)
    except ArgumentError:  # never echo the URL: it may hold a password
        raise UsageError("ATELIER_DB_URL is not a database URL") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        folder = Path(url.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise UsageError(f"the registry's folder {folder} does not exist (set ATELIER_HOME or ATELIER_DB_URL)")
    try:
        registry = open_registry(settings.db_url, migrate=settings.db_migrate)
        try:
            yield registry
        finally:
            registry.engine.dispose()
    except SQLAlchemyError as exc:  # unreachable, locked, not a registry: say which, never the SQL or its values
        cause = getattr(exc, "orig", None)
        detail = type(exc).__name__
        if cause is not None and str(cause).strip():
            detail += f": {str(cause).strip().splitlines()[0]}"
        raise AtelierError(f"the registry database failed ({detail})", code="registry_unavailable") from None


def _checked(model: Any, **fields: Any) -> Any:
    """`fields` validated by the HTTP API's body model, so both front doors take the same input."""
    from pydantic import ValidationError

    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise UsageError(f"invalid input: {problems}") from None


def _emit(value: dict) -> int:
    print(json.dumps(value, indent=2, ensure_ascii=False))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Bring the registry schema to head (a deploy step when replicas run ATELIER_DB_MIGRATE=0)."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.registry.migrate import current_revision, ensure_schema

    settings = _settings()
    try:
        migrated = ensure_schema(settings.db_url)
        return _emit({"revision": current_revision(settings.db_url), "migrated": migrated})
    except SQLAlchemyError as exc:
        raise AtelierError(f"the registry database failed ({type(exc).__name__})", code="registry_unavailable") from None


def cmd_tenants_create(args: argparse.Namespace) -> int:
    from service.schemas import TenantCreateBody
    from service.tenancy.manage import shown

    body = _checked(TenantCreateBody, tenant_id=args.tenant_id, name=args.name)
    with _registry(_settings()) as registry:
        registry.create_tenant(body.tenant_id, body.name)
        return _emit({"tenant": shown(registry.get_tenant(body.tenant_id))})


def cmd_tenants_list(args: argparse.Namespace) -> int:
    from service.tenancy.manage import shown

    with _registry(_settings()) as registry:
        return _emit({"tenants": [shown(t) for t in registry.list_tenants()]})


def cmd_tenants_disable(args: argparse.Namespace) -> int:
    from service.schemas import TenantDisableBody
    from service.tenancy.manage import shown

    body = _checked(TenantDisableBody, tenant_id=args.tenant_id, disabled=not args.enable)
    with _registry(_settings()) as registry:
        registry.set_tenant_disabled(body.tenant_id, body.disabled)
        return _emit({"tenant": shown(registry.get_tenant(body.tenant_id))})


def cmd_keys_create(args: argparse.Namespace) -> int:
    from service.schemas import KeyCreateBody
    from service.tenancy.manage import shown

    limits = {"requests_per_minute": args.rpm, "max_concurrent_jobs": args.concurrent}
    body = _checked(KeyCreateBody, tenant_id=args.tenant, scopes=args.scopes, name=args.name,
                    **{name: value for name, value in limits.items() if value is not None})
    with _registry(_settings()) as registry:
        key_id, token = registry.create_api_key(
            body.tenant_id, body.scopes, name=body.name,
            requests_per_minute=body.requests_per_minute, max_concurrent_jobs=body.max_concurrent_jobs,
        )
        listing = next(k for k in registry.list_keys(body.tenant_id) if k.key_id == key_id)
    print("note: the token is shown once and cannot be recovered (only its salted hash is kept); store it now",
          file=sys.stderr)
    return _emit({"key": shown(listing), "token": token})


def cmd_keys_list(args: argparse.Namespace) -> int:
    from service.registry.errors import TenantNotFound
    from service.schemas import KeyListBody
    from service.tenancy.manage import shown

    body = _checked(KeyListBody, tenant_id=args.tenant)
    with _registry(_settings()) as registry:
        if body.tenant_id is not None and registry.get_tenant(body.tenant_id) is None:
            raise TenantNotFound(f"no tenant {body.tenant_id!r}", field="tenant_id")
        return _emit({"keys": [shown(k) for k in registry.list_keys(body.tenant_id)]})


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    """Revoking an already revoked key is not an error (exit 0, `already_revoked: true`);
    an unknown key id is (`key_not_found`, exit 1). The same as `POST /v1/admin/keys/revoke`."""
    from service.registry.errors import KeyNotFound
    from service.schemas import KeyIdBody

    body = _checked(KeyIdBody, key_id=args.key_id)
    with _registry(_settings()) as registry:
        newly = registry.revoke_key(body.key_id)
        if not newly and not any(k.key_id == body.key_id for k in registry.list_keys()):
            raise KeyNotFound(f"no API key {body.key_id!r}", field="key_id")
    return _emit({"key_id": body.key_id, "revoked": True, "already_revoked": not newly})


def cmd_twins_list(args: argparse.Namespace) -> int:
    from service.tenancy.manage import shown

    with _registry(_settings()) as registry:
        return _emit({"twins": [shown(t) for t in registry.list_twins(include_revoked=args.all)]})


def cmd_twins_revoke(args: argparse.Namespace) -> int:
    from service.schemas import TwinRevokeBody
    from service.tenancy.manage import shown
    from service.twins import open_adapter_store
    from service.twins.admin import revoke_twin

    body = _checked(TwinRevokeBody, twin_id=args.twin_id, delete=args.delete)
    settings = _settings()
    try:
        store = open_adapter_store(settings)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    with _registry(settings) as registry:
        try:
            info = revoke_twin(registry, store, body.twin_id, delete=body.delete)
        except AtelierError:
            after = registry.get_twin(body.twin_id, include_deleted=True)
            if body.delete and after is not None and after.revoked_at is not None:
                print(f"atelier: twin {body.twin_id!r} is revoked, but its adapter file was not deleted; "
                      "run this command again to retry", file=sys.stderr)
            raise
    note = (
        "revoked in the registry: every replica refuses new requests for this twin now, and running "
        f"replicas drop its adapter and stop its in-flight generations within ATELIER_REGISTRY_POLL_MS "
        f"({settings.registry_poll_ms} ms in this environment)"
    )
    if body.delete:
        note += "; its adapter file was deleted from the store unless another live twin uses it"
    return _emit({"twin": shown(info), "note": note})


def cmd_consent_add(args: argparse.Namespace) -> int:
    from service.schemas import ConsentBody
    from service.tenancy.manage import record_consent, shown

    body = _checked(
        ConsentBody, twin_id=args.twin_id, tenants=args.tenants, uses=args.uses, recorded_by=args.recorded_by,
        territories=args.territories, valid_from=args.valid_from, valid_until=args.valid_until,
        pay_rate_ref=args.pay_rate_ref, excluded_categories=args.exclude, included_categories=args.include,
        deny_terms=args.deny_terms, review_unverified_garments=args.review_unverified_garments,
    )
    with _registry(_settings()) as registry:
        record = record_consent(registry, body.twin_id, **body.model_dump(exclude={"twin_id"}))
        return _emit({"consent": shown(record)})


def cmd_consent_show(args: argparse.Namespace) -> int:
    from service.errors import TwinNotFound
    from service.schemas import TwinIdBody
    from service.tenancy.manage import shown

    body = _checked(TwinIdBody, twin_id=args.twin_id)
    with _registry(_settings()) as registry:
        if registry.get_twin(body.twin_id, include_deleted=True) is None:
            raise TwinNotFound(f"no twin {body.twin_id!r}", field="twin_id")
        return _emit({"twin_id": body.twin_id, "versions": [shown(r) for r in registry.consent_history(body.twin_id)]})


# ---- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier", description="Atelier admin tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    log_source = argparse.ArgumentParser(add_help=False)
    log_source.add_argument("--dir", type=Path, default=None, help="audit log directory (default: $ATELIER_HOME/audit)")
    log_source.add_argument(
        "--from-s3", action="store_true", help="download the shipped log from S3 into a temp dir and use that"
    )
    log_source.add_argument("--log-id", default=None, help="with --from-s3: which replica's log (each ships under "
                            "<ATELIER_AUDIT_S3>/<log id>; default: the local log's id)")

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

    db = commands.add_parser("db", help="the registry database's schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    db_commands.add_parser("upgrade", help="migrate the registry schema to head").set_defaults(handler=cmd_db_upgrade)

    tenants = commands.add_parser("tenants", help="create, list, disable tenants (registry)")
    tenant_commands = tenants.add_subparsers(dest="tenants_command", required=True, metavar="SUBCOMMAND")
    create = tenant_commands.add_parser("create", help="add a tenant")
    create.add_argument("tenant_id", metavar="ID")
    create.add_argument("--name", required=True, help="display name")
    create.set_defaults(handler=cmd_tenants_create)
    tenant_commands.add_parser("list", help="every tenant").set_defaults(handler=cmd_tenants_list)
    disable = tenant_commands.add_parser("disable", help="disable a tenant (its keys stop working at once)")
    disable.add_argument("tenant_id", metavar="ID")
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    disable.set_defaults(handler=cmd_tenants_disable)

    keys = commands.add_parser("keys", help="create, list, revoke API keys (registry)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    create = key_commands.add_parser("create", help="mint a key; its token is printed once")
    create.add_argument("--tenant", required=True, metavar="ID")
    create.add_argument("--scopes", required=True, type=_names, metavar="generate,verify[,admin]")
    create.add_argument("--name", default="", help="a label for operators")
    create.add_argument("--rpm", type=int, default=None, metavar="N", help="requests per minute (default 60)")
    create.add_argument("--concurrent", type=int, default=None, metavar="N", help="concurrent jobs (default 4)")
    create.set_defaults(handler=cmd_keys_create)
    listing = key_commands.add_parser("list", help="keys without their secrets, oldest first")
    listing.add_argument("--tenant", default=None, metavar="ID", help="only this tenant's keys")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key (0 also when it was already revoked)")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(handler=cmd_keys_revoke)

    twins = commands.add_parser("twins", help="list twins, revoke one (registry)")
    twin_commands = twins.add_subparsers(dest="twins_command", required=True, metavar="SUBCOMMAND")
    listing = twin_commands.add_parser("list", help="live twins by id")
    listing.add_argument("--all", action="store_true", help="include revoked and deleted twins")
    listing.set_defaults(handler=cmd_twins_list)
    revoke = twin_commands.add_parser("revoke", help="withdraw all consent for a twin (final)")
    revoke.add_argument("twin_id", metavar="ID")
    revoke.add_argument("--delete", action="store_true", help="also delete the twin and its adapter file")
    revoke.set_defaults(handler=cmd_twins_revoke)

    consent = commands.add_parser("consent", help="record and show a twin's consent (registry)")
    consent_commands = consent.add_subparsers(dest="consent_command", required=True, metavar="SUBCOMMAND")
    add = consent_commands.add_parser("add", help="record and sign the next consent version of a twin")
    add.add_argument("twin_id", metavar="TWIN")
    add.add_argument("--tenants", required=True, type=_names, metavar="A,B", help="tenants allowed to use the twin")
    add.add_argument("--uses", required=True, type=_names, metavar="U,V", help="e.g. ecommerce,lookbook")
    add.add_argument("--recorded-by", required=True, metavar="WHO")
    add.add_argument("--territories", type=_names, default=[], metavar="FR,DE",
                     help="ISO 3166-1 alpha-2 codes (default: worldwide)")
    add.add_argument("--valid-from", type=_instant, default=None, metavar="ISO", help="default: now")
    add.add_argument("--valid-until", type=_instant, default=None, metavar="ISO", help="default: open-ended")
    add.add_argument("--pay-rate-ref", default=None, metavar="REF")
    add.add_argument("--exclude", action="extend", type=_names, default=[], metavar="CAT",
                     help="a content category to exclude too (repeatable or comma-separated)")
    add.add_argument("--include", action="extend", type=_names, default=[], metavar="CAT",
                     help="a content category to allow, e.g. lingerie (repeatable or comma-separated)")
    add.add_argument("--deny-term", dest="deny_terms", action="append", default=[], metavar="T",
                     help="a prompt term refused for this twin (repeatable)")
    add.add_argument("--review-unverified-garments", action="store_true",
                     help="hold catalogue items whose garment images cannot be verified for a person's review")
    add.set_defaults(handler=cmd_consent_add)
    show = consent_commands.add_parser("show", help="every consent version of a twin, oldest first")
    show.add_argument("twin_id", metavar="TWIN")
    show.set_defaults(handler=cmd_consent_show)
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
    except AtelierError as exc:  # the registry (or a check before it) refuses
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        if args.cleanup is not None:
            shutil.rmtree(args.cleanup, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
