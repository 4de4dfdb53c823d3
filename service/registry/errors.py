"""Typed errors raised by the registry's repositories.

Owns: the registry's own failure kinds, each a `service.errors.AtelierError` subclass with a
stable code and HTTP status (so `service.gateway.http_edge` maps them like every other error). Must
never import anything from `service` but `service.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import InterfaceError, OperationalError

from service.errors import AtelierError


class RegistryNotFound(AtelierError):
    status = 404
    code = "not_found"


class TenantNotFound(RegistryNotFound):
    code = "tenant_not_found"


class KeyNotFound(RegistryNotFound):
    code = "key_not_found"


class ConsentNotFound(RegistryNotFound):
    code = "consent_not_found"


class AlreadyExists(AtelierError):
    status = 409
    code = "already_exists"


class AdapterInUse(AtelierError):
    """Adapter bytes already bound to another twin (live or revoked): one likeness, one twin."""

    status = 409
    code = "adapter_in_use"


class LikenessInUse(AtelierError):
    """The adapter's likeness fingerprint is within the threshold of another person's twin
    (live or revoked): a near copy of someone's adapter is not a new twin."""

    status = 409
    code = "likeness_in_use"


class RegistryUnavailable(AtelierError):
    """The registry database cannot be reached (restarting, failed over, network): retry."""

    status = 503
    code = "registry_unavailable"

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class ConsentImmutable(AtelierError):
    """A signed consent record was asked to change: record a new version instead."""

    status = 409
    code = "consent_immutable"


class TwinRevoked(AtelierError):
    """The twin's consent was revoked (or the twin deleted): it takes no new consent or adapter."""

    status = 409
    code = "twin_revoked"


class IdempotencyConflict(AtelierError):
    """The idempotency key was already used with a different request body: 409, so a client
    can tell it apart from a validation error (422) of the body itself."""

    status = 409
    code = "idempotency_key_reused"


@contextmanager
def registry_call() -> Iterator[None]:
    """Turn a lost or refused database connection into `RegistryUnavailable` (503, retry)."""
    try:
        yield
    except (OperationalError, InterfaceError):
        raise RegistryUnavailable("the registry database cannot be reached right now; retry shortly") from None
