"""Consent enforcement: may this tenant render this twin, for this use, here and now?

Owns: turning the registry's consent decision into a typed 403 (`consent_missing`,
`use_not_allowed`, `consent_expired`, `revoked`, `territory_not_allowed`), the content
categories a consent record can exclude or lift (`CONSENT_CATEGORIES`, from the lexicon in
`service.tenancy.lexicon`), the prompt policy each consent record implies (global deny list +
its excluded categories + its own deny terms) and the one text check every caller uses
(`check_text`: prompts, edit prompts, job items' `prompt` and `garment_description`), and
the garment rules: a declared category the consent excludes is refused, a garment image a
configured classifier puts in an excluded category is refused whatever its label, and, where
the consent asks for it (`review_unverified_garments`), an item whose garments could not be
verified needs a person's review before delivery. Runs before any GPU work, and once more
before an image is delivered. Must never import bentoml or the engine, or torch (a classifier
is handed in, already loaded, with a function that reads a garment's bytes).

A tenant that was never named in a twin's consent gets `consent_missing` whatever state
the twin is in (absent, revoked, someone else's): the answer never tells one tenant which
twin ids exist for another.

Garment review, precisely. With `review_unverified_garments` on in the governing consent
record, an item is held for review when one of its garment images is unverified (no
classifier runs, or the image has no asset id to classify) or is in a restricted garment
category (`GARMENT_CATEGORIES`) that the consent includes; a declared label is never
evidence. Only catalogue jobs can hold an item (`POST /v1/jobs/approve` and `reject`); a
synchronous generation or edit that would need review is refused with 403
`garment_review_required` (submit it as a job), so the synchronous routes are no way around
the review. Items without garment images are not held: their text goes through the lexicon.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from service.errors import Forbidden, InvalidRequest
from service.registry import ConsentDecision, Registry
from service.tenancy import lexicon
from service.tenancy.auth import Principal
from service.tenancy.policy import GLOBAL_CATEGORIES, PromptPolicy

# Categories a model opts into per consent record, with their terms in every language of the
# lexicon. Swimwear, lingerie and sleepwear are excluded unless a record lists them in
# `included_categories`; a record may exclude more. The global categories (nudity and sexual
# content, minors, real people, violence) are never liftable.
CONSENT_CATEGORIES: dict[str, list[str]] = {name: lexicon.terms(name) for name in lexicon.LEXICON}
DEFAULT_EXCLUDED = ("swimwear", "lingerie", "sleepwear")
# The consent categories a garment image can be in (what a garment classifier may find).
GARMENT_CATEGORIES = ("lingerie", "swimwear", "sleepwear")
# A classifier's score at or above which a garment counts as in a restricted category even
# when another category scores higher (ATELIER_GARMENT_CLASSIFIER_THRESHOLD).
DEFAULT_THRESHOLD = 0.3
GARMENT_SCORES_CACHED = 4096  # classifications kept per process, by the image's sha256

REASONS = {
    "consent_missing": "this API key's tenant has no consent to use this twin",
    "use_not_allowed": "the twin's consent does not cover the declared use",
    "consent_expired": "the twin's consent is not valid at this time",
    "revoked": "the twin's consent has been revoked",
    "territory_not_allowed": "the twin's consent does not cover the declared territory",
    "licence_pending": "the person has not decided this tenant's licence request yet",
    "licence_declined": "the person declined this tenant's licence",
    "licence_revoked": "the person ended this tenant's licence",
    "licence_expired": "this tenant's licence is not valid at this time",
    "licence_out_of_scope": "no licence of this tenant covers the declared use; request a new licence",
}


class ConsentDenied(Forbidden):
    """403 with the reason as its code; audited as a refusal."""

    def __init__(self, reason: str, detail: str = ""):
        # The field at fault: the declared use or territory, else the twin itself.
        field = {"use_not_allowed": "use", "territory_not_allowed": "territory",
                 "licence_out_of_scope": "use"}.get(reason, "twin_id")
        super().__init__(REASONS[reason] + detail, field=field, code=reason)
        self.reason = reason


class GarmentReviewRequired(Forbidden):
    """403: the twin's consent wants a person to review this item's garments, and only a
    catalogue job can hold an item for review."""

    code = "garment_review_required"


def check_categories(excluded: Iterable[str], included: Iterable[str]) -> None:
    """Refuse category names a consent record cannot use (unknown, or global and never liftable)."""
    for field, names in (("excluded_categories", excluded), ("included_categories", included)):
        for name in names:
            if name in GLOBAL_CATEGORIES:
                raise InvalidRequest(f"{name!r} is refused for every twin; it cannot be listed in a consent record", field=field)
            if name not in CONSENT_CATEGORIES:
                raise InvalidRequest(f"unknown content category {name!r}; known: {sorted(CONSENT_CATEGORIES)}", field=field)


def excluded_by(decision: ConsentDecision) -> frozenset[str]:
    """The consent categories a decision's record leaves out (the defaults, less what it includes)."""
    return frozenset((set(DEFAULT_EXCLUDED) | set(decision.excluded_categories)) - set(decision.included_categories))


