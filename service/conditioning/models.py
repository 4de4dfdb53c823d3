"""The conditioning models of one engine, and the plan of one conditioned pipeline call.

Owns: loading, in the one order that works, the models the settings name beside a loaded
base pipeline:
1. the IP-Adapter and its image encoder onto the base UNet;
2. the pose ControlNet pipeline, which shares the base UNet;
3. the inpainting pipeline, with its own UNet, twin slot and IP-Adapter.

Also owns, per request, `plan`: which pipeline renders it, the extra keyword arguments of
that call, and what to do to the decoded images. It also fingerprints each component for
audit records.

The engine calls `load` after the twins' slot exists and before its backend compiles, and
`plan` under its pipeline lock. Must never encode prompts, run the denoising loop, decode
latents, mark images or take the pipeline lock itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from service.conditioning.control import PoseControl
from service.conditioning.edit import Inpainter, inpaint_unet_dir
from service.conditioning.garment import DEFAULT_SLOTS, GarmentEmbeddingCache, GarmentReference
from service.conditioning.spec import Conditioning, ConditioningUnavailable
from service.fingerprint import fingerprint_path
from service.errors import ModelLoadError

DEFAULT_CACHE_DEVICE_BYTES = 256 * 1024**2  # ViT-H Plus embeddings are 257 x 1280 (0.66 MB in fp16)
DEFAULT_CACHE_HOST_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ConditioningPaths:
    """Local weights (each None when not configured: that kind of request is then refused)."""

    ip_adapter: Path | None = None  # an IP-Adapter .safetensors file
    image_encoder: Path | None = None  # its CLIP vision encoder directory (default: image_encoder/ beside the file)
    pose_controlnet: Path | None = None  # a ControlNet directory (config.json + safetensors)
    inpaint_model: Path | None = None  # a 9-channel UNet directory, or a pipeline directory with unet/

    def encoder_dir(self) -> Path | None:
        if self.image_encoder is not None:
            return Path(self.image_encoder)
        return Path(self.ip_adapter).parent / "image_encoder" if self.ip_adapter is not None else None


def _unchanged(images: list[Image.Image]) -> list[Image.Image]:
    return images


@dataclass
class Plan:
    """One pipeline call: `pipe(**prompt_embeds, **kwargs, width=..., ...)`, then `finish` on
    the decoded PIL images. `components` names the conditioning models it uses (for audit)."""

    kind: str
    pipe: Any
    kwargs: dict
    finish: Callable[[list[Image.Image]], list[Image.Image]] = _unchanged
    components: tuple[str, ...] = ()


@dataclass
class ConditioningModels:
    base: Any
    garments: GarmentReference | None = None
    pose: PoseControl | None = None
    inpainter: Inpainter | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)  # component -> fingerprint

    @classmethod
    def load(cls, base, paths: ConditioningPaths, *, slot=None, garment_slots: int = DEFAULT_SLOTS,
             cache_device_bytes: int = DEFAULT_CACHE_DEVICE_BYTES,
             cache_host_bytes: int = DEFAULT_CACHE_HOST_BYTES) -> "ConditioningModels":
        """Load what `paths` names beside `base`. `slot` is the twins' AdapterSlot on the base
        UNet: the inpainting UNet gets one of the same rank and targets."""
        models = cls(base)
        if (paths.pose_controlnet or paths.inpaint_model) and not hasattr(base, "text_encoder_2"):
            raise ModelLoadError("pose and edit conditioning need an SDXL base pipeline")
        # 1. Garment reference: image encoder + IP-Adapter on the base UNet.
        if paths.ip_adapter is not None:
            cache = GarmentEmbeddingCache(base.device, cache_device_bytes, cache_host_bytes)
            models.garments = GarmentReference.load(base, paths.ip_adapter, paths.encoder_dir(), cache, garment_slots)
            models.fingerprints["ip_adapter"] = fingerprint_path(paths.ip_adapter)
            models.fingerprints["image_encoder"] = fingerprint_path(paths.encoder_dir())
        # 2. Pose: the ControlNet pipeline over the same UNet.
        if paths.pose_controlnet is not None:
            models.pose = PoseControl.load(base, paths.pose_controlnet)
            models.fingerprints["pose_controlnet"] = fingerprint_path(paths.pose_controlnet)
        # 3. Edit: the inpainting UNet with its own twin slot and the same IP-Adapter.
        if paths.inpaint_model is not None:
            models.inpainter = Inpainter.load(base, paths.inpaint_model, getattr(slot, "rank", None),
                                              tuple(getattr(slot, "targets", ())))
            if models.garments is not None:
                models.garments.attach(models.inpainter.pipe)
            models.fingerprints["inpaint"] = fingerprint_path(inpaint_unet_dir(paths.inpaint_model))
        return models

    @property
    def kinds(self) -> tuple[str, ...]:
        """The pipeline kinds this deployment can render."""
        return ("text",) + (("pose",) if self.pose else ()) + (("edit",) if self.inpainter else ())

    def extra_unets(self) -> list:
        """UNets beside the base one that a compile backend should compile too."""
        return [self.inpainter.pipe.unet] if self.inpainter is not None else []

    def warmup_conditionings(self, width: int, height: int) -> list[Conditioning]:
        """One request per kind this deployment renders, for warm-up (and, under the compile
        backend, compilation) at a size: plain text, a pose, an edit. Garments need none of
        their own: their slots run in every call already."""
        from PIL import ImageDraw

        from service.conditioning.pose import PRESETS, render_pose
        from service.conditioning.spec import Edit, Pose

        out = [Conditioning()]
        if self.pose is not None:
            out.append(Conditioning(pose=Pose(render_pose(PRESETS["front"], width, height), PRESETS["front"])))
        if self.inpainter is not None:
            mask = Image.new("L", (width, height), 0)
            ImageDraw.Draw(mask).rectangle((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=255)
            out.append(Conditioning(edit=Edit(Image.new("RGB", (width, height), (128, 128, 128)), mask)))
        return out

    def evict_garment(self, sha256: str) -> list[str]:
        """Drop a deleted asset's embeddings from the cache; returns the tiers that held them."""
        return self.garments.cache.evict(sha256) if self.garments is not None else []

    def plan(self, cond: Conditioning | None, *, width: int, height: int, num_images: int, do_cfg: bool,
             twin=None) -> Plan:
        """The call that renders `cond`. `twin` is the PreparedAdapter the base slot holds now
        (None for the base model): an edit's UNet is given the same twin here."""
        cond = cond or Conditioning()
        kind = cond.kind
        kwargs: dict = {}
        finish = _unchanged
        components: list[str] = []
        # 1. The pipeline for the kind, with its own inputs.
        if kind == "pose":
            if self.pose is None:
                raise ConditioningUnavailable(
                    "pose is not available: no pose ControlNet is configured (ATELIER_POSE_CONTROLNET)", field="pose"
                )
            pipe = self.pose.pipe
            kwargs |= PoseControl.kwargs(cond.pose.image, width=width, height=height, scale=cond.pose.scale)
            components.append("pose_controlnet")
        elif kind == "edit":
            if self.inpainter is None:
                raise ConditioningUnavailable(
                    "edits are not available: no inpainting model is configured (ATELIER_INPAINT_MODEL)", field="edit"
                )
            edit_kwargs, finish = Inpainter.kwargs(cond.edit, width=width, height=height)
            self.inpainter.follow(twin)
            pipe = self.inpainter.pipe
            kwargs |= edit_kwargs
            components.append("inpaint")
        else:
            pipe = self.base
        # 2. Garments. Once an IP-Adapter is loaded every call passes its slots (empty ones
        #    add nothing): the UNets need image embeddings, and the graph stays the same.
        if self.garments is not None:
            keypoints = cond.pose.keypoints if cond.pose is not None else None
            kwargs |= self.garments.kwargs(cond.garments, width=width, height=height, num_images=num_images,
                                           do_cfg=do_cfg, keypoints=keypoints)
            if cond.garments:
                components += ["ip_adapter", "image_encoder"]
        elif cond.garments:
            raise ConditioningUnavailable(
                "garment references are not available: no IP-Adapter is configured (ATELIER_IP_ADAPTER)", field="garments"
            )
        return Plan(kind, pipe, kwargs, finish, tuple(components))
