"""The prompt policy gate: deny-listed terms in a prompt are refused before any generation.

Owns: folding a prompt into a canonical form (`normalise`), the built-in global deny list
(`GLOBAL_CATEGORIES`), the allow-list of innocent fashion phrases that contain a denied word
(`FASHION_ALLOW`), per-consent-record additions (`PromptPolicy.with_extra`) and the typed
refusal (`PromptRejected`, 422 `prompt_policy`). Must never echo the prompt back (the error
names the category and field only), never log, never import bentoml or reach into the
registry: the caller passes in the consent record's extra categories.

How text is folded (`normalise`), in order:
  1. NFKC (fullwidth, ligatures, math alphabets, circled letters -> plain) and casefold;
  2. invisible format characters (Unicode category Cf: zero-width space/joiners, soft hyphen,
     bidi marks) removed;
  3. NFKD and combining marks stripped ("nüdé" -> "nude");
  4. common Cyrillic/Greek lookalikes mapped to Latin ("nаkеd" with Cyrillic а/е -> "naked");
  5. runs of three or more single characters joined by one repeated separator (space . - _ *
     etc.) are glued back together ("n.u.d.e", "n u d e", "n. u. d. e" -> "nude"). Only
     single-character units are glued, so "shot gun" or "t-shirt" stay apart and "gunmetal",
     "shotgun" are not hits. The separator must be the same throughout the run, so the
     article in "a n.a.k.e.d model" stays a word; in a space-separated run a leading "a" or
     "i" is kept apart ("a g u n" -> "a gun"). Mixed separators ("n.u-d e") are not glued;
  6. leetspeak (0 o, 3 e, 4 a, 5 s, 7 t, @ a, $ s, 1 i) inside tokens that hold a letter; pure
     numbers ("35mm" keeps its letters, but "1990" or "50" alone) are left as digits. "1" is
     ambiguous (i or l): it folds to "i", and an "l" in a deny term matches "l" or "i", so
     "exp1icit" and "ch1ld" are both caught.

How terms match: on the folded text, as whole words (no letter or digit on either side), so
"Middlesex", "Essex", "therapist", "skinny", "shotgun sleeve" and "kidskin" are not hits.
Every run of a letter in a term matches one or more of it ("nuuuude", "nakeddd"; "teen"
needs at least two e's, so "ten" is not "teen"). A term may carry a suffix (s, es, ed, ing,
ity, ly, ness, ...), with a final "e" dropped before it ("nudes", "nudity", "bruised").
Words of a multi-word term may be joined by any separators or none ("taylorswift").
Allow-listed phrases ("kid leather", "nude heels", "gore-tex", "gun flap", "blood orange",
and the lexicon's "cocktail dress", "thong sandals") are blanked out before the deny scan; the same word elsewhere in the prompt is still caught.
"nude" as a colour passes only before a listed noun ("nude heels", "nude-toned"): "a dress in
nude" is refused, a false positive accepted on purpose. Doubled letters and suffixes widen a
term a little ("kidding", "gunner" are refused); extend FASHION_ALLOW when a real prompt
trips on one.
With a "minors" category present, ages under 18 are refused too ("15 years old", "15yo",
"15 y/o", "aged 15", "fifteen-year-old").

The negative prompt is checked differently from the prompt. Deny terms there are allowed:
users legitimately write "nudity, gore, child" in a negative prompt to steer away from them,
and such a term makes the image less likely to show it. What a negative prompt can abuse is
the opposite: negating clothing ("clothes, dressed, underwear", or "censored, mosaic")
steers a model towards nudity with an innocent-looking prompt. So the negative prompt is
checked against `NEGATIVE_PROMPT_DENY` (clothing negation and censorship terms, category
`nudity_sexual`) with the same normalisation. A fashion client has no reason to push a model
away from clothes.

Terms may be written in any script: a term in a script without spaces between words
(Japanese, Chinese) matches anywhere in the text, and the markers of
`service.tenancy.lexicon` (`*` for compounds, `=` for no suffixes) apply to every term. The
consent categories (lingerie, swimwear, sleepwear, smoking, alcohol) come from that lexicon,
in nine languages; the global categories here are English only.

The negative prompt is never checked against a consent category: "lingerie, swimwear" there
steers away from them, which is what the consent wants.

What this cannot catch, honestly: semantic paraphrase ("wearing nothing but a smile",
"in her birthday suit"), languages and words not in the lists, misspellings and novel spellings not in the
list, words split into multi-letter pieces ("nu de"), the image itself (a benign prompt can
still yield an unsafe image: output checks belong elsewhere), and real people not on the
name list (a list of names can never be complete; it holds a few examples and is meant to
be extended). It is a cheap, explainable first gate, not a classifier.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from service.errors import AtelierError
from service.tenancy import lexicon

__all__ = [
    "FASHION_ALLOW",
    "GLOBAL_CATEGORIES",
    "NEGATIVE_PROMPT_DENY",
    "PolicyMatch",
    "PromptPolicy",
    "PromptRejected",
    "normalise",
]


class PromptRejected(AtelierError):
    """A prompt matched a deny category. The message names the category, never the prompt."""

    status = 422
    code = "prompt_policy"

    def __init__(self, message: str, *, field: str, category: str, term: str | None = None):
        super().__init__(message, field=field)
        self.category = category
        self.term = term


@dataclass(frozen=True)
class PolicyMatch:
    category: str
    term: str
    field: str


# Lingerie and swimwear are deliberately absent: they are consent-scoped, added per record.
GLOBAL_CATEGORIES: dict[str, list[str]] = {
    "nudity_sexual": [
        "nude", "naked", "nakedness", "topless", "bottomless", "nsfw", "explicit", "porn",
        "porno", "nood", "pornographic", "pornography", "sex", "sexual", "erotic", "erotica",
        "nipple", "genital", "genitalia", "xxx", "hentai", "undressed", "unclothed",
    ],
    "minors": [
        "child", "children", "kid", "kiddie", "teen", "teenage", "teenager", "preteen",
        "underage", "minors", "schoolgirl", "schoolboy", "toddler", "infant", "tween",
    ],
    # Examples only: a list of names cannot be complete. Extend it through configuration.
    "real_people": [
        "taylor swift", "kim kardashian", "elon musk", "beyonce", "rihanna", "kendall jenner",
        "gigi hadid", "zendaya",
    ],
    "violence": [
        "blood", "bloody", "bloodied", "gore", "gory", "gun", "gunshot", "knife attack",
        "stabbed", "stabbing", "wound", "wounded", "corpse", "dead body", "beaten", "bruise",
        "bruised", "murder", "mutilated",
    ],
}

# Terms that must not be negated: in a negative prompt they steer towards nudity.
NEGATIVE_PROMPT_DENY: dict[str, list[str]] = {
    "nudity_sexual": [
        "clothes", "clothing", "clothed", "dressed", "garment", "outfit", "apparel", "attire",
        "underwear", "bra", "panties", "shirt", "pants", "trousers", "swimsuit", "bikini",
        "covered", "modest", "censored", "censor", "mosaic", "pixelated",
    ],
}

# Fashion phrases that contain a denied word. Blanked before the deny scan.
FASHION_ALLOW: list[str] = [
    "kid leather", "kid gloves", "kid glove", "kid skin", "kid suede", "kid mohair",
    "nude heels", "nude heel", "nude pumps", "nude sandals", "nude shoes", "nude boots",
    "nude flats", "nude stilettos", "nude loafers", "nude lipstick", "nude lip", "nude lips",
    "nude lip gloss", "nude nails", "nude nail polish", "nude makeup", "nude make up",
    "nude tone", "nude tones", "nude colour", "nude color", "nude coloured", "nude colored",
    "nude beige", "nude palette", "nude shade", "nude shades", "nude blush", "nude handbag",
    "nude bag", "nude clutch", "nude belt", "nude trench", "nude blazer",
    "blood orange", "blood red", "gun metal", "gun flap", "gun flaps", "gun patch",
    "gore tex", "goretex", "gore skirt", "gored skirt", "six gore", "eight gore",
    *lexicon.ALLOW,  # the restricted-category lexicon's hard negatives ("cocktail dress", "thong sandals")
]

_MINOR_AGE_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17,
}
_NUM = r"(\d{1,3}|" + "|".join(sorted(_MINOR_AGE_WORDS, key=len, reverse=True)) + r")"
_AGE_PATTERNS = [
    # "15 years old", "15-year-old", "15 yrs old", "fifteen year old"
    re.compile(r"(?<![a-z0-9])" + _NUM + r"[\s\-_.]*(?:years?|yrs?)[\s\-_.]*old(?![a-z])"),
    # "15yo", "15 y/o", "15 y.o.", "15 yr old"
    re.compile(r"(?<![a-z0-9])" + _NUM + r"[\s\-_]*(?:yo|y/o|y\.o\.?)(?![a-z0-9])"),
    # "aged 15", "age 15", "age: 15"
    re.compile(r"(?<![a-z])aged?[\s:=\-]*" + _NUM + r"(?![0-9])"),
]

_HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ո": "n", "ս": "u",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ς": "s", "ω": "w",
    # Latin lookalikes
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŀ": "l",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_SEP = r"[\s.\-_*·•,/|+~'\"]"
_UNIT = r"[a-z0-9@$]"
# A run of single units joined by one and the same separator ("n.u.d.e", "n u d e").
_SPACED = re.compile(rf"(?<![a-z0-9@$]){_UNIT}({_SEP}+){_UNIT}(?:\1{_UNIT})+(?![a-z0-9@$])")
_TOKEN_WITH_LETTER = re.compile(r"[a-z0-9@$]*[a-z][a-z0-9@$]*")
_SUFFIXES = ["s", "es", "ed", "ing", "ity", "ities", "ly", "ness", "er", "ers", "ist", "ists"]


def _fold(text: str) -> str:
    """Steps 1-4 of `normalise`: case, compatibility forms, invisibles, diacritics, homoglyphs."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", text.translate(_HOMOGLYPHS))


