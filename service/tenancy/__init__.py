"""Who may call what, for which twin: API keys and scopes, rate limits, consent, prompt policy.

`Tenancy` composes them over one registry, in the order a request meets them:
admit (`Tenancy.admit`: key 401 -> scope 403 -> rate limit 429, fleet-wide in the registry, or 503
`limits_unavailable` when it cannot be counted; refusals audited) -> consent
(403) -> prompt policy (422), all before any GPU work; then a second consent check before an
image is delivered, and a revocation watcher that cancels in-flight work and evicts adapters
on every replica.

`admit` is the one admission of the service: the API's route dependencies, the HTTP edge's
upload check, Studio's pages and sign-in, and the job dispatcher (as the key that submitted a
job) all go through it. Must never decide consent there, and never audit a refusal twice.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from service.audit.actions import audited
from service.errors import AtelierError
from service.registry import Registry, TwinInfo
from service.tenancy.auth import Authenticator, Credential, KeyRef, Principal
from service.tenancy.consent import ConsentGate, Grant
from service.tenancy.policy import PromptPolicy
from service.tenancy.ratelimit import RateLimiter
from service.tenancy.revocation import RevocationWatcher

# (route, error, client address, the principal once its key was accepted): records a refusal.
Refused = Callable[[str, AtelierError, str | None, Principal | None], None]


class Limits(enum.Enum):
    """Which of a key's own limits an admission spends and holds."""

    # One request: a token of the key's requests per minute, and one of its concurrent slots
    # held until the admitted block ends (every API request, every Studio action).
    REQUEST = "request"
    # None: the key and its scope are checked as they are now, nothing is spent. For a job's
    # items (the submission spent its request, and `max_concurrent_jobs` counts the job;
    # the dispatcher's window and fair share pace the items), for the edge's upload check
    # (the route's own admission spends), and for Studio's page reads (as today: only its
    # actions spend).
    NONE = "none"


@dataclass
class Tenancy:
    registry: Registry
    auth: Authenticator
    limiter: RateLimiter
    gate: ConsentGate
    watcher: RevocationWatcher
    refused: Refused | None = None  # where refusals are audited (the gateway's trust: compact before a key)

    @classmethod
    def build(cls, registry: Registry, on_revoked: Callable[[TwinInfo], None], poll_s: float = 0.5,
              policy: PromptPolicy | None = None) -> "Tenancy":
        return cls(registry, Authenticator(registry), RateLimiter(store=registry.limits), ConsentGate(registry, policy),
                   RevocationWatcher(registry, on_revoked, poll_s))

    @contextmanager
    def admit(self, credential: Credential, scope: str | tuple[str, ...] | None, *, route: str | None = None,
              client_ip: str | None = None, limits: Limits = Limits.REQUEST) -> Iterator[Principal]:
        """Admit the caller behind `credential` holding one of `scope` (None: any key), within
        its key's `limits` for the block; yields its Principal. A refusal (401, 403, 429) is
        audited under `route` before it is raised: compactly, per source, until a key was
        accepted; in full, naming the key, after. `route=None`: the caller records the refusal
        itself, in a larger record (a generation's own record names why it was refused)."""
        with ExitStack() as held:
            principal = None
            try:
                principal = self.auth.principal(credential, scope)
                if limits is Limits.REQUEST:
                    held.enter_context(self.limiter.admit(principal.key_id, principal.requests_per_minute,
                                                          principal.max_concurrent_jobs))
            except AtelierError as exc:
                if route is not None and self.refused is not None and not getattr(exc, "audited", False):
                    self.refused(route, exc, client_ip, principal)
                    audited(exc)
                raise
            yield principal


__all__ = ["Grant", "KeyRef", "Limits", "Principal", "Tenancy"]
