"""Garment classifiers: what a garment image shows, whatever its label says.

Owns: the `GarmentClassifier` interface (`classify(image bytes) -> {category: score}`, scores
summing to 1 over `CATEGORIES`), the zero-shot CLIP implementation (`ClipGarmentClassifier`:
a `transformers.CLIPModel` and its tokenizer from a local directory, the image against a few
text prompts per category), and `load_garment_classifier(settings)`, which builds it at
start-up when `ATELIER_GARMENT_CLASSIFIER_PATH` is set and logs a notice when it is not.
Must never download anything (every load is `local_files_only`), never decide consent (the
gate in `service.tenancy.consent` turns scores into a verdict), and never import torch or
transformers at module import: the gateway imports this module.

Where it runs, and why: in the gateway, because the verdict decides admission (refuse, hold
for review, or pass) before any render call, and the gateway is where consent is decided.
The gateway must stay torch-free by default, so torch and transformers are imported only
inside `ClipGarmentClassifier.load`, which runs only when the setting is given. Configuring a
classifier therefore puts torch in the gateway process (memory: torch itself, plus about
600 MB for ViT-B/32 weights in float32; start-up: seconds more) and its CPU time per new
garment image (cached by sha256 in the gate). A deployment that wants a torch-free gateway
leaves it unset, and consents that need it ask for human review instead
(`review_unverified_garments`). The demo runs without one.

A CLIP zero-shot verdict is a screen, not proof: it can be fooled by unusual product
photography and adversarial images, and the tiny random model of the tests says nothing
about accuracy (it proves the wiring only). Measure a real model on your own catalogue
before relying on it, and keep `review_unverified_garments` for the consents that matter most.
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger("atelier.garments")

# The categories a classifier scores, and the text prompts CLIP compares an image with (their
# embeddings are averaged per category: prompt ensembling). The restricted ones are the
# consent categories a garment can be in (service.tenancy.consent.GARMENT_CATEGORIES).
PROMPTS: dict[str, list[str]] = {
    "lingerie": ["a product photo of lingerie", "a photo of a bra", "a photo of lace underwear",
                 "a photo of a corset", "a photo of panties", "a photo of stockings and a garter belt"],
    "swimwear": ["a product photo of swimwear", "a photo of a bikini", "a photo of a swimsuit",
                 "a photo of swim trunks"],
    "sleepwear": ["a product photo of sleepwear", "a photo of pajamas", "a photo of a nightgown",
                  "a photo of a bathrobe"],
    "tops": ["a product photo of a shirt", "a photo of a t-shirt", "a photo of a blouse", "a photo of a sweater"],
    "bottoms": ["a product photo of trousers", "a photo of jeans", "a photo of a skirt", "a photo of shorts"],
    "one-pieces": ["a product photo of a dress", "a photo of a jumpsuit"],
    "outerwear": ["a product photo of a coat", "a photo of a jacket", "a photo of a blazer"],
    "shoes": ["a product photo of shoes", "a photo of boots", "a photo of sneakers"],
    "accessories": ["a product photo of a handbag", "a photo of a hat", "a photo of a scarf", "a photo of jewellery"],
}
CATEGORIES = tuple(PROMPTS)
_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's image normalisation
_STD = (0.26862954, 0.26130258, 0.27577711)


class GarmentClassifier(Protocol):
    """Anything that scores a garment image over categories (a fake one in tests)."""

    name: str

    def classify(self, image: bytes) -> dict[str, float]:
        """{category: score} for one encoded image (PNG, JPEG or WebP already bounds-checked)."""
        ...


class ClipGarmentClassifier:
    """Zero-shot CLIP over the garment image; text embeddings computed once at load."""

    def __init__(self, model, text_embeds, image_size: int, name: str, prompts: dict[str, list[str]]):
        self.model = model
        self.text_embeds = text_embeds  # (categories, dim), unit length
        self.image_size = image_size
        self.name = name
        self.categories = tuple(prompts)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, prompts: dict[str, list[str]] | None = None) -> "ClipGarmentClassifier":
        """A CLIPModel directory (config.json, safetensors weights, tokenizer files): local only."""
        import torch  # noqa: PLC0415: only where a classifier is configured (module docstring)
        from transformers import CLIPModel, CLIPTokenizer  # noqa: PLC0415

        prompts = prompts or PROMPTS
        path = Path(path)
        model = CLIPModel.from_pretrained(path, local_files_only=True, use_safetensors=True).eval()
        tokenizer = CLIPTokenizer.from_pretrained(path, local_files_only=True)
        with torch.inference_mode():
            embeds = []
            for texts in prompts.values():
                tokens = tokenizer(texts, padding=True, return_tensors="pt")
                text = model.get_text_features(**tokens)
                text = getattr(text, "pooler_output", text)  # a tensor, or an output object in newer transformers
                text = torch.nn.functional.normalize(text, dim=-1).mean(dim=0)
                embeds.append(torch.nn.functional.normalize(text, dim=-1))
            text_embeds = torch.stack(embeds)
        return cls(model, text_embeds, int(model.config.vision_config.image_size), path.name, prompts)

    def _pixels(self, image: bytes):
        import torch  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415

        with Image.open(io.BytesIO(image)) as opened:
            rgb = opened.convert("RGB")
        side = self.image_size
        scale = side / min(rgb.size)
        rgb = rgb.resize((max(side, round(rgb.width * scale)), max(side, round(rgb.height * scale))),
                         Image.Resampling.BICUBIC)
        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
        rgb = rgb.crop((left, top, left + side, top + side))
        pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).reshape(side, side, 3)
        pixels = pixels.permute(2, 0, 1).float().div(255.0)
        mean, std = torch.tensor(_MEAN).view(3, 1, 1), torch.tensor(_STD).view(3, 1, 1)
        return ((pixels - mean) / std).unsqueeze(0)

    def classify(self, image: bytes) -> dict[str, float]:
        import torch  # noqa: PLC0415

        pixels = self._pixels(image)
        with self._lock, torch.inference_mode():
            features = self.model.get_image_features(pixel_values=pixels)
            features = getattr(features, "pooler_output", features)
            features = torch.nn.functional.normalize(features, dim=-1)
            logits = self.model.logit_scale.exp() * features @ self.text_embeds.T
            scores = logits.softmax(dim=-1)[0].tolist()
        return dict(zip(self.categories, (round(float(s), 6) for s in scores)))


def load_garment_classifier(settings) -> GarmentClassifier | None:
    """The configured classifier, loaded now (a bad path fails start-up, not a request), or
    None with a logged notice that garment categories are the callers' labels."""
    path = settings.garment_classifier_path
    if path is None:
        log.info("garment classifier off: garment categories are the callers' labels; consents with "
                 "review_unverified_garments hold items with garment images for review",
                 extra={"fields": {"garment_classifier": None}})
        return None
    classifier = ClipGarmentClassifier.load(path)
    log.info("garment classifier on", extra={"fields": {"garment_classifier": classifier.name,
                                                        "categories": list(classifier.categories),
                                                        "threshold": settings.garment_classifier_threshold}})
    return classifier


__all__ = ["CATEGORIES", "ClipGarmentClassifier", "GarmentClassifier", "PROMPTS", "load_garment_classifier"]
