"""Catalogue presets: scenes and output sizes, and how a catalogue item becomes a prompt.

Owns: the built-in scene presets (a tenant may add or override its own), the named output
sizes (Shopify's recommended 2048x2048 square, a 4:5 portrait), and turning one job item
into the generation request's prompt, negative prompt, size and alt text. Must never
render or decide consent: the request it builds goes through the same gate as any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import InvalidRequest

BUILTIN_SCENES: dict[str, tuple[str, str | None]] = {
    "studio_white": ("full-body studio photo on a seamless white background, soft even lighting, e-commerce catalogue",
                     "shadows on the background, clutter, props"),
    "studio_grey": ("studio photo on a light grey backdrop, softbox lighting, catalogue framing", "clutter, props"),
    "street": ("street style photo on a city sidewalk, natural daylight, shallow depth of field", None),
    "beach": ("on a sunny beach at golden hour, sea in the background, natural light", None),
    "runway": ("walking a fashion show runway, spotlights, audience blurred in the background", None),
    "lifestyle_home": ("relaxed lifestyle photo in a bright modern living room, window light", None),
}
SCENE_LABELS = {
    "studio_white": "in a white studio", "studio_grey": "in a grey studio", "street": "on a city street",
    "beach": "on a beach", "runway": "on a runway", "lifestyle_home": "at home",
}
# Named sizes; a job item may also give width and height itself.
SIZES: dict[str, tuple[int, int]] = {
    "square_2048": (2048, 2048),  # Shopify's recommended product image size
    "portrait_4_5": (1600, 2000),  # 4:5, the tall product and social format
    "square_1024": (1024, 1024),
}


@dataclass(frozen=True)
class ExpandedItem:
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    alt_text: str


def expand_item(item: dict, scenes: dict[str, tuple[str, str | None]], twin_name: str) -> ExpandedItem:
    """Prompt = garment + scene fragment + the item's own prompt; alt text for the shop page.
    `scenes` is the built-in presets merged with the tenant's own."""
    parts, negatives = [], []
    if item.get("garment_description"):
        parts.append(f"wearing {item['garment_description']}")
    scene = item.get("scene")
    if scene is not None:
        if scene not in scenes:
            raise InvalidRequest(f"unknown scene preset {scene!r}; known: {sorted(scenes)}", field="scene")
        fragment, negative = scenes[scene]
        parts.append(fragment)
        if negative:
            negatives.append(negative)
    if item.get("prompt"):
        parts.append(item["prompt"])
    if item.get("negative_prompt"):
        negatives.append(item["negative_prompt"])
    if not parts:
        raise InvalidRequest("an item needs a prompt, a garment_description or a scene", field="prompt")
    width, height = SIZES[item["size"]] if item.get("size") else (item.get("width") or 1024, item.get("height") or 1024)
    return ExpandedItem(", ".join(parts), ", ".join(negatives) or None, width, height, alt_text(item, twin_name))


def alt_text(item: dict, twin_name: str) -> str:
    """The item's own `alt_text` when the brand wrote one, else 'Ava wearing a red wool coat on
    a city street' (WCAG: says what the image shows)."""
    if item.get("alt_text"):
        return str(item["alt_text"])[:250]
    text = twin_name
    if item.get("garment_description"):
        text += f" wearing {item['garment_description']}"
    if item.get("scene") in SCENE_LABELS:
        text += f" {SCENE_LABELS[item['scene']]}"
    return text[:250]
