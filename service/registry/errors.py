"""Typed errors raised by the registry repository.

Owns: the registry's own failure kinds, each a `service.errors.AtelierError` subclass with a
stable code and HTTP status (so `service.http_edge` maps them like every other error). Must
never import anything from `service` but `service.errors`.
"""

from __future__ import annotations

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
