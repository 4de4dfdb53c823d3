"""Conditioning: garment reference (IP-Adapter), pose (ControlNet and keypoint drawing), edit (inpainting).

The public face. The torch-free names (the request value, categories, pose presets,
keypoint validation and drawing) import eagerly, so the gateway can validate requests
without importing torch. The model side (`ConditioningModels`, `ConditioningPaths`, `Plan`)
imports on first use, in the renderer only.

The engine's use:
    models = ConditioningModels.load(pipe, paths, slot=twins.slot)   # after the slot, before compiling
    plan = models.plan(conditioning, width=, height=, num_images=, do_cfg=, twin=adapter)
    latents = plan.pipe(**prompt_embeds, **plan.kwargs, ..., output_type="latent").images
    images = plan.finish(decoded_pil_images)
"""

from __future__ import annotations

from service.conditioning.pose import KEYPOINT_NAMES, PRESETS, Keypoints, preset, render_pose, validate_keypoints
from service.conditioning.spec import (
    CATEGORIES,
    DEFAULT_STRENGTH,
    KINDS,
    MAX_EDIT_BLUR,
    MAX_POSE_SCALE,
    MAX_STRENGTH,
    Conditioning,
    ConditioningUnavailable,
    Edit,
    Garment,
    Pose,
)

_LAZY = {
    "ConditioningModels": "service.conditioning.models",
    "ConditioningPaths": "service.conditioning.models",
    "Plan": "service.conditioning.models",
}

__all__ = [
    "CATEGORIES", "DEFAULT_STRENGTH", "KINDS", "KEYPOINT_NAMES", "MAX_EDIT_BLUR", "MAX_POSE_SCALE", "MAX_STRENGTH",
    "PRESETS",
    "Conditioning", "ConditioningUnavailable", "Edit", "Garment", "Keypoints", "Pose",
    "preset", "render_pose", "validate_keypoints",
    *_LAZY,
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
