"""API-key authentication and scopes: who is calling, and may they call this route.

Owns: reading `Authorization: Bearer <key>`, resolving it through the registry to a
`Principal` (tenant, key id, scopes, limits) and refusing a missing, unknown, revoked or
under-scoped key. Must never log, store or echo a key; the registry holds only its hash.

Scopes: `generate` (the generation routes), `verify` (`/v1/verify`), `admin` (operator routes:
tenants, keys, twins, consent, usage, and base-model generation with `twin_id: null`). An
admin key is an operator's key: it acts on every tenant, so give it only to operators.
`talent` (a person's read-only key, restricted to their twins by `twin_ids`: the usage of
that likeness, `/v1/usage/talent`, and Studio's talent view).
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

    def audit_fields(self) -> dict[str, str]:
        return {"tenant": self.tenant_id, "key_id": self.key_id}


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Authenticator:
    def __init__(self, registry: Registry):
        self.registry = registry

    def authenticate(self, authorization: str | None, scope: str) -> Principal:
        """The caller behind an Authorization header, holding `scope`; else 401 or 403."""
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorized("send your API key as 'Authorization: Bearer <key>'", code="missing_api_key")
        info = self.registry.authenticate(token)
        if info is None:  # malformed, unknown, wrong secret, revoked or tenant disabled: one answer
            raise Unauthorized("the API key is not valid", code="invalid_api_key")
        if scope not in info.scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope", code="insufficient_scope")
        return Principal(info.key_id, info.tenant_id, info.scopes, info.requests_per_minute, info.max_concurrent_jobs,
                         info.twin_ids)