def _glue(m: re.Match[str]) -> str:
    """Join one run of spaced single characters; a leading English "a"/"i" word stays apart."""
    run, sep = m.group(0), m.group(1)
    units = run.split(sep)
    if sep.isspace() and units[0] in ("a", "i"):
        return units[0] + sep + "".join(units[1:]) if len(units) > 3 else run
    return "".join(units)


def normalise(text: str) -> str:
    """The canonical form that deny and allow terms are matched against (see module docstring)."""
    text = _fold(text)
    text = _SPACED.sub(_glue, text)
    return _TOKEN_WITH_LETTER.sub(lambda m: m.group(0).translate(_LEET), text)


def _letters(word: str) -> str:
    """A regex for one word: each run of a letter matches one or more; 'l' also matches 'i'."""
    out = []
    for run in re.finditer(r"(.)\1*", word):
        ch, n = run.group(1), len(run.group(0))
        cls = "[li]" if ch == "l" else re.escape(ch)
        out.append(cls + ("+" if n == 1 else "{%d,}" % n))
    return "".join(out)


_EDGE = re.compile(r"[a-z0-9]")


def _term_regex(term: str, *, suffixes: bool) -> str:
    """One term's regex. Markers (service.tenancy.lexicon): a leading `*` lets the term end a
    compound word, a trailing `*` lets it begin one, a trailing `=` turns suffixes off."""
    term = term.strip()
    exact = term.endswith("=")
    term = term.rstrip("=")
    open_left, open_right = term.startswith("*"), term.endswith("*")
    words = re.findall(r"[^\W_]+", normalise(term.strip("*")))
    if not words:
        raise ValueError(f"empty policy term: {term!r}")
    head, last = words[:-1], words[-1]
    tail = _letters(last)
    if suffixes and not exact and not open_right:
        alts = "|".join(_letters(s) for s in sorted(_SUFFIXES, key=len, reverse=True))
        if last.endswith("e") and len(last) > 2:
            tail = f"(?:{tail}(?:{alts})?|{_letters(last[:-1])}(?:{alts}))"
        else:
            tail = f"{tail}(?:{alts})?"
    body = r"[^a-z0-9]*".join([_letters(w) for w in head] + [tail])
    # Whole words where the term starts or ends with a Latin letter or digit; a term in a
    # script written without spaces (Japanese, Chinese) matches anywhere.
    left = "" if open_left or not _EDGE.match(words[0][0]) else r"(?<![a-z0-9])"
    right = "" if open_right or not _EDGE.match(last[-1]) else r"(?![a-z0-9])"
    return rf"{left}{body}{right}"


