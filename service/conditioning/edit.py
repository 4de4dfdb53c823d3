"""Edits: SDXL inpainting beside the base pipeline, masks, and pasting the kept pixels back.

Owns: loading a 9-channel inpainting UNet from its own directory (a UNet directory, or a
pipeline directory with a `unet/` subfolder such as SDXL inpainting 0.1; safetensors only),
building `StableDiffusionXLInpaintPipeline.from_pipe(base, unet=...)` so the text encoders,
VAE, scheduler and image encoder are shared, giving that UNet its own twin slot (same rank
and targets as the base UNet's, filled with the same prepared adapter before each edit) and
the IP-Adapter; turning a mask into the repaint area (white = repaint; `invert` for a
background swap with a person mask); and the paste-back, so every pixel farther than
`blur_px` from the repaint area is the source's own pixel, bit for bit. Must never decide
who may edit which photo (consent is checked before), and never sign or mark images.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PIL import Image, ImageChops, ImageFilter, ImageOps

from service.conditioning.spec import ConditioningUnavailable, Edit
from service.errors import InvalidRequest, ModelLoadError

if TYPE_CHECKING:
    import torch

    from service.twins.slot import PreparedAdapter

INPAINT_CHANNELS = 9  # 4 noisy latents + 1 mask + 4 masked-image latents


def edit_mask(mask: Image.Image, width: int, height: int, invert: bool = False) -> Image.Image:
    """The repaint area at the output size as a binary L image (255 = repaint)."""
    gray = ImageOps.exif_transpose(mask).convert("L")
    if gray.size != (width, height):
        gray = gray.resize((width, height), Image.Resampling.BILINEAR)
    binary = gray.point(lambda v: 255 if v >= 128 else 0)
    return ImageOps.invert(binary) if invert else binary


def paste_back(source: Image.Image, generated: Image.Image, mask: Image.Image, blur_px: int) -> Image.Image:
    """`generated` inside the repaint area, `source` outside it, feathered across the edge.
    The feather is a Gaussian of the mask clipped to the mask dilated by `blur_px`: beyond
    that distance (Chebyshev) the output is exactly the source."""
    if blur_px > 0:
        soft = mask.filter(ImageFilter.GaussianBlur(blur_px / 2))
        reach = mask.filter(ImageFilter.MaxFilter(2 * blur_px + 1))
        alpha = ImageChops.multiply(soft, reach)
        alpha = ImageChops.lighter(alpha, mask.filter(ImageFilter.MinFilter(2 * blur_px + 1)))  # deep inside: all generated
    else:
        alpha = mask
    return Image.composite(generated.convert("RGB"), source.convert("RGB"), alpha)


def inpaint_unet_dir(model_dir: Path) -> Path:
    """The UNet directory of an inpainting model: `unet/` of a pipeline directory, or the directory itself."""
    model_dir = Path(model_dir)
    return model_dir / "unet" if (model_dir / "unet" / "config.json").is_file() else model_dir


def load_inpaint_unet(model_dir: Path, device: "torch.device", dtype: "torch.dtype"):
    from diffusers import UNet2DConditionModel

    from service.conditioning.garment import refuse_pickles

    unet_dir = inpaint_unet_dir(model_dir)
    if not (unet_dir / "config.json").is_file():
        raise ModelLoadError(
            f"inpainting model {str(model_dir)!r} has no UNet config; run `make demo` or set ATELIER_INPAINT_MODEL"
        )
    refuse_pickles(unet_dir, "inpainting UNet")
    try:
        unet = UNet2DConditionModel.from_pretrained(str(unet_dir), dtype=dtype, use_safetensors=True, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the inpainting UNet at {str(unet_dir)!r}: {exc}") from None
    if unet.config.in_channels != INPAINT_CHANNELS:
        raise ModelLoadError(
            f"the UNet at {str(unet_dir)!r} has {unet.config.in_channels} input channels; "
            f"an inpainting UNet has {INPAINT_CHANNELS}"
        )
    return unet.to(device).eval().requires_grad_(False)


class Inpainter:
    """The inpainting pipeline that shares the base pipeline's modules but its UNet."""

    def __init__(self, pipe, slot=None):
        self.pipe = pipe
        self.slot = slot  # an AdapterSlot on the inpainting UNet, or None (no twins)

    @classmethod
    def load(cls, base, model_dir: Path, slot_rank: int | None = None, slot_targets: tuple[str, ...] = ()) -> "Inpainter":
        """Load the inpainting UNet; with `slot_rank`, give it a twin slot like the base UNet's.
        Do this before the backend compiles anything."""
        from diffusers import StableDiffusionXLInpaintPipeline

        from service.twins.slot import AdapterSlot

        unet = load_inpaint_unet(model_dir, base.device, base.dtype)
        for key in ("cross_attention_dim", "addition_embed_type", "projection_class_embeddings_input_dim"):
            if unet.config.get(key) != base.unet.config.get(key):
                raise ModelLoadError(
                    f"the inpainting UNet at {str(model_dir)!r} was made for another base model ({key} differs)"
                )
        slot = AdapterSlot(unet, slot_rank, tuple(slot_targets)) if slot_rank else None
        pipe = StableDiffusionXLInpaintPipeline.from_pipe(base, unet=unet, requires_aesthetics_score=False)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, slot)

    def follow(self, adapter: "PreparedAdapter | None") -> None:
        """Put the twin the base slot holds into this UNet's slot too (nothing if already there)."""
        if self.slot is None:
            if adapter is not None:  # never render an edit without the twin it was asked for
                raise ConditioningUnavailable("edits of a twin need the inpainting UNet's twin slot (load it with `slot`)")
            return
        if adapter is None:
            if self.slot.owner is not None:
                self.slot.clear()
        elif self.slot.owner != adapter.sha256:
            self.slot.load(adapter)

    @staticmethod
    def kwargs(edit: Edit, *, width: int, height: int) -> tuple[dict, Callable[[list[Image.Image]], list[Image.Image]]]:
        """The inpainting pipeline's inputs at the output size, and the paste-back to run on
        the decoded images."""
        source = ImageOps.exif_transpose(edit.source).convert("RGB")
        if source.size != (width, height):
            source = source.resize((width, height), Image.Resampling.LANCZOS)
        mask = edit_mask(edit.mask, width, height, edit.invert)
        if mask.getbbox() is None:
            raise InvalidRequest("the mask selects no pixels to repaint (white = repaint)", field="edit.mask")

        def finish(images: list[Image.Image]) -> list[Image.Image]:
            return [paste_back(source, image, mask, edit.blur_px) for image in images]

        return {"image": source, "mask_image": mask, "strength": float(edit.strength)}, finish
