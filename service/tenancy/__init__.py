"""Who may call what, for which twin: API keys and scopes, rate limits, consent, prompt policy.

`Tenancy` composes them over one registry, in the order a request meets them:
authenticate (401/403 scope) -> rate limit (429) -> consent (403) -> prompt policy (422),
all before any GPU work; then a second consent check before an image is delivered, and a
revocation watcher that cancels in-flight work and evicts adapters on every replica.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.registry import Registry, TwinInfo
from service.tenancy.auth import Authenticator, Principal
from service.tenancy.consent import ConsentGate, Grant
from service.tenancy.policy import PromptPolicy
from service.tenancy.ratelimit import RateLimiter
from service.tenancy.revocation import RevocationWatcher


@dataclass
class Tenancy:
    registry: Registry
    auth: Authenticator
    limiter: RateLimiter
    gate: ConsentGate
    watcher: RevocationWatcher

    @classmethod
    def build(cls, registry: Registry, on_revoked: Callable[[TwinInfo], None], poll_s: float = 0.5,
              policy: PromptPolicy | None = None) -> "Tenancy":
        return cls(registry, Authenticator(registry), RateLimiter(), ConsentGate(registry, policy),
                   RevocationWatcher(registry, on_revoked, poll_s))

    def authenticate(self, authorization: str | None, scope: str) -> Principal:
        return self.auth.authenticate(authorization, scope)

    @contextmanager
    def limits(self, principal: Principal) -> Iterator[None]:
        with self.limiter.admit(principal.key_id, principal.requests_per_minute, principal.max_concurrent_jobs):
            yield


__all__ = ["Grant", "Principal", "Tenancy"]