def classified_category(scores: Mapping[str, float], threshold: float = DEFAULT_THRESHOLD) -> str | None:
    """The restricted garment category a classifier's scores put an image in, or None: the
    best-scoring restricted category when it is the top category overall or scores at least
    `threshold` (doubt goes to the restricted side)."""
    restricted = [(scores.get(name, 0.0), name) for name in GARMENT_CATEGORIES if name in scores]
    if not restricted:
        return None
    score, name = max(restricted)
    return name if score >= threshold or score >= max(scores.values()) else None


@dataclass(frozen=True)
class Grant:
    """What allowed a generation: the consent record (None for the base model), and the
    record's garment terms (its excluded categories, whether unverified garments need review)."""

    twin_id: str | None
    consent_id: int | None = None
    version: int | None = None
    excluded: frozenset[str] = frozenset()
    review_unverified_garments: bool = False
    licence_id: str | None = None
    licence_sha256: str | None = None

    def audit_fields(self) -> dict | None:
        """What the audit record says allowed it: a licence the person signed (its id and the
        hash of its accepted terms), or a paper consent record an operator entered."""
        if self.licence_id is not None:
            return {"basis": "signed", "licence_id": self.licence_id, "licence_sha256": self.licence_sha256}
        return None if self.consent_id is None else {"basis": "paper", "consent_id": self.consent_id,
                                                     "version": self.version}


