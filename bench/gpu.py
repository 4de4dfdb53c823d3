"""GPU benchmark: SDXL at full size through Atelier's own engine, eager vs compile (vs TensorRT).

On a CUDA machine it builds an SDXL-architecture pipeline at full size from the public SDXL
base 1.0 configs (embedded below) with random weights, directly on the GPU in the chosen
dtype; nothing is downloaded. It saves the pipeline (safetensors) with the demo's offline
tokenizer and SDXL's Euler scheduler into a work directory, writes three random rank-32
UNet LoRA twins into a fresh registry, and loads everything through `Engine.from_settings`,
so what is timed is the service's own path (cache tiers, adapter slot, backends, stages).
For 1024x1024, 30 steps, CFG (guidance 5, UNet batch 2), fp16/bf16 it reports per backend
(eager, compile; tensorrt when `import tensorrt` works and the service can build that
backend, otherwise "skipped" with the reason): load time, compile time (first call minus
the steady state), median s/image, per-step ms (the engine's `denoise` stage / steps),
achieved TFLOP/s against the measured FLOPs of one UNet step (and the 13.5 TFLOP
reference), device memory (see below); and, under compile, the hot-swap time of twins (the in-place
copy into the adapter slot, and a swapping generation's `adapter` stage) and whether any
swap recompiled (`error_on_recompile`, plus dynamo's frame counter). FLOPs are counted by
`FlopCounterMode` over one forward of the pipeline's UNet architecture, adapter slot
included, on the meta device at the benchmark's shape: the same shapes give the same
count, with no memory or device time spent.

Then, on CUDA only (`--no-mixed` skips it; on a CPU it is skipped with its reason), issue 29's
measures on the eager backend with 8 more rank-32 twins (`run_mixed`): one batch of 4 items
of 4 twins against 4 of one twin (`mixed_vs_same`) and, at the pipeline call, against PEFT's
per-row `adapter_names` on a second copy of the pipeline (`mixed_vs_peft`); a drop of 16
items over 8 twins in engine calls of 4 across twins, against calls of one twin, and 16
items of one twin (`drop_speedup`, `drop_ceiling`; no gateway on the GPU machine); and the
first image of a twin on disk only against one on the device (`cold_vs_warm`).

TensorRT engines are tied to the pipeline they were built from (builds/compile.py records its
fingerprint), and each run builds a new random pipeline: to time tensorrt, run once with
`--workdir DIR --keep`, build engines for DIR/pipeline with builds/compile.py where the
tensorrt backend's settings (ATELIER_ENGINES_DIR, ATELIER_BACKEND_FALLBACK, passed
through from the environment) point, and rerun with `--workdir DIR`, which reuses the pipeline. A
tensorrt backend that falls back to eager or compile is reported as skipped, with its reason.

On a machine without CUDA the same code runs on the demo pipeline (`builds/demo.py`), by
default at 256x256, 4 steps, float32, so CI exercises it in well under a minute. The
numbers then describe the tiny demo model, not SDXL.

A time budget (`--budget-s`, default 480 s) is kept: a measurement that would not fit is
skipped with the reason recorded, never run over. The full report goes to `--out` (default
`bench/results/gpu-<timestamp>.json`); stdout gets the report as one JSON line, then a
short table, last.

    python bench/gpu.py [--size 1024] [--steps 30] [--runs 3] [--dtype auto|float16|bfloat16|float32]
                        [--backends eager,compile,tensorrt] [--out FILE] [--budget-s 480]
                        [--pipeline auto|sdxl|demo] [--workdir DIR] [--keep]

On the lent GPU machine (no network; its python3 has torch, transformers, peft,
safetensors, tokenizers, huggingface_hub, numpy, pillow, tqdm, but neither diffusers nor
the service's own dependencies), carry pure-Python wheels plus the few binary ones. The
service package itself is imported from the repository (this script puts the repository
root on sys.path); it never imports bentoml (`service.engine` must not pull it in), so
bentoml need not travel. Preparation, here, in the repository root:

    echo /.whl/ >> .git/info/exclude
    pip download --no-deps -d .whl diffusers==0.42.1 importlib-metadata alembic mako \\
        pydantic annotated-types typing-inspection
    pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \\
        sqlalchemy greenlet pydantic-core==<the version the downloaded pydantic pins>

and the command there (carry `.whl`; keep it inside the lease's limits):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 bench/gpu.py --out $OUT/gpu.json

It needs about 15 GB of disk in the work directory (a temporary one unless `--workdir`)
and about 12 GB of GPU memory per loaded backend, one at a time.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import describe, median  # noqa: E402

REFERENCE_TFLOP_PER_STEP = 13.5  # SDXL UNet at 1024x1024 (128x128 latents), CFG batch 2
BACKENDS = ("eager", "compile", "tensorrt")
PROMPT = "studio photo of a model in a linen summer dress, soft light"
GUIDANCE = 5.0  # > 1: classifier-free guidance, the UNet runs on a batch of 2
TWIN_IDS = ("bench-a", "bench-b", "bench-c")
SEED = 1234
RESERVE_S = 5.0  # kept back for writing the report
COMPILE_ESTIMATE_S = {"cuda": 150.0, "cpu": 60.0}  # first compiled call, before one was measured
HOTSWAP_COPIES = 8
PASSTHROUGH = ("ATELIER_CPU_THREADS", "ATELIER_LORA_SLOT_RANK", "ATELIER_LORA_TARGETS")
PASSTHROUGH_PREFIXES = ("ATELIER_COMPILE_", "ATELIER_ENGINES_DIR", "ATELIER_BACKEND_FALLBACK")
DEFAULTS = {  # (cuda, cpu)
    "size": (1024, 256),
    "steps": (30, 4),
    "runs": (3, 3),
}

# The public SDXL base 1.0 configs (stabilityai/stable-diffusion-xl-base-1.0), as diffusers and
# transformers read them. Only weights are random.
SDXL_UNET_CONFIG = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}
SDXL_VAE_CONFIG = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
_CLIP_TEXT_COMMON = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,  # the legacy id: CLIP pools at the highest token id, which is <|endoftext|>
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "pad_token_id": 1,
    "vocab_size": 49408,
}
SDXL_TEXT_ENCODER_CONFIG = {  # CLIP ViT-L/14 text tower (CLIPTextModel)
    **_CLIP_TEXT_COMMON,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
}
SDXL_TEXT_ENCODER_2_CONFIG = {  # OpenCLIP ViT-bigG/14 text tower (CLIPTextModelWithProjection)
    **_CLIP_TEXT_COMMON,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "projection_dim": 1280,
}
SDXL_SCHEDULER_CONFIG = {  # EulerDiscreteScheduler
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


class Budget:
    """Seconds left before the deadline; a phase runs only if its estimate fits."""

    def __init__(self, seconds: float):
        self.start = time.perf_counter()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed() - RESERVE_S

    def fits(self, estimate_s: float) -> bool:
        return self.left() >= estimate_s

    def reason(self, what: str, estimate_s: float) -> str:
        left = max(self.left(), 0)
        return f"time budget: {what} needs about {estimate_s:.0f} s, {left:.0f} s left of {self.seconds:.0f} s"


# ---------------------------------------------------------------------------------- models


def sdxl_unet(device: str = "meta"):
    """The SDXL base UNet from its public config, on `device` (meta: no memory at all)."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device(device):
        return UNet2DConditionModel.from_config(SDXL_UNET_CONFIG)