_RUNS = re.compile(r"(.)\1+")


def _collapsed(folded: str) -> str:
    """The prefilter's view of folded text: "l" read as "i" (as terms match it) and every run
    of one character as one ("biiikini" -> "bikini")."""
    return _RUNS.sub(r"\1", folded.replace("l", "i"))


def _key(term: str) -> str:
    """Up to three characters that every match of `term` shows in `_collapsed` text: the start
    of its first word (less a final "e" that a suffix may drop)."""
    words = re.findall(r"[^\W_]+", normalise(term.strip().rstrip("=").strip("*")))
    first = words[0]
    if len(words) == 1 and first.endswith("e") and len(first) > 2:
        first = first[:-1]
    return _collapsed(first)[:3]


@functools.lru_cache(maxsize=16384)
def _pattern(term: str, suffixes: bool) -> re.Pattern[str]:
    """A term's regex, compiled the first time a text might hold the term, then kept."""
    return re.compile(_term_regex(term, suffixes=suffixes))


class _TermSet:
    """Terms compiled one regex each, tried only where their key appears in the text: one
    alternation of hundreds of terms tries every term at every position (about 250 ms for a
    long prompt with the lexicon), the key lookup rules out nearly all of them at once."""

    def __init__(self, terms, *, suffixes: bool = True):
        self.terms: tuple[str, ...] = tuple(terms)
        self.suffixes = suffixes
        for term in self.terms:
            _term_regex(term, suffixes=suffixes)  # a malformed term fails here, not on a request
        self._entries = [(index, _key(term), term) for index, term in enumerate(self.terms)]

    def _candidates(self, collapsed: str, grams: set[str]):
        for index, key, term in self._entries:
            if (key in grams) if len(key) == 3 else (key in collapsed):
                yield index, _pattern(term, self.suffixes)

    def search(self, folded: str, collapsed: str, grams: set[str]) -> tuple[int, str] | None:
        """(start, term) of the earliest match; of two at one start, the term listed first."""
        best: tuple[int, int] | None = None
        for index, pattern in self._candidates(collapsed, grams):
            m = pattern.search(folded)
            if m is not None and (best is None or m.start() < best[0]):
                best = (m.start(), index)
        return None if best is None else (best[0], self.terms[best[1]])

    def blank(self, folded: str, collapsed: str, grams: set[str]) -> str:
        for _, pattern in self._candidates(collapsed, grams):
            folded = pattern.sub(lambda m: " " * len(m.group(0)), folded)
        return folded


