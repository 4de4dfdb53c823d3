"""What a conditioned request asks the engine for: garments, a pose, an edit.

Owns: the `Conditioning` value the engine receives (already-admitted, already-fetched
inputs: decoded images and their sha256), garment categories and strength bounds, and the
typed errors of conditioning. Must never import torch or diffusers, and never fetch, decode
or authorise anything: assets, consent and policy are checked before a request gets here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from PIL import Image

from service.errors import AtelierError, InvalidRequest

# Swimwear and lingerie are consent-scoped: the gateway refuses them unless the twin's consent
# includes them (`service.tenancy.consent`).
CATEGORIES = ("tops", "bottoms", "one-pieces", "outerwear", "shoes", "accessories", "swimwear", "lingerie")
DEFAULT_STRENGTH = 0.8  # IP-Adapter Plus reads a garment well at 0.6-0.9; 1.0 starts to copy the packshot
MAX_STRENGTH = 1.0
DEFAULT_POSE_SCALE = 1.0  # controlnet_conditioning_scale
MAX_POSE_SCALE = 2.0
DEFAULT_EDIT_BLUR = 4  # px of feathering at the mask's edge when the edit is pasted back
MAX_EDIT_BLUR = 64

KINDS = ("text", "pose", "edit")  # which pipeline renders; garments combine with each of them


class ConditioningUnavailable(AtelierError):
    """This deployment has no model for the asked conditioning (IP-Adapter, pose ControlNet or
    inpainting weights not configured), or the kinds asked for cannot combine."""

    status = 422
    code = "conditioning_unavailable"


ImageSource = Image.Image | Callable[[], Image.Image]


@dataclass(frozen=True)
class Garment:
    """A garment reference: the asset's sha256 (the embeddings cache key), its image (or a
    zero-argument callable returning it, called only on a cache miss), its category and how
    strongly it steers the picture (0..1)."""

    sha256: str
    image: ImageSource
    category: str
    strength: float = DEFAULT_STRENGTH

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise InvalidRequest(f"garment category must be one of {', '.join(CATEGORIES)}", field="garments.category")
        if not (0.0 <= float(self.strength) <= MAX_STRENGTH):
            raise InvalidRequest(f"garment strength must be within 0..{MAX_STRENGTH}", field="garments.strength")

    def load_image(self) -> Image.Image:
        return self.image if isinstance(self.image, Image.Image) else self.image()


@dataclass(frozen=True)
class Pose:
    """A control image (drawn by `render_pose`, or an uploaded pose image used as it is) and,
    when it was drawn from keypoints, those keypoints (they place the garments' regions)."""

    image: Image.Image
    keypoints: tuple | None = None
    scale: float = DEFAULT_POSE_SCALE

    def __post_init__(self) -> None:
        if not (0.0 <= float(self.scale) <= MAX_POSE_SCALE):
            raise InvalidRequest(f"pose scale must be within 0..{MAX_POSE_SCALE}", field="pose.scale")


@dataclass(frozen=True)
class Edit:
    """Repaint `mask`'s white area of `source` (or, with `invert`, everything outside it: a
    background swap with a person mask). Pixels outside the repainted area are pasted back
    from the source, feathered over `blur_px` pixels at the edge."""

    source: Image.Image
    mask: Image.Image
    invert: bool = False
    strength: float = 1.0  # 1.0: the repainted area starts from noise (the 9-channel UNet sees the rest)
    blur_px: int = DEFAULT_EDIT_BLUR

    def __post_init__(self) -> None:
        if not (0.0 < float(self.strength) <= 1.0):
            raise InvalidRequest("edit strength must be within 0 (exclusive) and 1", field="edit.strength")
        if not (0 <= int(self.blur_px) <= MAX_EDIT_BLUR):
            raise InvalidRequest(f"edit blur must be within 0..{MAX_EDIT_BLUR} px", field="edit.blur_px")


@dataclass(frozen=True)
class Conditioning:
    garments: tuple[Garment, ...] = ()
    pose: Pose | None = None
    edit: Edit | None = None

    @property
    def kind(self) -> str:
        """The pipeline that renders it: `edit` (inpainting), `pose` (ControlNet) or `text`."""
        if self.edit is not None and self.pose is not None:
            raise ConditioningUnavailable(
                "an edit cannot also take a pose: the inpainting pipeline has no ControlNet", field="pose"
            )
        if self.edit is not None:
            return "edit"
        return "pose" if self.pose is not None else "text"

    def batch_key(self) -> tuple | None:
        """Requests whose keys are equal may share one pipeline call (one plan for all their
        rows); None means never batch it. Garments and their regions act on every row of a
        call alike, so the key holds them; an edit has its own source and mask."""
        if self.kind == "edit":
            return None
        garments = tuple((g.sha256, g.category, float(g.strength)) for g in self.garments)
        pose = None
        if self.pose is not None:
            drawn = self.pose.keypoints or hashlib.sha256(self.pose.image.tobytes()).hexdigest()
            pose = (drawn, self.pose.image.size, float(self.pose.scale))
        return (self.kind, garments, pose)
