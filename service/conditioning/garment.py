"""Garment reference: an IP-Adapter on the SDXL UNet(s), garment embeddings and their cache.

Owns: loading an IP-Adapter (a safetensors file with `image_proj.*` and
`ip_adapter.{k}.to_k_ip/to_v_ip` keys; the Plus variant reads the image encoder's
penultimate hidden states) and its CLIP vision image encoder (a local directory) onto a
loaded pipeline; encoding a garment image exactly as diffusers' `encode_image` does; a cache
of those embeddings keyed by the asset's sha256 (a device tier and a host tier, each an LRU
with a byte budget, like the twins' adapter cache); and the per-request keyword arguments
(`ip_adapter_image_embeds` and `ip_adapter_masks`) for up to `slots` garments.

Every request runs the same graph, which is what keeps a compiled UNet from recompiling:
- The garments always fill a fixed number of slots. Unused slots hold zero embeddings
  under an all-zero mask, so they add exactly nothing.
- A garment's strength is carried by its mask's values (0..strength): the attention
  processors' own `scale` stays 1.0 forever, because a changed Python float would be a new
  guard and a new graph. Strengths, garments, their number and their regions are all
  tensor values.
- Once an IP-Adapter is loaded, the UNet needs image embeddings on every call, so a
  request with no garment still passes the (all-zero-masked) slots.

One garment steers the whole frame, the standard IP-Adapter use. Two or more get regional
masks (`IPAdapterMaskProcessor`) by category: bands of a full-body frame, or boxes around
the relevant keypoints when the pose was drawn from keypoints.

Must never read assets from a store, check consent, or change attention scales per request.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageOps

from service.conditioning.spec import CATEGORIES, Garment
from service.errors import InvalidRequest, ModelLoadError, UnsafeWeights
from service.twins.cache import LruTier
from service.twins.store import PICKLE_SUFFIXES

DEFAULT_SLOTS = 4
LATENT_FACTOR = 8  # masks are made at latent resolution: the attention layers only ever see less

# Regions of a full-body frame (fractions of the height, full width) when no keypoints are known.
REGION_BANDS = {
    "tops": (0.10, 0.62),
    "outerwear": (0.08, 0.72),
    "bottoms": (0.45, 0.95),
    "one-pieces": (0.10, 0.92),
    "shoes": (0.80, 1.00),
    "accessories": (0.00, 1.00),
    "swimwear": (0.10, 0.70),
    "lingerie": (0.10, 0.70),
}
# The COCO-18 keypoints whose bounding box (plus a margin) a garment covers.
REGION_JOINTS = {
    "tops": (1, 2, 3, 4, 5, 6, 7, 8, 11),
    "outerwear": (1, 2, 3, 4, 5, 6, 7, 8, 11),
    "bottoms": (8, 9, 10, 11, 12, 13),
    "one-pieces": (1, 2, 5, 8, 9, 11, 12),
    "shoes": (10, 13),
    "accessories": (),
    "swimwear": (1, 2, 5, 8, 11),
    "lingerie": (1, 2, 5, 8, 11),
}
REGION_MARGIN = 0.06
assert set(REGION_BANDS) == set(REGION_JOINTS) == set(CATEGORIES)


# -- weights --------------------------------------------------------------------------------


def refuse_pickles(directory: Path, what: str) -> None:
    """A model directory with pickle-format weights is never loaded."""
    pickles = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeWeights(
            f"refusing to load the {what} at {str(directory)!r}: it holds pickle-format weights ({', '.join(pickles[:5])})"
        )


def check_ip_adapter_file(path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise UnsafeWeights(f"the IP-Adapter {str(path)!r} must be a .safetensors file (pickle formats are refused)")
    if not path.is_file():
        raise ModelLoadError(f"IP-Adapter file {str(path)!r} does not exist; run `make demo` or set ATELIER_IP_ADAPTER")
    return path


def read_ip_adapter(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The IP-Adapter file as diffusers' loader wants it: {"image_proj": {...}, "ip_adapter": {...}}."""
    from safetensors import SafetensorError, safe_open

    path = check_ip_adapter_file(path)
    state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for key in fh.keys():
                group, _, name = key.partition(".")
                if group in state:
                    state[group][name] = fh.get_tensor(key)
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"cannot read the IP-Adapter {str(path)!r}: {exc}") from None
    if not state["image_proj"] or not state["ip_adapter"]:
        raise ModelLoadError(f"{str(path)!r} is not an IP-Adapter: no image_proj.* and ip_adapter.* weights")
    return state


