"""A small offline CLIP BPE tokenizer, trained here from an embedded corpus.

Owns: writing `vocab.json` and `merges.txt` in the format `CLIPTokenizer` reads. It never
downloads anything; the vocabulary is the 256 byte symbols (plain and end-of-word), a few
hundred merges learned from fashion-prompt words, and CLIP's two special tokens.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

CORPUS = """
a photo of a fashion model wearing a linen summer dress standing in a bright studio
full body portrait of a woman in a tailored wool coat and leather boots on a city street
close up of a man wearing a denim jacket white t-shirt and black jeans natural light
editorial lookbook shot of a model in a silk blouse with pleated skirt soft shadows
e-commerce product photo on white background model wearing a knitted sweater front view
beach scene with a model in a cotton shirt and shorts golden hour sunlight ocean behind
back view of a model in an evening gown with sequins on a runway high fashion
studio photo of a model wearing sneakers hoodie and cargo trousers streetwear style
portrait of a smiling model with a straw hat floral print sundress garden background
three quarter view of a model in a navy blazer with trousers and loafers office look
blurry low quality deformed hands extra fingers watermark text logo cropped bad anatomy
""".split()


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable unicode table (same as GPT-2's)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def learn_merges(words: list[str], num_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent symbol pair."""
    vocab = collections.Counter(tuple(w[:-1]) + (w[-1] + "</w>",) for w in words if w)
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for word, freq in vocab.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += freq
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        merged: collections.Counter[tuple[str, ...]] = collections.Counter()
        for word, freq in vocab.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        vocab = merged
    return merges


def write_clip_tokenizer(directory: Path, num_merges: int = 300) -> int:
    """Write vocab.json, merges.txt and the tokenizer config; return the vocabulary size."""
    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols]
    merges = learn_merges([w.lower() for w in CORPUS], num_merges)
    tokens += ["".join(pair) for pair in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return len(vocab)