def sdxl_components(device: str, dtype) -> dict:
    """UNet, VAE and both text encoders with random weights, each cast to `dtype` as soon as
    it is built (so the float32 peak is one module, not the pipeline)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    builders = {
        "unet": lambda: UNet2DConditionModel.from_config(SDXL_UNET_CONFIG),
        "vae": lambda: AutoencoderKL.from_config(SDXL_VAE_CONFIG),
        "text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**SDXL_TEXT_ENCODER_CONFIG)),
        "text_encoder_2": lambda: CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TEXT_ENCODER_2_CONFIG)),
    }
    components = {}
    for name, build in builders.items():
        with torch.device(device):
            module = build()
        components[name] = module.to(dtype=dtype).eval().requires_grad_(False)
    return components


def build_sdxl_pipeline(pipeline_dir: Path, device: str, dtype) -> dict:
    """Save a full-size random-weight SDXL pipeline into `pipeline_dir`; returns its sizes."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from builds.tokenizer import write_clip_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        write_clip_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    components = sdxl_components(device, dtype)
    params = {name: sum(p.numel() for p in module.parameters()) for name, module in components.items()}
    pipe = StableDiffusionXLPipeline(
        **components,
        scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.save_pretrained(pipeline_dir, safe_serialization=True)
    del pipe, components
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return params


def lora_layers(unet, targets: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """The UNet's Linear layers an adapter slot with `targets` covers: name -> (in, out),
    matched like peft does (the name is a target or ends with '.' + target)."""
    import torch

    return {
        name: (module.in_features, module.out_features)
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)
    }


def write_twin_adapter(layers: dict[str, tuple[int, int]], rank: int, seed: int, dtype, out_file: Path,
                       device: str = "cpu") -> str:
    """A random rank-`rank` UNet LoRA in the diffusers format (alpha = rank); returns its sha256.
    The random numbers are drawn on `device` (the full SDXL's ~46M per twin are slow on a CPU)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator(device).manual_seed(seed)

    def draw(*shape: int, scale: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator, device=device) * scale).to(dtype).cpu()

    state = {}
    for name, (fan_in, fan_out) in layers.items():
        state[f"unet.{name}.lora_A.weight"] = draw(rank, fan_in, scale=fan_in**-0.5)
        state[f"unet.{name}.lora_B.weight"] = draw(fan_out, rank, scale=0.1 * rank**-0.5)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_file), metadata={"format": "pt"})
    return hashlib.sha256(out_file.read_bytes()).hexdigest()


def register_twins(settings, layers: dict[str, tuple[int, int]], dtype, device: str = "cpu") -> list[str]:
    """Write the bench twins' adapters into the adapters dir and register them (fresh registry)."""
    from service.registry import open_registry

    registry = open_registry(settings.db_url)
    for index, twin_id in enumerate(TWIN_IDS):
        key = f"{twin_id}.safetensors"
        sha = write_twin_adapter(layers, settings.lora_slot_rank, 2000 + index, dtype, settings.adapters_dir / key, device)
        registry.put_twin(twin_id, display_name=f"{twin_id} (benchmark twin)", adapter_key=key,
                          adapter_sha256=sha, rank=settings.lora_slot_rank)
    registry.engine.dispose()
    return list(TWIN_IDS)


def unet_flops(unet, size: int, batch: int = 2) -> int:
    """FLOPs of one UNet forward at `size` px with a batch of `batch` (2: CFG), counted by
    FlopCounterMode. Run it on a meta-device UNet: shapes only, nothing allocated."""
    import torch
    from torch.utils import flop_counter
    from torch.utils.flop_counter import FlopCounterMode

    config = unet.config
    device = next(unet.parameters()).device
    dtype = next(unet.parameters()).dtype
    latent = size // 8
    cross = config.cross_attention_dim
    kwargs = {}
    if config.addition_embed_type == "text_time":
        n_time_ids = 6  # original size, crop top-left, target size
        pooled = config.projection_class_embeddings_input_dim - n_time_ids * config.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.zeros(batch, pooled, device=device, dtype=dtype),
            "time_ids": torch.zeros(batch, n_time_ids, device=device, dtype=dtype),
        }
    sample = torch.zeros(batch, config.in_channels, latent, latent, device=device, dtype=dtype)
    context = torch.zeros(batch, 77, cross, device=device, dtype=dtype)
    timestep = torch.full((batch,), 999.0, device=device)
    # CPU attention kernels have no formula upstream; count them like the CUDA ones.
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    custom = {cpu_sdpa: lambda q, k, v, *a, **kw: flop_counter.sdpa_flop_count(q, k, v)} if cpu_sdpa is not None else {}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as counter:
        unet(sample, timestep, encoder_hidden_states=context, **kwargs)
    return int(counter.get_total_flops())


