"""Operator actions on tenants, keys and consent, shared by the admin HTTP routes and the CLI.

Owns: recording a consent version (content categories checked first), the guard that keeps
operators from locking themselves out over HTTP (`keep_admin_access`: no admin disables the
tenant of its own key, and no change leaves no usable admin key; the CLI, with the database
in hand, stays the way back), and the JSON shape in which tenants, keys, twins and consent
records are shown to operators. Must never show a
key's secret or hash (only `create_key` returns the token, once).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from service.errors import AtelierError
from service.registry import ConsentRecord, Registry
from service.tenancy.consent import check_categories


def record_consent(
    registry: Registry,
    twin_id: str,
    *,
    tenants: list[str],
    uses: list[str],
    recorded_by: str,
    territories: list[str] = (),  # type: ignore[assignment]
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    pay_rate_ref: str | None = None,
    excluded_categories: list[str] = (),  # type: ignore[assignment]
    included_categories: list[str] = (),  # type: ignore[assignment]
    deny_terms: list[str] = (),  # type: ignore[assignment]
    review_unverified_garments: bool = False,
) -> ConsentRecord:
    """Append and sign the next consent version of a twin (it supersedes the previous one)."""
    check_categories(excluded_categories, included_categories)
    return registry.consent.add_consent_version(
        twin_id, tenants=tenants, uses=uses, recorded_by=recorded_by, territories=territories,
        valid_from=valid_from or registry.db.now(), valid_until=valid_until, pay_rate_ref=pay_rate_ref,
        excluded_categories=excluded_categories, included_categories=included_categories,
        deny_terms=deny_terms, review_unverified_garments=review_unverified_garments,
    )


class WouldLockOut(AtelierError):
    status = 409
    code = "would_lock_out"


def keep_admin_access(registry: Registry, actor, *, disable_tenant: str | None = None,
                      revoke_key: str | None = None) -> None:
    """Refuse (409) disabling the actor's own tenant, and any change after which no usable
    admin key (not revoked, of an enabled tenant) would be left."""
    if disable_tenant is not None and disable_tenant == actor.tenant_id:
        raise WouldLockOut("an admin cannot disable the tenant of its own key: every admin key of that tenant "
                           "would stop working; use an admin key of another tenant", field="tenant_id")
    now = registry.db.now()
    enabled = {t.id for t in registry.tenants.list_tenants() if not t.disabled and t.id != disable_tenant}
    usable = [k for k in registry.tenants.list_keys() if "admin" in k.scopes and k.tenant_id in enabled
              and (k.revoked_at is None or k.revoked_at > now) and k.key_id != revoke_key]
    if not usable:
        raise WouldLockOut("this would leave no usable admin key; mint another admin key first",
                           field="key_id" if revoke_key else "tenant_id")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (frozenset, set, tuple)):
        return sorted(value) if isinstance(value, (frozenset, set)) else list(value)
    return value


def shown(item: Any) -> dict[str, Any]:
    """A record (a frozen dataclass: tenant, key, twin, consent, webhook delivery) as an
    operator sees it in JSON."""
    return {name: _jsonable(value) for name, value in asdict(item).items()}
