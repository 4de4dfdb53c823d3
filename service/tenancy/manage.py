"""Operator actions on tenants, keys and consent, shared by the admin HTTP routes and the CLI.

Owns: recording a consent version (content categories checked first), and the JSON shape
in which tenants, keys, twins and consent records are shown to operators. Must never show a
key's secret or hash (only `create_key` returns the token, once).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from service.registry import ConsentRecord, Registry
from service.registry.repository import utcnow
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
) -> ConsentRecord:
    """Append and sign the next consent version of a twin (it supersedes the previous one)."""
    check_categories(excluded_categories, included_categories)
    return registry.add_consent_version(
        twin_id, tenants=tenants, uses=uses, recorded_by=recorded_by, territories=territories,
        valid_from=valid_from or utcnow(), valid_until=valid_until, pay_rate_ref=pay_rate_ref,
        excluded_categories=excluded_categories, included_categories=included_categories,
        deny_terms=deny_terms,
    )


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