def measure_step_flops(settings, size: int) -> dict:
    """FLOPs of one denoising step (one UNet forward, CFG batch 2) of the pipeline at
    `settings.base_model`, with the adapter slot on, on the meta device."""
    import torch
    from diffusers import UNet2DConditionModel

    from service.twins.slot import AdapterSlot

    config = UNet2DConditionModel.load_config(settings.base_model / "unet")
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
        AdapterSlot(unet, settings.lora_slot_rank, settings.lora_targets)
    return {"flops_per_step": unet_flops(unet, size, batch=2), "method": "FlopCounterMode, one UNet forward "
            "(adapter slot on) on the meta device, CFG batch 2"}


# ---------------------------------------------------------------------------------- timing


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_request(twin_id: str | None, size: int, steps: int):
    from service.schemas import GenerateRequest

    return GenerateRequest(twin_id=twin_id, prompt=PROMPT, width=size, height=size, steps=steps,
                           guidance_scale=GUIDANCE, seed=SEED)


def engine_settings(base_env: dict[str, str], backend: str):
    from service.config import Settings

    return Settings.from_env(base_env | {"ATELIER_BACKEND": backend})


def tensorrt_unavailable(settings) -> str | None:
    """Why the tensorrt backend cannot run here (None when it can be tried)."""
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"tensorrt is not importable ({type(exc).__name__}: {exc})"
    from service.engine.backends import create_backend

    try:
        create_backend(settings)
    except Exception as exc:
        return f"the service cannot create a tensorrt backend: {exc}"
    return None


