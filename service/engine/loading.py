"""Loading a diffusers pipeline directory: safetensors only, local only, right device and dtype.

Owns: refusing pickle checkpoints, choosing the device (cpu / cuda) and dtype (fp32 on CPU,
fp16 or bf16 on GPU), and `from_pretrained` on a local path. Must never reach a model hub.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path only; never a hub lookup
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

from service.errors import ModelLoadError, UnsafeWeights  # noqa: E402
from service.twins.keys import PICKLE_SUFFIXES  # noqa: E402

SUPPORTED_PIPELINES = {"StableDiffusionXLPipeline", "StableDiffusionPipeline"}


def check_pipeline_dir(path: Path) -> str:
    """Validate a pipeline directory and return its pipeline class name."""
    path = Path(path)
    index = path / "model_index.json"
    if not path.is_dir():
        raise ModelLoadError(f"base model directory {str(path)!r} does not exist; run `make demo` or set ATELIER_BASE_MODEL")
    if not index.is_file():
        raise ModelLoadError(f"{str(path)!r} is not a diffusers pipeline directory (no model_index.json)")
    pickles = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeWeights(
            f"refusing to load {str(path)!r}: it holds pickle-format weights ({', '.join(pickles[:5])}); "
            "convert them to safetensors"
        )
    try:
        class_name = json.loads(index.read_text())["_class_name"]
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(f"{str(index)!r} is not a valid model index: {exc}") from None
    if class_name not in SUPPORTED_PIPELINES:
        raise ModelLoadError(f"unsupported pipeline class {class_name!r}; supported: {', '.join(sorted(SUPPORTED_PIPELINES))}")
    return class_name


def fingerprint_pipeline(path: Path) -> str:
    """A cheap identity of a pipeline directory for audit records (`service.fingerprint`)."""
    from service.fingerprint import fingerprint_path

    return fingerprint_path(path)


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("ATELIER_DEVICE asks for cuda but no CUDA device is available")
    return device


def pick_dtype(setting: str, device: torch.device) -> torch.dtype:
    if setting == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtype = getattr(torch, setting)
    if device.type == "cpu" and dtype != torch.float32:
        raise ModelLoadError(f"ATELIER_DTYPE={setting} is not supported on CPU; use float32")
    return dtype


def load_pipeline(path: Path, device: torch.device, dtype: torch.dtype):
    """Load the pipeline at `path` onto `device` in `dtype`, with diffusers' own watermarker off."""
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()

    class_name = check_pipeline_dir(path)
    extra = {"add_watermarker": False} if class_name == "StableDiffusionXLPipeline" else {
        "safety_checker": None,
        "requires_safety_checker": False,
    }
    try:
        pipe = DiffusionPipeline.from_pretrained(
            str(path), dtype=dtype, use_safetensors=True, local_files_only=True, **extra
        )
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelLoadError(f"cannot load the pipeline at {str(path)!r}: {exc}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