def load_image_encoder(directory: Path, device: torch.device, dtype: torch.dtype):
    """The CLIP vision tower (with projection) that IP-Adapter was trained on, from a local directory."""
    from transformers import CLIPVisionModelWithProjection

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"image encoder directory {str(directory)!r} has no config.json; set ATELIER_IP_ADAPTER_ENCODER"
        )
    refuse_pickles(directory, "image encoder")
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(
            str(directory), dtype=dtype, use_safetensors=True, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the image encoder at {str(directory)!r}: {exc}") from None
    return encoder.to(device).eval().requires_grad_(False)


def attach_ip_adapter(pipe, adapter_file: Path) -> None:
    """Load the IP-Adapter into `pipe.unet` (its image encoder must already be registered).
    The attention processors' scale is set to 1.0 once: strengths ride on the masks."""
    state = read_ip_adapter(adapter_file)
    try:
        pipe.load_ip_adapter(state, subfolder="", weight_name="", image_encoder_folder=None, low_cpu_mem_usage=False)
    except (RuntimeError, KeyError, ValueError) as exc:  # shapes or keys that do not fit this UNet
        raise ModelLoadError(f"the IP-Adapter {str(adapter_file)!r} does not fit the base model: {exc}") from None
    pipe.set_ip_adapter_scale(1.0)
    for module in pipe.unet.attn_processors.values():
        if isinstance(module, torch.nn.Module):
            module.eval().requires_grad_(False)
    pipe.unet.encoder_hid_proj.eval().requires_grad_(False)


# -- the embeddings cache -------------------------------------------------------------------


class GarmentEmbeddingCache:
    """Garment embeddings by asset sha256: a device tier, and on an accelerator a host tier
    below it (an embedding evicted from the device comes back from host RAM, not from the
    encoder). Each tier is an LRU with a byte budget. Thread-safe."""

    def __init__(self, device: torch.device, device_bytes: int, host_bytes: int, host_tier: bool | None = None):
        self.device = device
        self.device_tier = LruTier("device", device_bytes)
        if host_tier is None:  # on a CPU the device tier already is host RAM
            host_tier = device.type != "cpu"
        self.host_tier = LruTier("host", host_bytes) if host_tier else None
        self._lock = threading.Lock()
        self.hits = {"device": 0, "host": 0}
        self.misses = 0

    def get(self, sha256: str) -> torch.Tensor | None:
        with self._lock:
            hit = self.device_tier.get(sha256)
            if hit is not None:
                self.hits["device"] += 1
                return hit
            host = self.host_tier.get(sha256) if self.host_tier is not None else None
            if host is None:
                self.misses += 1
                return None
        on_device = host.to(self.device, non_blocking=True)
        with self._lock:
            self.device_tier.put(sha256, on_device, _nbytes(on_device))
            self.hits["host"] += 1
        return on_device

    def put(self, sha256: str, embedding: torch.Tensor) -> None:
        nbytes = _nbytes(embedding)
        host = None
        if self.host_tier is not None:
            host = embedding.to("cpu")
            host = host.pin_memory() if self.device.type == "cuda" else host
        with self._lock:
            self.device_tier.put(sha256, embedding, nbytes)
            if host is not None:
                self.host_tier.put(sha256, host, nbytes)

    def evict(self, sha256: str) -> list[str]:
        """Drop a garment's embeddings (its asset was deleted); returns the tiers that held it."""
        with self._lock:
            return [tier.name for tier in (self.device_tier, self.host_tier) if tier is not None and tier.pop(sha256)]

    def tiers_of(self, sha256: str) -> list[str]:
        with self._lock:
            return [tier.name for tier in (self.device_tier, self.host_tier) if tier is not None and sha256 in tier]

    def stats(self) -> dict:
        with self._lock:
            tiers = {t.name: {"entries": len(t.entries), "bytes": t.used, "budget": t.budget}
                     for t in (self.device_tier, self.host_tier) if t is not None}
            return tiers | {"hits": dict(self.hits), "misses": self.misses}


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


# -- regions --------------------------------------------------------------------------------


def region_mask(category: str, width: int, height: int, keypoints: Sequence | None = None) -> Image.Image:
    """Where a garment of `category` may act, as a white-on-black L image of width x height."""
    box = None
    joints = REGION_JOINTS[category]
    if keypoints is not None and joints:
        points = [keypoints[j] for j in joints if keypoints[j] is not None]
        if len(points) >= 2:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            box = (min(xs) - REGION_MARGIN, min(ys) - REGION_MARGIN, max(xs) + REGION_MARGIN, max(ys) + REGION_MARGIN)
    if box is None:
        top, bottom = REGION_BANDS[category]
        box = (0.0, top, 1.0, bottom)
    x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in box)
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle(
        (round(x0 * width), round(y0 * height), max(round(x0 * width), round(x1 * width) - 1),
         max(round(y0 * height), round(y1 * height) - 1)),
        fill=255,
    )
    return mask