def measure_hotswap(engine, twins: list[str], request_for, check_recompile: bool, budget: Budget,
                    image_s: float) -> dict:
    """Median ms of copying a twin into the adapter slot (adapters already in the device
    tier), and, when `check_recompile`, generations that switch twins under
    error_on_recompile (and dynamo's frame counter) with their `adapter` stage ms."""
    import torch
    from torch._dynamo.utils import counters

    out: dict = {"slot_copy_ms": None, "slot_copy_ms_all": [], "generate_adapter_stage_ms": None,
                 "generate_adapter_stage_ms_all": [], "recompiled": None, "frames_compiled_during_swaps": None}
    tiers = engine.prefetch(twins)
    out["prefetch"] = tiers
    records = [engine.twins.catalog.get(twin_id) for twin_id in twins]
    adapters = [engine.twins.cache.acquire(record)[0] for record in records]
    out["adapter_mib"] = round(adapters[0].nbytes / 2**20, 2)
    slot = engine.twins.slot
    with engine._lock:  # what the engine holds around a switch
        for i in range(HOTSWAP_COPIES):
            adapter = adapters[(i + 1) % len(adapters)]
            sync(engine.device)
            start = time.perf_counter()
            slot.load(adapter)
            sync(engine.device)
            out["slot_copy_ms_all"].append(round((time.perf_counter() - start) * 1000, 3))
    out["slot_copy_ms"] = round(median(out["slot_copy_ms_all"]), 3)
    if not check_recompile:
        return out
    # Generations that each switch the slot: another twin, then the base model (slot cleared), then back.
    sequence = [twins[1], twins[2], None, twins[0]]
    frames_before = counters["frames"]["total"]
    recompile_error = None
    done = 0
    with torch._dynamo.config.patch(error_on_recompile=True):
        for twin_id in sequence:
            if not budget.fits(image_s * 1.2):
                out["skipped"] = budget.reason(f"swap generation {done + 1}/{len(sequence)}", image_s * 1.2)
                break
            try:
                result = engine.generate(request_for(twin_id))
            except torch._dynamo.exc.RecompileError as exc:
                recompile_error = str(exc).strip().splitlines()[0][:300]
                break
            done += 1
            if twin_id is not None:
                out["generate_adapter_stage_ms_all"].append(result.timings_ms["adapter"])
    frames = counters["frames"]["total"] - frames_before
    out["swap_generations"] = done
    out["frames_compiled_during_swaps"] = frames
    if done or recompile_error:
        out["recompiled"] = recompile_error is not None or frames > 0
    if recompile_error:
        out["recompile_error"] = recompile_error
    if out["generate_adapter_stage_ms_all"]:
        out["generate_adapter_stage_ms"] = round(median(out["generate_adapter_stage_ms_all"]), 3)
    return out


def run_backend(name: str, base_env: dict[str, str], twins: list[str], args, budget: Budget, estimates: dict) -> dict:
    """Load an engine on backend `name` and time it; the engine is dropped on return."""
    from service.engine import Engine
    from service.registry import open_registry

    report: dict = {"status": "ok", "reason": None}
    settings = engine_settings(base_env, name)
    if name == "tensorrt":
        reason = tensorrt_unavailable(settings)
        if reason:
            return {"status": "skipped", "reason": reason}
    if name == "compile":
        report["compile_settings"] = {"mode": settings.compile_mode, "dynamic": settings.compile_dynamic,
                                      "compiler": settings.compile_compiler}
    first_estimate = estimates.get("load_s", 0.0) + estimates.get("image_s", 0.0) + (
        COMPILE_ESTIMATE_S[args.device] if name != "eager" else 0.0)
    if not budget.fits(first_estimate):
        return {"status": "skipped", "reason": budget.reason(f"loading {name} and its first call", first_estimate)}
    cuda = args.device == "cuda"
    memory = DeviceMemory(cuda)
    start = time.perf_counter()
    engine = Engine.from_settings(settings, open_registry(settings.db_url))
    sync(engine.device)
    report["load_s"] = round(time.perf_counter() - start, 3)
    memory.sample("loaded")
    active = getattr(engine.backend, "active", None) or engine.backend.name  # tensorrt may fall back
    if active != name:
        reason = getattr(engine.backend, "fallback_reason", None)
        return {"status": "skipped", "reason": f"the {name} backend fell back to {active}: {reason}",
                "load_s": report["load_s"]}
    estimates.setdefault("load_s", report["load_s"])

    def request_for(twin_id):
        return make_request(twin_id, args.size, args.steps)

    request = request_for(twins[0])
    start = time.perf_counter()
    first = engine.generate(request)
    report["first_call_s"] = round(time.perf_counter() - start, 3)
    report["first_call_timings_ms"] = first.timings_ms
    memory.sample("first call")

    totals, denoise, timings = [], [], []
    for run in range(args.runs):
        estimate = (median(totals) if totals else report["first_call_s"]) * 1.2
        if not budget.fits(estimate):
            report["runs_skipped"] = budget.reason(f"run {run + 1}/{args.runs}", estimate)
            break
        result = engine.generate(request)
        memory.sample(f"run {run + 1}")
        totals.append(result.timings_ms["total"] / 1000)
        denoise.append(result.timings_ms["denoise"])
        timings.append(result.timings_ms)
    report["runs"] = len(totals)
    if not totals:
        report.update(status="partial", reason=report.get("runs_skipped"))
        report["s_per_image"] = report["step_ms"] = None
    else:
        report["s_per_image"] = round(median(totals), 4)
        report["s_per_image_all"] = [round(t, 4) for t in totals]
        report["step_ms"] = round(median(denoise) / args.steps, 3)
        report["denoise_ms_all"] = denoise
        report["timings_ms_median"] = {k: round(median([t[k] for t in timings]), 3) for k in timings[0]}
        report["compile_s"] = round(report["first_call_s"] - report["s_per_image"], 3) if name != "eager" else None
        report["first_call_overhead_s"] = round(report["first_call_s"] - report["s_per_image"], 3)
        estimates.setdefault("image_s", report["s_per_image"])
    image_s = report["s_per_image"] or report["first_call_s"]
    if name in ("eager", "compile") and args.hotswap:
        try:
            report["hotswap"] = measure_hotswap(engine, twins, request_for, name == "compile", budget, image_s)
        except Exception as exc:  # keep the timings above
            report["hotswap"] = {"error": f"{type(exc).__name__}: {exc}", "recompiled": None}
    memory.sample("end")
    report.update(memory.report())
    return report


