"""The restricted-category lexicon (service.tenancy.lexicon) through the one text check every
caller uses (`ConsentGate.check_text`), then through the API: generate, a job's
`garment_description` at submission, and an edit's prompt.

Half the phrases are fashion a client writes innocently (the hard negatives: "briefcase",
"slip-on sneakers", "cocktail dress", "les bras croisés"), half name a restricted category in
some language or disguise. A consent that excludes lingerie, swimwear and sleepwear (the
defaults) and smoking and alcohol refuses the second half and passes the first."""

from __future__ import annotations

import pytest

from service.registry import ConsentDecision
from service.tenancy.consent import ConsentGate
from service.tenancy.policy import PromptRejected
from tests.conftest import SMALL

# A consent that lifts nothing and also excludes smoking and alcohol.
STRICT = ConsentDecision(True, None, consent_id=10_001, version=1, excluded_categories=("smoking", "alcohol"))
# One that includes every consent category: the lexicon then refuses nothing.
LIFTED = ConsentDecision(True, None, consent_id=10_002, version=1,
                         included_categories=("lingerie", "swimwear", "sleepwear", "smoking", "alcohol"))

ALLOWED = [
    "linen shirt", "swing dress", "briefcase", "leather briefcase on the floor", "a design brief for a summer shoot",
    "slip-on sneakers", "slip dress in silk", "non-slip sole", "swimming pool background", "by the pool, summer light",
    "beach scene at golden hour", "one-piece jumpsuit", "teddy coat", "full body shot", "bracelet and braided hair",
    "zebra print bag", "cobra print boots", "brass buttons", "brand logo tee", "wide-leg pants", "culottes in navy",
    "cocktail dress", "cocktail ring", "champagne satin gown", "wine red blazer", "wine-coloured velvet",
    "cognac leather boots", "smoking jacket in velvet", "un smoking noir", "cigarette trousers",
    "thong sandals", "garter stitch scarf", "stocking stitch jumper", "babydoll dress", "corset belt",
    "knickerbockers and a tweed cap", "tights and loafers", "camisole top", "bodysuit with jeans",
    "les bras croisés", "sac au bras", "chemise en lin", "robe longue rouge", "maillot jaune", "costume gris",
    "Zigarettenhose", "kimono jacket", "loungewear set", "ジーンズのモデル", "デニムショーツ", "白色连衣裙",
    "boxer braids", "vines on the wall", "string of pearls", "a boxy blazer",
]
RESTRICTED = [
    # the synonyms
    ("corset and stockings", "lingerie"), ("g-string", "lingerie"), ("bustier", "lingerie"), ("knickers", "lingerie"),
    ("speedo", "swimwear"), ("swim briefs", "swimwear"), ("boxer briefs", "lingerie"), ("negligee", "lingerie"),
    # English forms and disguises
    ("lace bralette", "lingerie"), ("push-up bra", "lingerie"), ("a lace bras set", "lingerie"), ("l1ngerie", "lingerie"),
    ("LINGERIE", "lingerie"), ("l i n g e r i e", "lingerie"), ("liiingerie", "lingerie"), ("ｌｉｎｇｅｒｉｅ", "lingerie"),
    ("lin\u200bgerie", "lingerie"), ("b1k1n1", "swimwear"), ("bikinis on the sand", "swimwear"), ("swimsuit", "swimwear"),
    ("swim-suit", "swimwear"), ("bathing suit", "swimwear"), ("tankini", "swimwear"), ("board shorts", "swimwear"),
    ("gstring", "lingerie"), ("garter belt", "lingerie"), ("fishnet stockings", "lingerie"), ("pajamas", "sleepwear"),
    ("silk pyjamas", "sleepwear"), ("nightgown", "sleepwear"), ("bathrobe", "sleepwear"),
    ("holding a cigarette", "smoking"), ("a glass of champagne", "alcohol"), ("beer bottle", "alcohol"),
    # French, German, Italian, Spanish, Portuguese, Dutch
    ("soutien-gorge en dentelle", "lingerie"), ("sous-vêtements", "lingerie"), ("maillot de bain", "swimwear"),
    ("chemise de nuit", "sleepwear"), ("Unterwäsche", "lingerie"), ("Damenunterwäsche aus Spitze", "lingerie"),
    ("Badeanzug", "swimwear"), ("Bikinihose", "swimwear"), ("Schlafanzug", "sleepwear"), ("BH", "lingerie"),
    ("reggiseno", "lingerie"), ("costume da bagno", "swimwear"), ("pigiama", "sleepwear"), ("perizoma", "lingerie"),
    ("lencería", "lingerie"), ("lenceria", "lingerie"), ("bañador", "swimwear"), ("traje de baño", "swimwear"),
    ("ropa interior", "lingerie"), ("sutiã", "lingerie"), ("biquíni", "swimwear"), ("calcinha", "lingerie"),
    ("ondergoed", "lingerie"), ("badpak", "swimwear"), ("zwembroek", "swimwear"), ("nachtjapon", "sleepwear"),
    # Japanese and Chinese
    ("ランジェリー姿のモデル", "lingerie"), ("水着", "swimwear"), ("ビキニ", "swimwear"), ("パジャマ", "sleepwear"),
    ("内衣模特", "lingerie"), ("比基尼", "swimwear"), ("睡衣", "sleepwear"),
    # Cyrillic lookalikes and a prefix that hides nothing
    ("bikinі", "swimwear"), ("studio photo, model in lingerie", "lingerie"),
]