class ConsentGate:
    def __init__(self, registry: Registry, policy: PromptPolicy | None = None):
        self.registry = registry
        self.policy = policy or PromptPolicy()
        self._policies: dict[int, PromptPolicy] = {}  # signed records never change: cache by id
        self._lock = threading.Lock()
        # A garment classifier (service.assets.garment_classifier), when one is configured,
        # and how to read a garment asset's bytes: (tenant_id, asset_id) -> bytes.
        self.classifier = None
        self._read_garment: Callable[[str, str], bytes] | None = None
        self.threshold = DEFAULT_THRESHOLD
        self._scores: OrderedDict[str, dict[str, float]] = OrderedDict()

    def use_classifier(self, classifier, read_garment: Callable[[str, str], bytes],
                       threshold: float = DEFAULT_THRESHOLD) -> None:
        """Classify garment images from now on: a garment the classifier puts in a restricted
        category is treated as that category whatever its label says."""
        self.classifier, self._read_garment, self.threshold = classifier, read_garment, threshold

    def admit(self, principal: Principal, request) -> Grant:
        """Consent, territory, garment categories and prompt policy for one request, or a typed refusal."""
        if request.twin_id is None:
            if "admin" not in principal.scopes:
                raise Forbidden("twin_id null renders the base model without a twin: admin keys only",
                                field="twin_id", code="base_model_admin_only")
            self.check_text(None, {"prompt": request.prompt, "negative_prompt": request.negative_prompt})
            return Grant(None)
        decision = self.decide(principal, request)
        self._check_garments(decision, getattr(request, "garments", None) or [])
        self.check_text(decision, {"prompt": request.prompt, "negative_prompt": request.negative_prompt})
        return Grant(request.twin_id, decision.consent_id, decision.version, excluded_by(decision),
                     decision.review_unverified_garments, decision.licence_id, decision.licence_sha256)

    def check_text(self, decision: ConsentDecision | None, texts: Mapping[str, str | None]) -> None:
        """The one text check: raise PromptRejected (422 `prompt_policy`, naming the field and
        the category) for the first field whose text the consent's policy refuses. Fields are
        named as the caller's body names them ("prompt", "items.3.garment_description"); one
        whose name ends in `negative_prompt` is checked as a negative prompt (a consent
        category there steers away from it, and is allowed)."""
        policy = self.policy if decision is None else self._policy_for(decision)
        for field, text in texts.items():
            if text:
                policy.check_text(text, field, negative=field.endswith("negative_prompt"))

    @staticmethod
    def _check_garments(decision: ConsentDecision, garments, prefix: str = "") -> None:
        """A garment's declared category goes through the same rules as the prompt: swimwear,
        lingerie and sleepwear only where the consent includes them, nothing it excludes."""
        excluded = excluded_by(decision)
        for index, garment in enumerate(garments):
            if garment.category in excluded:
                raise Forbidden(f"the twin's consent does not cover {garment.category} garments",
                                field=f"{prefix}garments.{index}.category", code="category_not_allowed")

    def admit_garments(self, principal: Principal, grant: Grant, request, *, can_hold: bool) -> bool:
        """After the garments are this tenant's assets: classify each garment image (where a
        classifier runs) and refuse one in a category the consent excludes, whatever its label;
        then say whether the item needs a person's review before delivery (module docstring).
        `can_hold`: the caller can hold the item for review (a catalogue job); otherwise such
        an item is refused with 403 `garment_review_required`."""
        if grant.twin_id is None:
            return False
        review = False
        for index, garment in enumerate(getattr(request, "garments", None) or []):
            category, verified = garment.category, False
            if self.classifier is not None and garment.asset_id is not None:
                found = classified_category(self._classify(principal.tenant_id, garment.asset_id), self.threshold)
                category, verified = found or category, True
                if category in grant.excluded:
                    raise Forbidden(f"the garment image looks like {category}, which the twin's consent does not cover",
                                    field=f"garments.{index}.asset_id", code="category_not_allowed")
            if grant.review_unverified_garments and (not verified or category in GARMENT_CATEGORIES):
                review = True
        if review and not can_hold:
            raise GarmentReviewRequired(
                "the twin's consent requires a person to review garment images that cannot be verified; "
                "submit this as a catalogue job (POST /v1/jobs/submit), whose items are held for review",
                field="garments")
        return review

    def screen_job_item(self, principal: Principal, item, index: int) -> bool:
        """At job submission: refuse an item whose text or declared garment category its
        twin's consent refuses (the field names the item), and say whether the item will need
        review (its consent asks for it, and no classifier runs to verify its garments). An
        item whose consent does not hold now is left for the render-time check, which refuses
        it then; nothing here tells a tenant more than that check would."""
        try:
            decision = self.decide(principal, item)
        except ConsentDenied:
            return False
        prefix = f"items.{index}."
        self._check_garments(decision, item.garments or [], prefix)
        self.check_text(decision, {prefix + name: getattr(item, name)
                                   for name in ("prompt", "garment_description", "negative_prompt")})
        return bool(decision.review_unverified_garments and item.garments and self.classifier is None)

    def _classify(self, tenant_id: str, asset_id: str) -> dict[str, float]:
        """The classifier's scores for one garment image, cached by its sha256 (the asset id)."""
        with self._lock:
            scores = self._scores.get(asset_id)
            if scores is not None:
                self._scores.move_to_end(asset_id)
                return scores
        scores = dict(self.classifier.classify(self._read_garment(tenant_id, asset_id)))  # type: ignore[misc, union-attr]
        with self._lock:
            self._scores[asset_id] = scores
            while len(self._scores) > GARMENT_SCORES_CACHED:
                self._scores.popitem(last=False)
        return scores

    def decide(self, principal: Principal, request) -> ConsentDecision:
        """The consent decision for a twin request; raises `ConsentDenied` when it says no."""
        decision = self.registry.consent.check_consent(request.twin_id, principal.tenant_id, request.use)
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
        return any(tenant_id in record.tenants for record in self.registry.consent.consent_history(twin_id))

    def _policy_for(self, decision: ConsentDecision) -> PromptPolicy:
        with self._lock:
            policy = self._policies.get(decision.licence_id or decision.consent_id)  # type: ignore[arg-type]
        if policy is None:
            extra = {name: CONSENT_CATEGORIES[name] for name in sorted(excluded_by(decision)) if name in CONSENT_CATEGORIES}
            if decision.deny_terms:
                extra["consent_terms"] = list(decision.deny_terms)
            policy = self.policy.with_extra(extra)
            with self._lock:
                self._policies[decision.licence_id or decision.consent_id] = policy  # type: ignore[index]
        return policy