def _grams(collapsed: str) -> set[str]:
    return {collapsed[i:i + 3] for i in range(len(collapsed) - 2)}


class PromptPolicy:
    """A deny list by category plus an allow-list of fashion phrases; immutable once built."""

    def __init__(self, categories: dict[str, list[str]] | None = None, *, allow: list[str] | None = None):
        source = GLOBAL_CATEGORIES if categories is None else categories
        self.categories: dict[str, tuple[str, ...]] = {
            name: tuple(dict.fromkeys(t.strip() for t in terms if t.strip())) for name, terms in source.items()
        }
        self.allow: tuple[str, ...] = tuple(FASHION_ALLOW if allow is None else allow)
        self._allow = _TermSet(self.allow)
        self._deny = {name: _TermSet(terms) for name, terms in self.categories.items()}
        self._negative = {name: _TermSet(terms) for name, terms in NEGATIVE_PROMPT_DENY.items()}

    def with_extra(self, extra: dict[str, list[str]]) -> "PromptPolicy":
        """A new policy with a consent record's extra terms added (new or existing categories)."""
        merged = {name: list(terms) for name, terms in self.categories.items()}
        for name, terms in extra.items():
            merged.setdefault(name, []).extend(terms)
        return PromptPolicy(merged, allow=list(self.allow))

    def find(self, text: str, field: str = "prompt", *, negative: bool | None = None) -> PolicyMatch | None:
        """The earliest deny match in `text`, or None. Allow-listed phrases are blanked first.
        A negative prompt (`negative`, by default `field == "negative_prompt"`) is checked
        against the negation list instead (module docstring)."""
        if not text:
            return None
        if negative is None:
            negative = field == "negative_prompt"
        folded = normalise(text)
        collapsed = _collapsed(folded)
        grams = _grams(collapsed)
        folded = self._allow.blank(folded, collapsed, grams)  # the prefilter's view stays a superset
        best: tuple[int, PolicyMatch] | None = None
        for name, termset in (self._negative if negative else self._deny).items():
            hit = termset.search(folded, collapsed, grams)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = (hit[0], PolicyMatch(name, hit[1], field))
        if negative:
            return best[1] if best else None
        if best is None and "minors" in self._deny:
            age = _under_age(_fold(text))
            if age is not None:
                return PolicyMatch("minors", f"age {age}", field)
        return best[1] if best else None

    def check(self, prompt: str, negative_prompt: str | None = None) -> None:
        """Raise PromptRejected for the first deny match in the prompt, then for a negated
        clothing term in the negative prompt (see the module docstring for why they differ)."""
        self.check_text(prompt, "prompt")
        self.check_text(negative_prompt or "", "negative_prompt", negative=True)

    def check_text(self, text: str, field: str, *, negative: bool = False) -> None:
        """Raise PromptRejected, naming `field` and the category, if `text` matches."""
        match = self.find(text, field, negative=negative)
        if match is not None:
            raise PromptRejected(
                f"the {match.field} was refused by the content policy (category: {match.category})",
                field=match.field,
                category=match.category,
                term=match.term,
            )


def _under_age(folded: str) -> int | None:
    for pattern in _AGE_PATTERNS:
        for m in pattern.finditer(folded):
            raw = m.group(1)
            age = _MINOR_AGE_WORDS.get(raw) if not raw.isdigit() else int(raw)
            if age is not None and age < 18:
                return age
    return None
