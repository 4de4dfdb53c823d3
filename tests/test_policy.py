"""The prompt policy gate: evasions are caught, fashion vocabulary passes, refusals are typed."""

from __future__ import annotations

import pytest

from service.errors import AtelierError
from service.tenancy.policy import GLOBAL_CATEGORIES, PolicyMatch, PromptPolicy, PromptRejected, normalise

POLICY = PromptPolicy()

# (prompt, expected category): every one is an evasion or variant that must be refused.
CAUGHT = [
    ("NUDE model on a runway", "nudity_sexual"),                       # case
    ("ｎｕｄｅ editorial", "nudity_sexual"),                             # fullwidth (NFKC)
    ("n\u00fcd\u00e9 beach shoot", "nudity_sexual"),                   # diacritics
    ("nu\u200bde portrait", "nudity_sexual"),                          # zero-width space
    ("na\u00adked in the studio", "nudity_sexual"),                    # soft hyphen (Cf)
    ("n\u0430k\u0435d editorial", "nudity_sexual"),                    # Cyrillic а, е
    ("t\u03bfpless model", "nudity_sexual"),                           # Greek omicron
    ("p0rn style shot", "nudity_sexual"),                              # leet 0
    ("$3x appeal", "nudity_sexual"),                                   # leet $ 3
    ("exp1icit pose", "nudity_sexual"),                                # leet 1 standing for l
    ("n.u.d.e model", "nudity_sexual"),                                # dots between letters
    ("n-u-d-e model", "nudity_sexual"),                                # hyphens
    ("n u d e model", "nudity_sexual"),                                # spaces
    ("n_u_d_e model", "nudity_sexual"),                                # underscores
    ("a n u d e model", "nudity_sexual"),                              # article kept apart
    ("n. u. d. e model", "nudity_sexual"),                             # dot-and-space
    ("send n00ds", "nudity_sexual"),                                   # slang spelling
    ("nuuuude model", "nudity_sexual"),                                # repeated letters
    ("completely nakeddd", "nudity_sexual"),                           # repeated final letter
    ("artistic nudity", "nudity_sexual"),                              # suffix form
    ("two nudes", "nudity_sexual"),                                    # plural
    ("#NSFW shoot", "nudity_sexual"),
    ("ch1ld wearing a dress", "minors"),                               # leet 1 standing for i
    ("t33n model in jeans", "minors"),                                 # leet 3
    ("kids modelling coats", "minors"),                                # plural of a standalone word
    ("model, 15 years old, in a blazer", "minors"),                    # age under 18
    ("15yo girl in a sundress", "minors"),
    ("15 y/o in a sundress", "minors"),
    ("a fifteen-year-old in a parka", "minors"),
    ("model aged 14 on a runway", "minors"),
    ("s c h o o l g i r l outfit", "minors"),                          # spaced letters, long word
    ("Taylor Swift wearing our dress", "real_people"),
    ("#elonmusk in a suit", "real_people"),                            # joined words
    ("bl00dy runway", "violence"),
    ("model holding a g.u.n", "violence"),
    ("br\u00fcised face close-up", "violence"),
    ("KNIFE  -  ATTACK in an alley", "violence"),                     # multi-word term
]

# Innocent fashion prompts that contain, or sit next to, a denied string: all must pass.
INNOCENT = [
    "tailored wool coat, Middlesex street, overcast light",
    "Essex countryside, trench coat, golden hour",
    "the model plays a therapist in a linen suit",
    "skinny jeans and white sneakers",
    "shotgun sleeve blouse in silk",
    "gunmetal grey satin slip dress",
    "kidskin leather ankle boots",
    "kid leather gloves with a camel coat",
    "nude heels with a black midi dress",
    "nude lipstick, soft studio light",
    "baby blue babydoll dress",
    "Gore-Tex parka in olive",
    "blood orange knit sweater",
    "double-breasted trench with a gun flap",
    "unisex hoodie, canteen green",
    "ten looks for autumn, 35mm film grain",
    "model aged 25, size 10, in a 1990s blazer",
    "minor details on the cuffs, knife pleats",
    "t-shirt, a b c monogram",
    "cotton poplin shirt, vintage band tee",
    "oxblood loafers and a bloodstone ring",
    "nude-toned knit and a blood-red gown",
]