class DeviceMemory:
    """Device memory a backend holds, the same way for every backend: the drop in
    `torch.cuda.mem_get_info()`'s free bytes since just before the engine was loaded, sampled
    (after a device sync) when loaded, after the first call, after each run and at the end;
    the peak is the largest sample. Unlike `torch.cuda.max_memory_allocated()`, it sees
    TensorRT's engines and activation block, cuBLAS/cuDNN workspaces and the caching
    allocator's reserve; it also sees other processes on the GPU (none on the bench machine).
    Between samples a short-lived peak can be missed (the caching allocator keeps what it
    reserved, so torch's own peaks stay visible). No GPU: every figure is None."""

    METHOD = "torch.cuda.mem_get_info free-bytes drop since before loading; max over samples"

    def __init__(self, cuda: bool):
        import torch

        self.cuda = cuda
        self.samples: dict[str, int] = {}
        if cuda:
            release_memory()
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
            self.free_before = torch.cuda.mem_get_info()[0]

    def sample(self, label: str) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            self.samples[label] = self.free_before - torch.cuda.mem_get_info()[0]

    def report(self) -> dict:
        import torch

        if not self.cuda:
            return {"peak_memory_bytes": None, "peak_memory_gib": None, "memory_method": None}
        peak = max(self.samples.values())
        return {"peak_memory_bytes": peak, "peak_memory_gib": round(peak / 2**30, 3), "memory_method": self.METHOD,
                "memory_samples_bytes": self.samples,
                "torch_max_allocated_bytes": torch.cuda.max_memory_allocated()}  # torch's tensors only, for reference


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------- many twins, one pass

MIXED_TWINS = tuple(f"bench-m{i}" for i in range(8))  # the drop's twins (2 items each); the first 4 batch together
MIXED_IMAGES = 4 * 4 * 2 + 3 * 16 + 2 * 3  # about what run_mixed renders with --runs 2, for the budget


def register_mixed_twins(settings, layers: dict[str, tuple[int, int]], dtype, device: str) -> list[str]:
    """MIXED_TWINS' adapters (random, the slot's rank), registered once per work directory."""
    from service.registry import open_registry

    registry = open_registry(settings.db_url)
    for index, twin_id in enumerate(MIXED_TWINS):
        if registry.twins.get_twin(twin_id) is not None:
            continue
        key = f"{twin_id}.safetensors"
        sha = write_twin_adapter(layers, settings.lora_slot_rank, 3000 + index, dtype, settings.adapters_dir / key, device)
        registry.put_twin(twin_id, display_name=f"{twin_id} (benchmark twin)", adapter_key=key, adapter_sha256=sha,
                          rank=settings.lora_slot_rank)
    registry.engine.dispose()
    return list(MIXED_TWINS)


