"""API-key authentication and scopes: who is calling, and may they call this route.

Owns: resolving a credential to a `Principal` (tenant, key id, scopes, limits): an
`Authorization: Bearer <key>` header, or a key already identified (`KeyRef`: a Studio
session's key, the key that submitted a job), checked as the registry says it is now; and
refusing a missing, unknown, revoked or under-scoped key. Must never log, store or echo a key;
the registry holds only its hash. `service.tenancy.Tenancy.admit` is the one entry point that
uses this (with limits and the audit of refusals); nothing else resolves keys.

Scopes: `generate` (the generation routes), `verify` (`/v1/verify`), `admin` (operator routes:
tenants, keys, twins, consent, usage, and base-model generation with `twin_id: null`). An
admin key is an operator's key: it acts on every tenant, so give it only to operators.
`talent` (a person's key, restricted to their twins by `twin_ids`: the usage of that
likeness, `/v1/usage/talent`, Studio's talent view, and deciding or ending the licences of
those twins, as the person, or as their `representative` or a minor's `guardian` when the key
also holds that scope). `licensing` (a brand's key: request licences, list its own). `usage`
(a brand's key: `GET /v1/usage` for its own tenant only: images generated, delivered and
rejected; an `admin` key reads every tenant's).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import Forbidden, Unauthorized
from service.registry import Registry


@dataclass(frozen=True)
class Principal:
    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    requests_per_minute: int
    max_concurrent_jobs: int
    twin_ids: frozenset[str] | None = None  # a talent key's twins; None: not restricted

    @property
    def signs_as(self) -> str:
        """The role a talent key decides licences in: person, representative or guardian."""
        return "guardian" if "guardian" in self.scopes else "representative" if "representative" in self.scopes \
            else "person"

    def audit_fields(self) -> dict[str, str]:
        return {"tenant": self.tenant_id, "key_id": self.key_id}


@dataclass(frozen=True)
class KeyRef:
    """A key already identified by its id (a Studio session's, the key that submitted a job),
    to be checked as it is now: revoked keys, disabled tenants and lost scopes are refused."""

    key_id: str
    tenant_id: str | None = None  # when set, the key must still belong to this tenant
    named: str = "this API key"  # how a refusal names it ("the API key that submitted this job")


# What a caller presents: an Authorization header (or None), a key known by id, or the Principal
# this same request was already admitted as (Studio holds a signed-in key's limits per action).
Credential = str | None | KeyRef | Principal


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def scopes_of(scope: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return () if scope is None else (scope,) if isinstance(scope, str) else tuple(scope)


class Authenticator:
    def __init__(self, registry: Registry):
        self.registry = registry

    def authenticate(self, authorization: str | None, scope: str) -> Principal:
        """The caller behind an Authorization header, holding `scope`; else 401 or 403."""
        return self.principal(authorization, scope)

    def principal(self, credential: Credential, scope: str | tuple[str, ...] | None) -> Principal:
        """The caller behind `credential`, holding one of `scope` (None: any key); else 401 or 403."""
        named = "this API key"
        if isinstance(credential, Principal):
            principal = credential
        elif isinstance(credential, KeyRef):
            named = credential.named
            info = self.registry.tenants.active_key(credential.key_id)
            if info is None or (credential.tenant_id is not None and info.tenant_id != credential.tenant_id):
                raise Unauthorized(f"{named} is no longer valid", code="invalid_api_key")
            principal = _principal(info)
        else:
            token = bearer_token(credential)
            if token is None:
                raise Unauthorized("send your API key as 'Authorization: Bearer <key>'", code="missing_api_key")
            info = self.registry.tenants.authenticate(token)
            if info is None:  # malformed, unknown, wrong secret, revoked or tenant disabled: one answer
                raise Unauthorized("the API key is not valid", code="invalid_api_key")
            principal = _principal(info)
        wanted = scopes_of(scope)
        if wanted and not any(s in principal.scopes for s in wanted):
            raise Forbidden(f"{named} lacks the {' or '.join(repr(s) for s in wanted)} scope", code="insufficient_scope")
        return principal


def _principal(info) -> Principal:
    return Principal(info.key_id, info.tenant_id, info.scopes, info.requests_per_minute, info.max_concurrent_jobs,
                     info.twin_ids)
