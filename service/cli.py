"""`atelier`: the admin command line.

Owns: argument parsing and exit codes; each command is in `service.commands` (`audit`,
`registry`, `licence`), which reads its defaults from `Settings` and prints its answer.
    atelier audit verify [--dir DIR] [--key PUBKEY_PEM ...] [--all] [--from-s3 [--log-id ID]]   0 ok, 1 problems
    atelier audit show GENERATION_ID [--dir DIR] [--from-s3]                      0 found, 1 none
    atelier licence verify FILE                                                 0 ok, 1 problems
    atelier licence sign FILE --key PEM [--decision accept|decline] [--role person|representative|guardian]
    atelier usage [--twin ID] [--from DAY] [--to DAY] [--format csv|json] [--dir DIR] [--from-s3]
    atelier db upgrade                                            migrate the registry to head
    atelier tenants create ID --name NAME | tenants list | tenants disable ID [--enable]
    atelier keys create --tenant ID --scopes generate,verify[,admin] [--name N] [--rpm N] [--concurrent N]
    atelier keys list [--tenant ID] | keys revoke KEY_ID          (revoking a revoked key: 0)
    atelier twins list [--all] | twins revoke ID [--delete]
    atelier twins check FILE                 would the adapter be accepted? 0 yes, 1 no (and why)
    atelier consent add TWIN --tenants A,B --uses U,V --recorded-by WHO [--territories FR,DE]
        [--valid-from ISO] [--valid-until ISO] [--pay-rate-ref REF] [--exclude CAT] [--include CAT]
        [--deny-term T ...] [--review-unverified-garments]
    atelier consent show TWIN                                     (every version, oldest first)
The registry commands talk to the registry database directly (ATELIER_DB_URL, default
`sqlite:///$ATELIER_HOME/registry.db`; migrated to head unless ATELIER_DB_MIGRATE=0), check
their input with the HTTP API's body models, and print one JSON object on stdout.
Timestamps are ISO 8601 with a timezone (`Z` accepted); a bare YYYY-MM-DD is midnight UTC.
Exit 1: the registry refuses (`error: <code>: <message>` on stderr). Exit 2: bad arguments or
settings, missing S3 support. Defaults: the registry database's chains (ATELIER_DB_URL; `--dir`
reads one chain's files instead), `--key` = `$ATELIER_HOME/keys/audit_ed25519.pub.pem`.
Must never: write to the audit log (every command is read-only; the registry commands write
the registry only, and are not audited), print key material or secrets (an API key's token
is printed once, by `keys create`; its hash never).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from service.audit.record import AuditError
from service.commands.adapters import cmd_twins_check
from service.commands import licence as licence_commands
from service.commands.audit import cmd_audit_show, cmd_audit_verify, cmd_usage
from service.commands.common import UsageError, parse_day, parse_instant, parse_names
from service.commands.registry import (
    cmd_consent_add,
    cmd_consent_show,
    cmd_db_upgrade,
    cmd_keys_create,
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_tenants_create,
    cmd_tenants_disable,
    cmd_tenants_list,
    cmd_twins_list,
    cmd_twins_revoke,
)
from service.errors import AtelierError


# ---- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier", description="Atelier admin tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    log_source = argparse.ArgumentParser(add_help=False)
    log_source.add_argument("--dir", type=Path, default=None, help="one audit chain's directory (default: every chain in the registry database)")
    log_source.add_argument(
        "--from-s3", action="store_true", help="download the shipped log from S3 into a temp dir and use that"
    )
    log_source.add_argument("--log-id", default=None, help="with --from-s3: which chain (each gateway process writes "
                            "one, shipped under <ATELIER_AUDIT_S3>/<log id>; default: the --dir chain's id)")

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
    usage.add_argument("--from", dest="date_from", type=parse_day, default=None, metavar="YYYY-MM-DD", help="first day (UTC)")
    usage.add_argument("--to", dest="date_to", type=parse_day, default=None, metavar="YYYY-MM-DD", help="last day (UTC), inclusive")
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
    create.add_argument("--scopes", required=True, type=parse_names, metavar="generate,verify[,admin]")
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
    check = twin_commands.add_parser("check", help="would this adapter file be accepted? (offline, read-only)")
    check.add_argument("file", metavar="FILE", help="a LoRA in safetensors format")
    check.set_defaults(handler=cmd_twins_check)

    licence_commands.add_parsers(commands)

    consent = commands.add_parser("consent", help="record and show a twin's consent (registry)")
    consent_commands = consent.add_subparsers(dest="consent_command", required=True, metavar="SUBCOMMAND")
    add = consent_commands.add_parser("add", help="record and sign the next consent version of a twin")
    add.add_argument("twin_id", metavar="TWIN")
    add.add_argument("--tenants", required=True, type=parse_names, metavar="A,B", help="tenants allowed to use the twin")
    add.add_argument("--uses", required=True, type=parse_names, metavar="U,V", help="e.g. ecommerce,lookbook")
    add.add_argument("--recorded-by", required=True, metavar="WHO")
    add.add_argument("--territories", type=parse_names, default=[], metavar="FR,DE",
                     help="ISO 3166-1 alpha-2 codes (default: worldwide)")
    add.add_argument("--valid-from", type=parse_instant, default=None, metavar="ISO", help="default: now")
    add.add_argument("--valid-until", type=parse_instant, default=None, metavar="ISO", help="default: open-ended")
    add.add_argument("--pay-rate-ref", default=None, metavar="REF")
    add.add_argument("--exclude", action="extend", type=parse_names, default=[], metavar="CAT",
                     help="a content category to exclude too (repeatable or comma-separated)")
    add.add_argument("--include", action="extend", type=parse_names, default=[], metavar="CAT",
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