@pytest.mark.parametrize(("prompt", "category"), CAUGHT)
def test_evasion_is_caught(prompt: str, category: str) -> None:
    match = POLICY.find(prompt)
    assert match is not None, f"not caught: {prompt!r} (normalised {normalise(prompt)!r})"
    assert match.category == category
    with pytest.raises(PromptRejected) as info:
        POLICY.check(prompt)
    assert info.value.category == category


@pytest.mark.parametrize("prompt", INNOCENT)
def test_innocent_fashion_prompt_passes(prompt: str) -> None:
    assert POLICY.find(prompt) is None, f"false positive: {POLICY.find(prompt)}"
    POLICY.check(prompt)


def test_allow_listed_phrase_does_not_shield_the_word_elsewhere() -> None:
    assert POLICY.find("nude heels") is None
    match = POLICY.find("nude heels, and the model nude")
    assert match == PolicyMatch("nudity_sexual", "nude", "prompt")
    assert POLICY.find("kid leather, a kid on set") == PolicyMatch("minors", "kid", "prompt")


def test_lingerie_and_swimwear_are_not_global() -> None:
    assert "lingerie" not in {t for terms in GLOBAL_CATEGORIES.values() for t in terms}
    assert POLICY.find("lace lingerie set") is None
    assert POLICY.find("red bikini on the beach") is None


def test_per_record_extra_terms_apply_only_when_added() -> None:
    strict = POLICY.with_extra({"swimwear": ["bikini", "swimsuit"], "nudity_sexual": ["lingerie"]})
    assert strict.find("red b1k1n1 on the beach") == PolicyMatch("swimwear", "bikini", "prompt")
    assert strict.find("two swimsuits") == PolicyMatch("swimwear", "swimsuit", "prompt")
    assert strict.find("lace l1ngerie set").category == "nudity_sexual"
    assert strict.find("nude model").term == "nude"  # the global terms are kept
    # the original policy is unchanged
    assert POLICY.find("red bikini") is None
    assert "swimwear" not in POLICY.categories


def test_negative_prompt_may_name_deny_terms_to_steer_away_from_them() -> None:
    POLICY.check("linen shirt dress, studio light", negative_prompt="nudity, blurry, child, gore")
    with pytest.raises(PromptRejected) as info:
        POLICY.check("naked model", negative_prompt="blurry")
    assert info.value.field == "prompt"


@pytest.mark.parametrize(
    "negative",
    ["clothes, blurry", "CL0THING", "d r e s s e d", "underwear, bra", "censored, mosaic", "no shirt, covered"],
)
def test_negating_clothing_in_the_negative_prompt_is_refused(negative: str) -> None:
    with pytest.raises(PromptRejected) as info:
        POLICY.check("editorial portrait of the model, studio light", negative_prompt=negative)
    assert (info.value.field, info.value.category) == ("negative_prompt", "nudity_sexual")


def test_refusal_is_typed_names_the_category_and_never_echoes_the_prompt() -> None:
    prompt = "editorial portrait of a n.a.k.e.d model beside a red vintage car at dusk"
    with pytest.raises(PromptRejected) as info:
        POLICY.check(prompt)
    err = info.value
    assert isinstance(err, AtelierError)
    assert (err.status, err.code, err.field, err.category) == (422, "prompt_policy", "prompt", "nudity_sexual")
    assert "nudity_sexual" in err.message
    assert prompt not in err.message and prompt not in str(err)
    assert "vintage car" not in err.message


def test_find_reports_the_field_and_earliest_match() -> None:
    assert POLICY.find("gun and clothes", field="negative_prompt") == PolicyMatch("nudity_sexual", "clothes", "negative_prompt")
    assert POLICY.find("gun and nude", field="negative_prompt") is None  # deny terms may be negated
    assert POLICY.find("nude and gun").category == "nudity_sexual"


def test_custom_categories_replace_the_global_list() -> None:
    only = PromptPolicy({"brand": ["competitorco"]})
    assert only.find("nude model") is None
    assert only.find("15 years old") is None  # the age rule belongs to a "minors" category
    assert only.find("C0MPETITORCO logo").category == "brand"


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("ＮＵＤＥ", "nude"),
        ("n\u200bu\u200dd\u2060e", "nude"),
        ("\u0441\u0430f\u0435", "cafe"),
        ("Café Crème", "cafe creme"),
        ("n.u.d.e and shot gun", "nude and shot gun"),
        ("p0rn 1990", "porn 1990"),
    ],
)
def test_normalise(raw: str, folded: str) -> None:
    assert normalise(raw) == folded