def garment_masks(garments: Sequence[Garment], slots: int, width: int, height: int,
                  keypoints: Sequence | None = None) -> torch.Tensor:
    """The `ip_adapter_masks` tensor [1, slots, h, w] at latent resolution: each garment's
    region scaled by its strength (one garment: the whole frame), unused slots all zero."""
    from diffusers.image_processor import IPAdapterMaskProcessor

    h, w = max(1, height // LATENT_FACTOR), max(1, width // LATENT_FACTOR)
    out = torch.zeros(1, slots, h, w)
    if not garments:
        return out
    if len(garments) == 1:
        regions = [Image.new("L", (w, h), 255)]
    else:
        regions = [region_mask(g.category, w, h, keypoints) for g in garments]
    masks = IPAdapterMaskProcessor().preprocess(regions, height=h, width=w)  # [n, 1, h, w], binarised
    for index, garment in enumerate(garments):
        out[0, index] = masks[index, 0] * float(garment.strength)
    return out


# -- the garment reference ------------------------------------------------------------------


def flatten_alpha(image: Image.Image) -> Image.Image:
    """A packshot with transparency goes onto white (what a catalogue background is), upright
    as its EXIF orientation says."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


class GarmentReference:
    """The IP-Adapter loaded on a pipeline: encodes garments (through the cache) and builds
    the per-request keyword arguments for `slots` garment slots."""

    def __init__(self, pipe, adapter_file: Path, cache: GarmentEmbeddingCache, slots: int = DEFAULT_SLOTS):
        from diffusers.models.embeddings import ImageProjection

        if slots < 1:
            raise ValueError("garment slots must be at least 1")
        self.pipe = pipe
        self.adapter_file = Path(adapter_file)
        self.cache = cache
        self.slots = slots
        projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
        self.uses_hidden_states = not isinstance(projection, ImageProjection)  # Plus: penultimate hidden states
        self._negative: torch.Tensor | None = None

    @classmethod
    def load(cls, pipe, adapter_file: Path, encoder_dir: Path, cache: GarmentEmbeddingCache,
             slots: int = DEFAULT_SLOTS) -> "GarmentReference":
        """Register the image encoder on `pipe` and load the IP-Adapter into its UNet. Do this
        after the twins' adapter slot exists and before the backend compiles the UNet."""
        check_ip_adapter_file(adapter_file)
        encoder = load_image_encoder(encoder_dir, pipe.device, pipe.dtype)
        pipe.register_modules(image_encoder=encoder)
        attach_ip_adapter(pipe, adapter_file)  # also registers a CLIPImageProcessor sized for the encoder
        return cls(pipe, adapter_file, cache, slots)

    def attach(self, pipe) -> None:
        """Load the same IP-Adapter into another pipeline's UNet (the inpainting one)."""
        attach_ip_adapter(pipe, self.adapter_file)

    @torch.no_grad()
    def _encode(self, image: Image.Image) -> torch.Tensor:
        """One garment's embedding, as `StableDiffusionXLPipeline.encode_image` computes it."""
        encoder = self.pipe.image_encoder
        pixels = self.pipe.feature_extractor(image, return_tensors="pt").pixel_values
        pixels = pixels.to(encoder.device, next(encoder.parameters()).dtype)
        if self.uses_hidden_states:
            return encoder(pixels, output_hidden_states=True).hidden_states[-2][0]
        return encoder(pixels).image_embeds[0]

    def embedding(self, garment: Garment) -> torch.Tensor:
        """The garment's embedding from the cache, or encoded (and cached) on a miss."""
        cached = self.cache.get(garment.sha256)
        if cached is not None:
            return cached
        embedding = self._encode(flatten_alpha(garment.load_image()))
        self.cache.put(garment.sha256, embedding)
        return embedding

    @torch.no_grad()
    def negative(self) -> torch.Tensor:
        """What the unconditional half of guidance sees: for Plus, the encoder's view of an
        all-zero (normalised) image; for the base variant, zeros. Computed once."""
        if self._negative is None:
            encoder = self.pipe.image_encoder
            dtype = next(encoder.parameters()).dtype
            size = self.pipe.feature_extractor.crop_size
            zeros = torch.zeros(1, 3, size["height"], size["width"], device=encoder.device, dtype=dtype)
            if self.uses_hidden_states:
                self._negative = encoder(zeros, output_hidden_states=True).hidden_states[-2][0]
            else:
                self._negative = torch.zeros_like(encoder(zeros).image_embeds[0])
        return self._negative

    def kwargs(self, garments: Sequence[Garment], *, width: int, height: int, num_images: int, do_cfg: bool,
               keypoints: Sequence | None = None) -> dict:
        """`ip_adapter_image_embeds` and `cross_attention_kwargs` for a pipeline call. Shapes
        depend only on (num_images, do_cfg, width, height), never on the garments."""
        if len(garments) > self.slots:
            raise InvalidRequest(f"at most {self.slots} garments per image", field="garments")
        negative = self.negative()
        zero = torch.zeros_like(negative)
        positives = [self.embedding(g) for g in garments] + [zero] * (self.slots - len(garments))
        negatives = [negative] * len(garments) + [zero] * (self.slots - len(garments))
        embeds = torch.stack(positives)[None].expand(num_images, *(-1,) * (negative.ndim + 1))
        if do_cfg:
            embeds = torch.cat([torch.stack(negatives)[None].expand_as(embeds), embeds])
        masks = garment_masks(garments, self.slots, width, height, keypoints).to(negative.device)
        return {
            "ip_adapter_image_embeds": [embeds.contiguous()],
            "cross_attention_kwargs": {"ip_adapter_masks": [masks]},
        }
