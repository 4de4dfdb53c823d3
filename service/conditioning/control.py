"""Pose control: an SDXL OpenPose ControlNet beside the base pipeline, sharing its UNet.

Owns: loading a ControlNet from a local directory (safetensors only) and building
`StableDiffusionXLControlNetPipeline.from_pipe(base, controlnet=...)`, which reuses every
module of the base pipeline: the UNet with its twin slot and IP-Adapter, the VAE, the text
encoders. A pose request therefore renders the twin, the garments and the pose together,
on the same (possibly compiled) UNet. Must never draw or detect poses (pose.py draws them;
no annotator is run) and never load a second copy of the base model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from service.conditioning.garment import refuse_pickles
from service.errors import ModelLoadError


def load_controlnet(directory: Path, device: torch.device, dtype: torch.dtype):
    from diffusers import ControlNetModel

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"pose ControlNet directory {str(directory)!r} has no config.json; run `make demo` or set ATELIER_POSE_CONTROLNET"
        )
    refuse_pickles(directory, "pose ControlNet")
    try:
        controlnet = ControlNetModel.from_pretrained(str(directory), dtype=dtype, use_safetensors=True, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the pose ControlNet at {str(directory)!r}: {exc}") from None
    return controlnet.to(device).eval().requires_grad_(False)


class PoseControl:
    """The ControlNet pipeline that shares the base pipeline's modules."""

    def __init__(self, pipe, controlnet):
        self.pipe = pipe
        self.controlnet = controlnet

    @classmethod
    def load(cls, base, directory: Path) -> "PoseControl":
        from diffusers import StableDiffusionXLControlNetPipeline

        controlnet = load_controlnet(directory, base.device, base.dtype)
        if controlnet.config.cross_attention_dim != base.unet.config.cross_attention_dim:
            raise ModelLoadError(
                f"the pose ControlNet at {str(directory)!r} was made for another base model "
                f"(cross-attention {controlnet.config.cross_attention_dim}, base {base.unet.config.cross_attention_dim})"
            )
        pipe = StableDiffusionXLControlNetPipeline.from_pipe(base, controlnet=controlnet)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, controlnet)

    @staticmethod
    def kwargs(control_image: Image.Image, *, width: int, height: int, scale: float) -> dict:
        """The control image at the output size (the pipeline also resizes; doing it here keeps
        an uploaded pose image's drawing crisp) and the ControlNet's conditioning scale."""
        image = control_image.convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return {"image": image, "controlnet_conditioning_scale": float(scale)}
