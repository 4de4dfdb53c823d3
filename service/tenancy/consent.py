"""Consent enforcement: may this tenant render this twin, for this use, here and now?

Owns: turning the registry's consent decision into a typed 403 (`consent_missing`,
`use_not_allowed`, `consent_expired`, `revoked`, `territory_not_allowed`), the content
categories a consent record can exclude or lift (`CONSENT_CATEGORIES`), and the prompt
policy each consent record implies (global deny list + its excluded categories + its own
deny terms). Runs before any GPU work, and once more before an image is delivered. Must
never import bentoml or the engine.

A tenant that was never named in a twin's consent gets `consent_missing` whatever state
the twin is in (absent, revoked, someone else's): the answer never tells one tenant which
twin ids exist for another.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from service.errors import Forbidden, InvalidRequest
from service.registry import ConsentDecision, Registry
from service.tenancy.auth import Principal
from service.tenancy.policy import GLOBAL_CATEGORIES, PromptPolicy

# Categories a model opts into per consent record. Excluded unless a record lists them in
# `included_categories`; a record may exclude more. The global categories (nudity and sexual
# content, minors, real people, violence) are never liftable.
CONSENT_CATEGORIES: dict[str, list[str]] = {
    "swimwear": ["swimwear", "swimsuit", "bikini", "monokini", "tankini", "bathing suit", "swim trunks", "beachwear"],
    "lingerie": ["lingerie", "underwear", "bra", "bralette", "panties", "thong", "negligee", "boudoir", "garter"],
    "smoking": ["cigarette", "cigar", "smoking", "vape", "vaping"],
    "alcohol": ["alcohol", "beer", "wine", "cocktail", "champagne", "whiskey", "vodka"],
}
DEFAULT_EXCLUDED = ("swimwear", "lingerie")

REASONS = {
    "consent_missing": "this API key's tenant has no consent to use this twin",
    "use_not_allowed": "the twin's consent does not cover the declared use",
    "consent_expired": "the twin's consent is not valid at this time",
    "revoked": "the twin's consent has been revoked",
    "territory_not_allowed": "the twin's consent does not cover the declared territory",
}


class ConsentDenied(Forbidden):
    """403 with the reason as its code; audited as a refusal."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(REASONS[reason] + detail, field="twin_id", code=reason)
        self.reason = reason


def check_categories(excluded: Iterable[str], included: Iterable[str]) -> None:
    """Refuse category names a consent record cannot use (unknown, or global and never liftable)."""
    for field, names in (("excluded_categories", excluded), ("included_categories", included)):
        for name in names:
            if name in GLOBAL_CATEGORIES:
                raise InvalidRequest(f"{name!r} is refused for every twin; it cannot be listed in a consent record", field=field)
            if name not in CONSENT_CATEGORIES:
                raise InvalidRequest(f"unknown content category {name!r}; known: {sorted(CONSENT_CATEGORIES)}", field=field)


@dataclass(frozen=True)
class Grant:
    """What allowed a generation: the consent record (None for the base model)."""

    twin_id: str | None
    consent_id: int | None = None
    version: int | None = None

    def audit_fields(self) -> dict | None:
        return None if self.consent_id is None else {"consent_id": self.consent_id, "version": self.version}


class ConsentGate:
    def __init__(self, registry: Registry, policy: PromptPolicy | None = None):
        self.registry = registry
        self.policy = policy or PromptPolicy()
        self._policies: dict[int, PromptPolicy] = {}  # signed records never change: cache by id
        self._lock = threading.Lock()

    def admit(self, principal: Principal, request) -> Grant:
        """Consent, territory, garment categories and prompt policy for one request, or a typed refusal."""
        if request.twin_id is None:
            if "admin" not in principal.scopes:
                raise Forbidden("twin_id null renders the base model without a twin: admin keys only",
                                field="twin_id", code="base_model_admin_only")
            self.policy.check(request.prompt, request.negative_prompt)
            return Grant(None)
        decision = self.decide(principal, request)
        self._check_garments(decision, getattr(request, "garments", None) or [])
        self._policy_for(decision).check(request.prompt, request.negative_prompt)
        return Grant(request.twin_id, decision.consent_id, decision.version)

    @staticmethod
    def _check_garments(decision: ConsentDecision, garments) -> None:
        """A garment's declared category goes through the same rules as the prompt: swimwear
        and lingerie only where the consent includes them, nothing it excludes."""
        excluded = (set(DEFAULT_EXCLUDED) | set(decision.excluded_categories)) - set(decision.included_categories)
        for index, garment in enumerate(garments):
            if garment.category in excluded:
                raise Forbidden(f"the twin's consent does not cover {garment.category} garments",
                                field=f"garments.{index}.category", code="category_not_allowed")

    def decide(self, principal: Principal, request) -> ConsentDecision:
        """The consent decision for a twin request; raises `ConsentDenied` when it says no."""
        decision = self.registry.check_consent(request.twin_id, principal.tenant_id, request.use)
        if not decision.ok:
            reason = decision.reason or "consent_missing"
            if reason == "revoked" and not decision.tenant_named:  # no extra query: same path for every refusal
                reason = "consent_missing"
            raise ConsentDenied(reason)
        if decision.territories:
            territory = getattr(request, "territory", None)
            if territory not in decision.territories:
                raise ConsentDenied(
                    "territory_not_allowed",
                    f" (declare one of {', '.join(decision.territories)} in 'territory')" if territory is None else "",
                )
        return decision

    def _ever_named(self, twin_id: str, tenant_id: str) -> bool:
        return any(tenant_id in record.tenants for record in self.registry.consent_history(twin_id))

    def _policy_for(self, decision: ConsentDecision) -> PromptPolicy:
        with self._lock:
            policy = self._policies.get(decision.consent_id)  # type: ignore[arg-type]
        if policy is None:
            excluded = (set(DEFAULT_EXCLUDED) | set(decision.excluded_categories)) - set(decision.included_categories)
            extra = {name: CONSENT_CATEGORIES[name] for name in sorted(excluded) if name in CONSENT_CATEGORIES}
            if decision.deny_terms:
                extra["consent_terms"] = list(decision.deny_terms)
            policy = self.policy.with_extra(extra)
            with self._lock:
                self._policies[decision.consent_id] = policy  # type: ignore[index]
        return policy
