"""A tiny conditioned renderer for the conditioning tests: the demo pipeline with a twin slot
and the demo conditioning models, run the way the engine runs a request (prompt embeddings
once, the planned pipeline to latents, our own VAE decode, then the plan's finish)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from builds.demo import LORA_RANK, LORA_TARGETS
from builds.demo_conditioning import build_conditioning
from service.conditioning import Conditioning, ConditioningModels, ConditioningPaths
from service.engine.loading import load_pipeline
from service.twins.slot import AdapterSlot, PreparedAdapter, safetensors_metadata
from service.twins.store import parse_adapter

CPU = torch.device("cpu")
SIZE = 256  # 32 x 32 latents
STEPS = 2


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Rig:
    pipe: object
    slot: AdapterSlot
    models: ConditioningModels
    demo: dict[str, Path]
    twin: PreparedAdapter
    _plain: dict = field(default_factory=dict)

    def asset(self, name: str) -> Image.Image:
        image = Image.open(self.demo[name])
        image.load()
        return image

    def plan(self, cond: Conditioning | None, twin: PreparedAdapter | None = None, num_images: int = 1):
        return self.models.plan(cond, width=SIZE, height=SIZE, num_images=num_images, do_cfg=True, twin=twin)

    @torch.no_grad()
    def latents(self, cond: Conditioning | None, seed: int = 0, twin: PreparedAdapter | None = None,
                num_images: int = 1, prompt: str = "studio photo of a model") -> tuple[torch.Tensor, object]:
        if twin is None:
            self.slot.clear()
        elif self.slot.owner != twin.sha256:
            self.slot.load(twin)
        pe, npe, ppe, nppe = self.pipe.encode_prompt(prompt=prompt, device=CPU, num_images_per_prompt=num_images,
                                                     do_classifier_free_guidance=True)
        plan = self.plan(cond, twin, num_images)
        latents = plan.pipe(
            prompt_embeds=pe, negative_prompt_embeds=npe, pooled_prompt_embeds=ppe, negative_pooled_prompt_embeds=nppe,
            **plan.kwargs, width=SIZE, height=SIZE, num_inference_steps=STEPS, guidance_scale=5.0,
            num_images_per_prompt=1, generator=[torch.Generator().manual_seed(seed + i) for i in range(num_images)],
            output_type="latent",
        ).images
        return latents, plan

    @torch.no_grad()
    def images(self, cond: Conditioning | None, seed: int = 0, twin: PreparedAdapter | None = None,
               num_images: int = 1) -> list[np.ndarray]:
        latents, plan = self.latents(cond, seed, twin, num_images)
        vae = self.pipe.vae
        pixels = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
        pil = plan.finish(self.pipe.image_processor.postprocess(pixels, output_type="pil"))
        return [np.asarray(image, dtype=np.float32) for image in pil]

    def image(self, cond: Conditioning | None, seed: int = 0, twin: PreparedAdapter | None = None) -> np.ndarray:
        if cond is not None:
            return self.images(cond, seed, twin)[0]
        key = (seed, twin.sha256 if twin else None)  # unconditioned pictures are compared often: once each
        if key not in self._plain:
            self._plain[key] = self.images(None, seed, twin)[0]
        return self._plain[key].copy()


def build_rig(demo_home: Path, target_home: Path, paths: dict | None = None) -> Rig:
    """Build the demo conditioning models into `target_home` (skipped when a test module
    already built them there; the pipeline and the twin come from the shared demo home,
    read only) and load everything on the CPU."""
    pipeline_dir = demo_home / "demo" / "pipeline"
    demo = build_conditioning(target_home, pipeline_dir)
    pipe = load_pipeline(pipeline_dir, CPU, torch.float32)
    slot = AdapterSlot(pipe.unet, LORA_RANK, tuple(LORA_TARGETS))
    data = (demo_home / "adapters" / "demo-ava.safetensors").read_bytes()
    twin = slot.prepare(parse_adapter(data, sha(data), "demo-ava"), sha(data), safetensors_metadata(data))
    if paths is None:
        paths = {"ip_adapter": demo["ip_adapter"], "pose_controlnet": demo["pose_controlnet"],
                 "inpaint_model": demo["inpaint_model"]}
    models = ConditioningModels.load(pipe, ConditioningPaths(**paths), slot=slot)
    return Rig(pipe, slot, models, demo, twin)


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean())
