"""What the gateway does about hostile traffic: before-authentication limits, compact refusals,
bounded verifies, and generation bounds.

Owns: composing, from the settings, the per-source guard (`service.tenancy.preauth`), the
ledger of unauthenticated refusals (`service.audit.refusals`), the verify limits and slots
(`service.provenance.limits`), and the deployment's generation bounds; and the one call the
edge and the error handler make for a request refused before any key was accepted. Must
never hold route logic or import bentoml.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.audit.recorder import Recorder
from service.audit.refusals import RefusalLedger
from service.config import Settings
from service.errors import AtelierError
from service.provenance.limits import VerifyLimits, VerifySlots
from service.tenancy.preauth import SourceGuard, SourceLimited


@dataclass
class GatewayTrust:
    sources: SourceGuard
    refusals: RefusalLedger
    verify_limits: VerifyLimits
    verify_slots: VerifySlots

    @classmethod
    def build(cls, settings: Settings, audit: Recorder, generation=None) -> "GatewayTrust":
        if generation is not None:
            generation.bounds = (settings.max_image_side, settings.max_steps, settings.max_images)
        trust = cls(SourceGuard(settings.source_requests_per_minute, settings.source_failures_per_minute),
                    RefusalLedger(audit.record), VerifyLimits.from_settings(settings),
                    VerifySlots(settings.verify_concurrency_per_key, settings.verify_concurrency))
        trust.refusals.start()
        return trust

    def refused_unauthenticated(self, path: str, error: AtelierError, client_ip: str | None) -> None:
        """A request refused before any key was accepted: a failed authentication (401) counts
        against its source, and the refusal goes to the compact ledger (which raises 503 when
        the audit log cannot write the first refusal of a kind)."""
        if error.status == 401:
            self.sources.failed(client_ip)
        self.refusals.refused(path, error, client_ip)

    def close(self) -> None:
        self.refusals.close()


def route_templates(prefix: str = "/v1") -> set[str]:
    """Every public route's path: what a refusal may be filed under (else `(unmatched)`)."""
    from fastapi.routing import APIRoute

    from service.gateway.api import ROUTERS

    return {prefix + r.path for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)}


__all__ = ["GatewayTrust", "SourceLimited"]