@pytest.fixture(scope="module")
def gate() -> ConsentGate:
    return ConsentGate(registry=None)  # type: ignore[arg-type]: only the policy part is used


def refusal(gate: ConsentGate, decision, text: str, field: str = "prompt") -> PromptRejected | None:
    try:
        gate.check_text(decision, {field: text})
    except PromptRejected as exc:
        return exc
    return None


def test_the_tables_are_a_hundred_phrases_half_of_them_innocent():
    assert len(ALLOWED) >= 50 and len(RESTRICTED) >= 50 and len(ALLOWED) + len(RESTRICTED) >= 100
    assert len(set(ALLOWED)) == len(ALLOWED) and len({p for p, _ in RESTRICTED}) == len(RESTRICTED)


def test_every_restricted_phrase_is_refused_in_its_category(gate):
    """Each language, spelling, plural, separator, diacritic and disguise of the lexicon."""
    missed = {}
    for phrase, category in RESTRICTED:
        exc = refusal(gate, STRICT, phrase)
        if exc is None or exc.category != category:
            missed[phrase] = exc and exc.category
    assert missed == {}


def test_no_innocent_fashion_phrase_is_refused(gate):
    """The hard negatives: words that contain or resemble a restricted term, and the phrases
    (cocktail dress, thong sandals, les bras croisés) the old list refused."""
    refused = {phrase: exc.category for phrase in ALLOWED if (exc := refusal(gate, STRICT, phrase)) is not None}
    assert refused == {}


def test_a_consent_that_includes_the_categories_lets_them_through(gate):
    refused = {phrase: exc.category for phrase, _ in RESTRICTED if (exc := refusal(gate, LIFTED, phrase)) is not None}
    assert refused == {}


def test_an_allowed_phrase_does_not_shelter_a_restricted_word_beside_it(gate):
    for text in ("thong sandals and a lace thong", "cocktail dress, then bikini", "les bras croisés en lingerie"):
        assert refusal(gate, STRICT, text) is not None, text


@pytest.mark.parametrize("field", ["negative_prompt", "items.2.negative_prompt"])
def test_a_negative_prompt_excluding_restricted_categories_is_not_refused(gate, field):
    """A consent category in the negative prompt steers away from it, as the consent wants."""
    assert refusal(gate, STRICT, "lingerie, lencería, Unterwäsche, swimwear, pajamas, cigarette", field) is None
    assert refusal(gate, STRICT, "lingerie", "prompt") is not None


def test_the_refusal_names_the_field_and_category_never_the_text(gate):
    exc = refusal(gate, STRICT, "a red speedo", "items.3.garment_description")
    assert (exc.status, exc.code, exc.field, exc.category) == (422, "prompt_policy", "items.3.garment_description",
                                                               "swimwear")
    assert "speedo" not in exc.message


# -- through the API ---------------------------------------------------------------------


def error(response) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body.get("field")


@pytest.mark.parametrize("prompt", ["corset and stockings", "model in a g-string", "Badeanzug am Strand",
                                    "swim briefs, studio", "ランジェリー"])
def test_generate_refuses_restricted_synonyms_for_a_consent_that_excludes_them(client, prompt):
    response = client.post("/v1/generate", json={"twin_id": "demo-ava", "prompt": prompt, **SMALL})
    assert error(response) == (422, "prompt_policy", "prompt")


def test_generate_passes_hard_negatives_and_a_negative_prompt_naming_lingerie(client):
    body = {"twin_id": "demo-ava", "prompt": "thong sandals, garter stitch cardigan, studio", "negative_prompt":
            "lingerie, swimwear", **SMALL}
    assert client.post("/v1/generate", json=body).status_code == 200


@pytest.mark.parametrize("field, value", [("garment_description", "a black bustier"),
                                          ("garment_description", "knickers and a corset"),
                                          ("prompt", "wearing a tankini")])
def test_a_job_item_naming_a_restricted_category_is_refused_at_submission(client, field, value):
    item = {"twin_id": "demo-ava", "scene": "studio_white", **SMALL, field: value}
    response = client.post("/v1/jobs/submit", json={"items": [{"twin_id": "demo-ava", "prompt": "linen shirt", **SMALL},
                                                              item]})
    assert error(response) == (422, "prompt_policy", f"items.1.{field}")


def test_an_edit_prompt_naming_a_restricted_category_is_refused(client, demo_home):
    source = client.post("/v1/generate", json={"twin_id": "demo-ava", "prompt": "studio photo", **SMALL})
    assert source.status_code == 200, source.text
    mask = (demo_home / "demo" / "assets" / "mask-torso.png").read_bytes()
    mask_id = client.post("/v1/assets", files={"file": ("m.png", mask, "image/png")}, data={"kind": "mask"}).json()["asset_id"]
    body = {"twin_id": "demo-ava", "prompt": "re-dress her in a string bikini", "steps": 2,
            "source": {"generation_id": source.json()["generation_id"]}, "mask_asset_id": mask_id}
    assert error(client.post("/v1/edit", json=body)) == (422, "prompt_policy", "prompt")
