"""`atelier db|tenants|keys|twins|consent`: the registry, without a server.

Owns: opening the registry database for one command (a bad URL or missing folder is a usage
error, a database failure `registry_unavailable` without the SQL or its values), checking input
with the HTTP API's body models, and printing one JSON object. Must never print a key's hash or
any secret but the token `keys create` mints, shown once; these commands are not audited.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.commands.common import UsageError, load_settings
from service.config import ConfigError, Settings
from service.errors import AtelierError


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

    settings = load_settings()
    try:
        migrated = ensure_schema(settings.db_url)
        return _emit({"revision": current_revision(settings.db_url), "migrated": migrated})
    except SQLAlchemyError as exc:
        raise AtelierError(f"the registry database failed ({type(exc).__name__})", code="registry_unavailable") from None


def cmd_tenants_create(args: argparse.Namespace) -> int:
    from service.schemas import TenantCreateBody
    from service.tenancy.manage import shown

    body = _checked(TenantCreateBody, tenant_id=args.tenant_id, name=args.name)
    with _registry(load_settings()) as registry:
        registry.create_tenant(body.tenant_id, body.name)
        return _emit({"tenant": shown(registry.get_tenant(body.tenant_id))})


def cmd_tenants_list(args: argparse.Namespace) -> int:
    from service.tenancy.manage import shown

    with _registry(load_settings()) as registry:
        return _emit({"tenants": [shown(t) for t in registry.list_tenants()]})


def cmd_tenants_disable(args: argparse.Namespace) -> int:
    from service.schemas import TenantDisableBody
    from service.tenancy.manage import shown

    body = _checked(TenantDisableBody, tenant_id=args.tenant_id, disabled=not args.enable)
    with _registry(load_settings()) as registry:
        registry.set_tenant_disabled(body.tenant_id, body.disabled)
        return _emit({"tenant": shown(registry.get_tenant(body.tenant_id))})


def cmd_keys_create(args: argparse.Namespace) -> int:
    from service.schemas import KeyCreateBody
    from service.tenancy.manage import shown

    limits = {"requests_per_minute": args.rpm, "max_concurrent_jobs": args.concurrent}
    body = _checked(KeyCreateBody, tenant_id=args.tenant, scopes=args.scopes, name=args.name,
                    **{name: value for name, value in limits.items() if value is not None})
    with _registry(load_settings()) as registry:
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
    with _registry(load_settings()) as registry:
        if body.tenant_id is not None and registry.get_tenant(body.tenant_id) is None:
            raise TenantNotFound(f"no tenant {body.tenant_id!r}", field="tenant_id")
        return _emit({"keys": [shown(k) for k in registry.list_keys(body.tenant_id)]})


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    """Revoking an already revoked key is not an error (exit 0, `already_revoked: true`);
    an unknown key id is (`key_not_found`, exit 1). The same as `POST /v1/admin/keys/revoke`."""
    from service.registry.errors import KeyNotFound
    from service.schemas import KeyIdBody

    body = _checked(KeyIdBody, key_id=args.key_id)
    with _registry(load_settings()) as registry:
        newly = registry.revoke_key(body.key_id)
        if not newly and not any(k.key_id == body.key_id for k in registry.list_keys()):
            raise KeyNotFound(f"no API key {body.key_id!r}", field="key_id")
    return _emit({"key_id": body.key_id, "revoked": True, "already_revoked": not newly})


def cmd_twins_list(args: argparse.Namespace) -> int:
    from service.tenancy.manage import shown

    with _registry(load_settings()) as registry:
        return _emit({"twins": [shown(t) for t in registry.list_twins(include_revoked=args.all)]})


def cmd_twins_revoke(args: argparse.Namespace) -> int:
    from service.schemas import TwinRevokeBody
    from service.tenancy.manage import shown
    from service.twins import open_adapter_store
    from service.twins.admin import revoke_twin

    body = _checked(TwinRevokeBody, twin_id=args.twin_id, delete=args.delete)
    settings = load_settings()
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
    with _registry(load_settings()) as registry:
        record = record_consent(registry, body.twin_id, **body.model_dump(exclude={"twin_id"}))
        return _emit({"consent": shown(record)})


def cmd_consent_show(args: argparse.Namespace) -> int:
    from service.errors import TwinNotFound
    from service.schemas import TwinIdBody
    from service.tenancy.manage import shown

    body = _checked(TwinIdBody, twin_id=args.twin_id)
    with _registry(load_settings()) as registry:
        if registry.get_twin(body.twin_id, include_deleted=True) is None:
            raise TwinNotFound(f"no twin {body.twin_id!r}", field="twin_id")
        return _emit({"twin_id": body.twin_id, "versions": [shown(r) for r in registry.consent_history(body.twin_id)]})