def run_mixed(base_env: dict[str, str], layers: dict[str, tuple[int, int]], dtype, args, budget: Budget,
              estimates: dict) -> dict:
    """Issue 29's measures at this size on the eager backend (CUDA only), as bench/mixed.py takes
    them on the demo pipeline: one batch of 4 items of 4 twins against 4 of one twin
    (`mixed_vs_same`) and, at the pipeline call, against PEFT's per-row `adapter_names` on a
    second copy of the pipeline (`mixed_vs_peft`); a drop of 16 items over 8 twins in calls of
    4 across twins against calls of one twin (2 items), and 16 items of one twin in calls of 4
    (`drop_speedup`, `drop_ceiling`: engine calls in a row; no gateway here, bentoml is not on
    the GPU machine, so the render hop's cost is not in them); the first image of a twin whose
    adapter is on disk only against one on the device (`cold_vs_warm`)."""
    if args.device != "cuda":
        return {"status": "skipped", "reason": "no CUDA device: the mixed-twin measures are for SDXL at 1024 px on a "
                                               "GPU (bench/mixed.py takes them on the demo pipeline)"}
    need = estimates.get("load_s", 60.0) * 2 + (estimates.get("image_s") or 3.0) * MIXED_IMAGES
    if not budget.fits(need):
        return {"status": "skipped", "reason": budget.reason("the mixed-twin measures", need)}
    import torch

    from bench.mixed import disk_only, peft_pipeline, pipe_call
    from service.engine import Engine
    from service.registry import open_registry
    from service.schemas import GenerateRequest

    settings = engine_settings(base_env, "eager")
    twins = register_mixed_twins(settings, layers, dtype, args.device)
    four = twins[:4]
    engine = Engine.from_settings(settings, open_registry(settings.db_url))
    out: dict = {"status": "ok", "backend": "eager", "twins": len(twins), "rank": settings.lora_slot_rank}

    def request(twin_id: str, seed: int):
        return GenerateRequest(twin_id=twin_id, prompt=PROMPT, width=args.size, height=args.size, steps=args.steps,
                               guidance_scale=GUIDANCE, seed=seed)

    def calls(groups: list[list[str]]) -> float:
        """Seconds for these engine calls in a row (each group one call, seeds SEED + item)."""
        start, n = time.perf_counter(), 0
        for group in groups:
            engine.generate_batch([(request(t, SEED + n + i), SEED + n + i, f"{n + i:032x}") for i, t in enumerate(group)])
            n += len(group)
        sync(engine.device)
        return time.perf_counter() - start

    # 1. one batch: 4 twins against one twin, interleaved
    engine.prefetch(twins)
    calls([[four[0]] * 4, four])  # first calls
    batch_s: dict[str, list[float]] = {"same": [], "mixed": []}
    for _ in range(args.runs):
        if not budget.fits(max(batch_s["same"] or [10.0]) * 2.5):
            out["batch_skipped"] = "time budget"
            break
        batch_s["same"].append(calls([[four[0]] * 4]))
        batch_s["mixed"].append(calls([four]))
    if batch_s["same"]:
        out["batch_s"] = {k: round(median(v), 3) for k, v in batch_s.items()}
        out["mixed_vs_same"] = round(median(batch_s["same"]) / median(batch_s["mixed"]), 3)
    # ... and against PEFT's mixed-adapter batching, at the pipeline call
    adapters = [engine.twins.cache.acquire(engine.twins.catalog.get(t))[0] for t in four]
    peft_pipe, per_row = peft_pipeline(settings, four, args.device, dtype)
    names = [f"t{i}" for i in range(len(four))]

    def lanes_call() -> float:
        with engine._lock:
            engine.backend.use_adapters(engine.twins.slot, adapters, True)
            return pipe_call(engine.pipe, args.size, args.steps, len(four), PROMPT)[0]

    def peft_call() -> float:
        with per_row(names + names):
            return pipe_call(peft_pipe, args.size, args.steps, len(four), PROMPT)[0]

    lanes_call(), peft_call()  # first calls
    pipe_s: dict[str, list[float]] = {"lanes": [], "peft": []}
    for _ in range(args.runs):
        if not budget.fits(max(pipe_s["peft"] or [10.0]) * 2.5):
            out["peft_skipped"] = "time budget"
            break
        pipe_s["lanes"].append(lanes_call())
        pipe_s["peft"].append(peft_call())
    del peft_pipe
    release_memory()
    if pipe_s["lanes"]:
        out["pipe_s"] = {k: round(median(v), 3) for k, v in pipe_s.items()}
        out["mixed_vs_peft"] = round(median(pipe_s["peft"]) / median(pipe_s["lanes"]), 3)

    # 2. the drop: 16 items over 8 twins (interleaved), in three groupings
    interleaved = [twins[i % len(twins)] for i in range(2 * len(twins))]
    groupings = {"by_twin": [[t, t] for t in twins],
                 "mixed": [interleaved[i:i + 4] for i in range(0, len(interleaved), 4)],
                 "one_twin": [[twins[0]] * 4 for _ in range(len(interleaved) // 4)]}
    drop_s: dict[str, float] = {}
    for name, groups in groupings.items():
        estimate = (median(batch_s["same"]) / 4 if batch_s["same"] else 3.0) * len(interleaved) * 1.5
        if not budget.fits(estimate):
            out["drop_skipped"] = budget.reason(f"the {name} drop", estimate)
            break
        drop_s[name] = round(calls(groups), 3)
    out["drop_s"] = drop_s
    if len(drop_s) == 3:
        out["drop_speedup"] = round(drop_s["by_twin"] / drop_s["mixed"], 3)
        out["drop_ceiling"] = round(drop_s["by_twin"] / drop_s["one_twin"], 3)

    # 3. a cold twin: its adapter on disk only, then on the device
    cold, warm, waits = [], [], []
    for twin_id in twins[4:4 + max(1, args.runs)]:
        if not budget.fits((median(warm) if warm else 5.0) * 3):
            out["cold_skipped"] = "time budget"
            break
        disk_only(engine, twin_id)
        start = time.perf_counter()
        result = engine.generate(request(twin_id, SEED))
        cold.append(time.perf_counter() - start)
        waits.append(result.timings_ms.get("adapter_wait"))
        start = time.perf_counter()
        engine.generate(request(twin_id, SEED))
        warm.append(time.perf_counter() - start)
    if cold:
        out.update(cold_s=round(median(cold), 3), warm_s=round(median(warm), 3), cold_adapter_wait_ms=waits,
                   cold_vs_warm=round(median(cold) / median(warm), 3))
    del engine
    release_memory()
    return out


# ---------------------------------------------------------------------------------- report


def table(report: dict) -> list[str]:
    def num(value, fmt):
        if value is None:
            return "-"
        if fmt.endswith("f") and 0 < abs(value) < 10 ** -int(fmt[1:-1]):  # tiny (the CPU demo): 3 significant digits
            return format(value, ".3g")
        return format(value, fmt)

    lines = [f"{'backend':<10}{'s/image':>9}{'step ms':>10}{'TFLOP/s':>9}{'compile s':>11}{'peak GiB':>10}  status"]
    for name, row in report["backends"].items():
        if row["status"] in ("skipped", "error"):
            lines.append(f"{name:<10}{'':>9}{'':>10}{'':>9}{'':>11}{'':>10}  {row['status']}: {row['reason']}")
            continue
        status = row["status"] if row["status"] == "ok" else f"{row['status']}: {row['reason']}"
        if row.get("runs_skipped") and row.get("runs"):
            status += f" ({row['runs']}/{report['runs']} runs: time budget)"
        lines.append(f"{name:<10}{num(row.get('s_per_image'), '.3f'):>9}{num(row.get('step_ms'), '.2f'):>10}"
                     f"{num(row.get('achieved_tflops'), '.1f'):>9}{num(row.get('compile_s'), '.1f'):>11}"
                     f"{num(row.get('peak_memory_gib'), '.2f'):>10}  {status}")
    flops = report.get("flops") or {}
    steps = f"{report['steps']} step{'s' if report['steps'] != 1 else ''}"
    shape = f"{report['size']}x{report['size']}, {steps}, CFG, {report['dtype']}, {report['pipeline']}"
    if flops.get("tflop_per_step") is not None:
        lines.append(f"UNet TFLOP/step: {flops['flops_per_step'] / 1e12:.4g} measured, {REFERENCE_TFLOP_PER_STEP} reference "
                     f"(SDXL at 1024 px); {shape}")
    else:
        lines.append(f"UNet TFLOP/step: not measured ({flops.get('reason')}); {shape}")
    swap = report.get("hotswap")
    if swap:
        lines.append(f"hotswap ({swap['backend']}): slot copy {num(swap.get('slot_copy_ms'), '.2f')} ms, "
                     f"adapter stage {num(swap.get('generate_adapter_stage_ms'), '.2f')} ms, "
                     f"recompiled: {swap.get('recompiled')}")
    mixed = report.get("mixed")
    if mixed:
        if mixed.get("status") == "ok":
            lines.append("mixed twins (eager): " + ", ".join(f"{k} {num(mixed.get(k), '.3f')}" for k in (
                "mixed_vs_same", "mixed_vs_peft", "drop_speedup", "drop_ceiling", "cold_vs_warm")))
        else:
            lines.append(f"mixed twins: {mixed.get('status')}: {mixed.get('reason')}")
    lines.append(f"total {report['total_s']:.1f} s of a {report['budget_s']:.0f} s budget")
    return lines


def resolve(args) -> None:
    import torch

    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    column = 0 if args.device == "cuda" else 1
    for key, values in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, values[column])
    if args.pipeline == "auto":
        args.pipeline = "sdxl" if args.device == "cuda" else "demo"
    if args.dtype == "auto":
        if args.device == "cuda":
            args.dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            args.dtype = "float32"
    args.dtype = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}.get(args.dtype, args.dtype)
    if args.device == "cpu" and args.dtype != "float32":
        raise SystemExit(f"--dtype {args.dtype} is not supported on CPU (the engine runs float32 there)")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown or not args.backends:
        raise SystemExit(f"--backends takes a comma-separated subset of {','.join(BACKENDS)}, got {unknown or 'nothing'}")
    if args.size < 256 or args.size % 8:
        raise SystemExit("--size must be a multiple of 8, at least 256 (the service's limits)")
    if args.out is None:
        args.out = REPO / "bench" / "results" / f"gpu-{time.strftime('%Y%m%d-%H%M%S')}.json"


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help="width = height in px (default 1024 on CUDA, 256 on CPU)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 30 on CUDA, 4 on CPU)")
    parser.add_argument("--runs", type=int, default=None, help="timed generations per backend after the first (default 3)")
    parser.add_argument("--dtype", default="auto",
                        choices=("auto", "float16", "bfloat16", "float32", "fp16", "bf16", "fp32"),
                        help="auto: bfloat16 (float16 without bf16 support) on CUDA, float32 on CPU")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, in order (default: all)")
    parser.add_argument("--out", type=Path, default=None,
                        help="full JSON report (default bench/results/gpu-<timestamp>.json)")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="wall-clock budget; later measurements are skipped to keep it")
    parser.add_argument("--pipeline", default="auto", choices=("auto", "sdxl", "demo"),
                        help="auto: full-size random SDXL on CUDA, the demo pipeline on CPU")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the pipeline, twins and registry go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-hotswap", dest="hotswap", action="store_false", help="skip the hot-swap measurements")
    parser.add_argument("--no-mixed", dest="mixed", action="store_false",
                        help="skip the mixed-twin measures (CUDA only: batch, drop, cold twin)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    budget = Budget(args.budget_s)
    import torch

    resolve(args)
    dtype = getattr(torch, args.dtype)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="atelier-bench-gpu-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "bench": "gpu",
        "device": args.device,
        "pipeline": args.pipeline,
        "size": args.size,
        "steps": args.steps,
        "runs": args.runs,
        "dtype": args.dtype,
        "guidance_scale": GUIDANCE,
        "unet_batch": 2,
        "backends_requested": args.backends,
        "budget_s": args.budget_s,
        "reference_tflop_per_step": REFERENCE_TFLOP_PER_STEP,
        "machine": describe(),
    }
    try:
        # 1. The pipeline: full-size random SDXL, or the demo.
        start = time.perf_counter()
        if args.pipeline == "sdxl":
            pipeline_dir = workdir / "pipeline"
            if not (pipeline_dir / "model_index.json").exists():
                # On CPU (a check of this path, not a benchmark) the files are bfloat16 to halve the
                # memory and disk needed; the engine loads them as float32.
                save_dtype = dtype if args.device == "cuda" else torch.bfloat16
                report["parameters"] = build_sdxl_pipeline(pipeline_dir, args.device, save_dtype)
        else:
            from builds.demo import build_demo

            pipeline_dir = build_demo(workdir / "demo-home").pipeline_dir
        report["build_s"] = round(time.perf_counter() - start, 3)
        report["pipeline_bytes"] = sum(p.stat().st_size for p in pipeline_dir.rglob("*") if p.is_file())

        # 2. Settings, twins in a fresh registry.
        home = workdir / "home"
        base_env = {
            "ATELIER_HOME": str(home),
            "ATELIER_BASE_MODEL": str(pipeline_dir),
            "ATELIER_ADAPTERS_DIR": str(home / "adapters"),
            "ATELIER_DB_URL": f"sqlite:///{home / 'bench-registry.db'}",
            "ATELIER_WARMUP": "0",
            "ATELIER_DEVICE": args.device,
            "ATELIER_DTYPE": args.dtype,
            "ATELIER_JOBS_WORKER": "0",
        }
        # Backend and slot knobs may come from the environment (e.g. ATELIER_COMPILE_MODE=full);
        # where the bench's files live may not.
        from_env = {k: v for k, v in os.environ.items() if k in PASSTHROUGH or k.startswith(PASSTHROUGH_PREFIXES)}
        base_env |= from_env
        report["settings_from_env"] = from_env
        home.mkdir(parents=True, exist_ok=True)
        settings = engine_settings(base_env, "eager")
        start = time.perf_counter()
        from diffusers import UNet2DConditionModel

        with torch.device("meta"):
            meta_unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(pipeline_dir / "unet"))
        layers = lora_layers(meta_unet, settings.lora_targets)
        report["unet_parameters"] = sum(p.numel() for p in meta_unet.parameters())
        del meta_unet
        twins = register_twins(settings, layers, dtype, args.device)
        report["twins"] = {"ids": twins, "rank": settings.lora_slot_rank, "targets": list(settings.lora_targets),
                           "layers": len(layers), "seconds": round(time.perf_counter() - start, 3)}

        # 3. FLOPs of one step (meta device: no memory, no device time).
        start = time.perf_counter()
        try:
            flops = measure_step_flops(settings, args.size)
            flops["tflop_per_step"] = round(flops["flops_per_step"] / 1e12, 4)
        except Exception as exc:  # a counting failure must not cost the timings
            flops = {"flops_per_step": None, "tflop_per_step": None, "reason": f"{type(exc).__name__}: {exc}"}
        flops["seconds"] = round(time.perf_counter() - start, 3)
        report["flops"] = flops

        # 4. Backends, one loaded at a time.
        estimates: dict = {}
        report["backends"] = {}
        for name in args.backends:
            try:
                row = run_backend(name, base_env, twins, args, budget, estimates)
            except Exception as exc:
                row = {"status": "skipped" if name == "tensorrt" else "error", "reason": f"{type(exc).__name__}: {exc}"}
            if row.get("step_ms") and flops.get("flops_per_step"):
                row["achieved_tflops"] = round(flops["flops_per_step"] / (row["step_ms"] / 1000) / 1e12, 3)
            report["backends"][name] = row
            release_memory()  # the next backend loads into freed memory
        for name in ("compile", "eager"):  # the compile figures when there are any
            swap = report["backends"].get(name, {}).get("hotswap")
            if swap:
                report["hotswap"] = {"backend": name, **{k: swap.get(k) for k in (
                    "slot_copy_ms", "generate_adapter_stage_ms", "recompiled", "frames_compiled_during_swaps")}}
                break
        # 5. Many twins, one pass (issue 29), on the eager backend.
        if args.mixed:
            try:
                report["mixed"] = run_mixed(base_env, layers, dtype, args, budget, estimates)
            except Exception as exc:  # keep the backends' figures
                report["mixed"] = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
        peaks = [row["peak_memory_bytes"] for row in report["backends"].values() if row.get("peak_memory_bytes")]
        report["peak_memory_bytes"] = max(peaks) if peaks else None
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report["total_s"] = round(budget.elapsed(), 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    report["out"] = str(args.out)
    print(json.dumps(report), flush=True)
    print("\n".join(table(report)), flush=True)
    return report


if __name__ == "__main__":
    result = main()
    errors = [name for name, row in result["backends"].items() if row["status"] == "error"]
    raise SystemExit(1 if errors else 0)
