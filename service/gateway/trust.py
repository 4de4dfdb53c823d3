"""What the gateway does about hostile traffic: before-authentication limits, compact refusals,
bounded verifies, and generation bounds.

Owns: composing, from the settings, the per-source guard (`service.tenancy.preauth`) with the
in-memory index that vouches for valid keys (`service.tenancy.keyindex`: a spent budget never
refuses a valid key), the
ledger of unauthenticated refusals (`service.audit.refusals`), the verify limits and slots
(`service.provenance.limits`), the public check's own per-source budget and slots (`detects`,
`detect_slots`: a key buys nothing there, and a keyless flood never takes a verify slot), and
the deployment's generation bounds; and `refused`, where
admission (`Tenancy.admit`) and the error handler audit a refusal: compactly, per source,
before any key was accepted (`refused_unauthenticated`, which the edge calls too), in full,
naming the key, after. Must never hold route logic, import bentoml, or import the gateway's
routes (it sits below them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.audit.events import edge_refusal_event
from service.audit.record import AuditError as AuditUnavailable
from service.audit.recorder import Recorder
from service.audit.refusals import RefusalLedger
from service.config import Settings
from service.errors import AtelierError
from service.provenance.limits import VerifyLimits, VerifySlots
from service.tenancy import Principal
from service.tenancy.auth import bearer_token
from service.tenancy.keyindex import KeyIndex
from service.tenancy.preauth import SourceGuard, SourceLimited


@dataclass
class GatewayTrust:
    sources: SourceGuard
    refusals: RefusalLedger
    verify_limits: VerifyLimits
    verify_slots: VerifySlots
    keys: KeyIndex | None = None  # vouches for valid keys from a source whose budget is spent
    detects: SourceGuard | None = None  # public checks per source and minute (/v1/detect, Studio's Detect)
    detect_slots: VerifySlots | None = None  # public checks running at once: one per source, a few in all
    record: Callable[[dict[str, Any]], Any] | None = None  # the audit log's append (refusals after a key)

    @classmethod
    def build(cls, settings: Settings, audit: Recorder, generation=None, registry=None) -> "GatewayTrust":
        if generation is not None:
            generation.bounds = (settings.max_image_side, settings.max_steps, settings.max_images)
        trust = cls(SourceGuard(settings.source_requests_per_minute, settings.source_failures_per_minute),
                    RefusalLedger(audit.record), VerifyLimits.from_settings(settings),
                    VerifySlots(settings.verify_concurrency_per_key, settings.verify_concurrency), record=audit.record)
        trust.detects = SourceGuard(settings.detect_requests_per_minute, 0)
        trust.detect_slots = VerifySlots(1, settings.detect_concurrency, holder="address", busy_code="detect_busy")
        if registry is not None and (settings.source_requests_per_minute or settings.source_failures_per_minute):
            trust.keys = KeyIndex(registry, interval_s=max(0.1, settings.registry_poll_ms / 1000)).start()
        trust.refusals.start()
        return trust

    def vouch(self, token: str | None) -> bool:
        """Whether `token` is a valid key (in memory, no query: `service.tenancy.keyindex`)."""
        return self.keys is not None and self.keys.vouches(token)

    def admit(self, client_ip: str | None, authorization: str | None) -> None:
        """Per-source limits before any key is checked (the edge, in the event loop): a source
        over its budgets is refused (429) unless the request carries a valid key."""
        self.sources.admit(client_ip, vouch=lambda: self.vouch(bearer_token(authorization)))

    def admit_sign_in(self, client_ip: str | None, token: str | None) -> None:
        """The same for a Studio sign-in, whose key comes in the form: failed sign-ins spend the
        same budget as failed API calls (`refused_unauthenticated`), and a valid key passes."""
        self.sources.admit(client_ip, vouch=lambda: self.vouch(token))

    def admit_detect(self, client_ip: str | None) -> None:
        """The public check's budget per source (429 `source_rate_limited`), before its body is
        read: no key is asked for, and none passes a spent budget (in memory, no query)."""
        if self.detects is None:
            return
        try:
            self.detects.admit(client_ip)
        except SourceLimited as spent:
            raise SourceLimited(f"this address is limited to {self.detects.requests_per_minute} public checks a "
                                "minute, with or without a key (POST /v1/verify takes a key)",
                                retry_after=spent.retry_after) from None

    def refused(self, route: str, error: AtelierError, client_ip: str | None, principal: Principal | None = None) -> None:
        """Audit one refusal under `route`: before a key was accepted (`principal` None), as
        `refused_unauthenticated`; after, a full `refused_at_edge` record naming the key. Raises
        503 `audit_unavailable` when the record cannot be written."""
        try:
            if principal is None:
                self.refused_unauthenticated(route, error, client_ip)
            elif self.record is not None:
                self.record(edge_refusal_event(route=route, error=error, client_ip=client_ip) | principal.audit_fields())
        except AuditUnavailable:
            raise
        except AtelierError:
            raise AuditUnavailable() from None

    def refused_unauthenticated(self, path: str, error: AtelierError, client_ip: str | None) -> None:
        """A request refused before any key was accepted: a failed authentication (401) counts
        against its source, and the refusal goes to the compact ledger (which raises 503 when
        the audit log cannot write the first refusal of a kind)."""
        if error.status == 401:
            self.sources.failed(client_ip)
        self.refusals.refused(path, error, client_ip)

    def close(self) -> None:
        if self.keys is not None:
            self.keys.stop()
        self.refusals.close()


__all__ = ["GatewayTrust", "SourceLimited"]
