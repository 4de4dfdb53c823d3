"""The `tensorrt` backend: the UNet (and VAE decoder, text encoders) run as TensorRT engines.

UNVERIFIED ON A GPU: written against the TensorRT 10 Python API and NVIDIA's SDXL demo
(demo/Diffusion), but the machine it was written on has neither CUDA nor TensorRT. What runs
in CI is everything before TensorRT is touched (the typed refusals, the manifest and key
checks, the fallback), and, against stand-in engines and refitters on CPU: reading profiles,
warm-up at the OPT shape, the 422 for requests outside every profile, choosing a profile's
context per call, the shared activation memory, the stream ordering, refit bookkeeping with
base weights from the fp32 ONNX initializers, and a whole generation through the engine
runners. The test on a real engine in tests/test_tensorrt_backend.py skips without CUDA and
TensorRT.

Owns: checking that the engines under `engines_dir` were built for this machine (GPU name and
compute capability, TensorRT version, this pipeline's fingerprint; precision and profile when
asked for) and are intact (sha256), loading them, and swapping them into the loaded pipeline
as thin torch-in / torch-out runners, so `service.engine.pipeline` runs unchanged. Engines and
I/O follow builds/onnx_export.py's graphs:

    text_encoder(_2)  input_ids -> last_hidden_state, hidden_states_penultimate, pooler_output | text_embeds
    unet              sample, timestep [1], encoder_hidden_states[, text_embeds, time_ids] -> noise_pred
    vae_decoder       latent (already / scaling_factor) -> image          (replaces `vae.decode`)

Shapes: the engines' optimization profiles (read with `get_tensor_profile_shape`, not taken
from the manifest's profile string) are the serving range. `check_request` refuses a request
that no profile covers with a 422 (`OutsideEngineProfile`, code invalid_field) naming the
supported range, before any GPU work: nothing else could serve it, since the torch modules
the engines replace have left the GPU. `warmup_shapes` is the UNet's OPT shape of each profile.
Each engine gets one execution context per profile, selected per call by the input shapes.

Memory, as NVIDIA's demo does it: every context runs on one user-managed activation block,
sized by the largest engine's `device_memory_size_v2` (the contexts never run at the same
time: they run one after another on one stream, under the pipeline lock); the torch modules
the engines replace are moved to the CPU (`offload_to`), the VAE's encoder stays.

Speed: all engine work is enqueued on one dedicated CUDA stream (`EngineStream`), ordered
with torch's current stream by stream waits (events), never host synchronisations; nothing
on the per-call path reads a GPU value on the host.

Twins: an engine has no LoRA branch, so the adapter slot's peft layers (still on the torch
UNet) are bypassed. `switch_adapter` fuses a twin into the slot layers' weights
(`lora_fuse.FusedWeights`) and refits the UNet engine in place (`tensorrt.Refitter`); only the
UNet engine is built refittable. The base weights of those layers are the fp32 ONNX
initializers the engine was built from (the manifest's unet.onnx, sha256-checked), kept in
float32 on the GPU, so a refit carries exactly what a fresh build of the fused weights would;
only when no ONNX export ships with the engines are they copied from the served UNet (its
dtype's rounding then reaches the refitted layers, and a warning says so). Refit names come
from the manifest's `refit_map` artifact (torch parameter -> ONNX initializer,
`lora_fuse.match_onnx_initializers`); without one, torch names under `unet.` are assumed, and
checked against the engine's refittable weights at start (this project's exporter folds
Linear weights into anonymous transposed initializers, so the attention projections need the
map). Weights TensorRT fused with a refitted one (q, k, v sharing one GEMM) are set again
from their current values (ONNX initializers where available).

When TensorRT, CUDA or a matching engine is missing, `prepare` raises a typed error
(`TensorRTUnavailable`, `EngineMismatch`, `ArtifactError`), or, with `fallback` set to
"eager" or "compile", reports why (`report_fallback`: log line and metric) and prepares the
pipeline with that backend instead (`active`, `fallback_reason` and `status()` say what
happened). The pipeline is only modified once every engine has been checked and loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from service.engine.artifacts import Artifact, ArtifactError, EngineKey, check_engine, read_manifest, verified_file
from service.engine.backends.base import MAX_SIDE, MIN_SIDE, Backend, WarmupShape, report_fallback
from service.engine.backends.eager import EagerBackend
from service.engine.loading import fingerprint_pipeline
from service.engine.lora_fuse import FusedWeights, OnnxWeight, base_weights, load_refit_map, onnx_initializer_name
from service.errors import AtelierError, InvalidRequest
from service.twins.slot import PreparedAdapter

log = logging.getLogger("atelier.engine")

COMPONENTS = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
FALLBACKS = ("eager", "compile")
REFIT_MAP_KIND = "refit_map"
# What each engine's first input is checked on, per request (the other inputs share its batch).
MAX_IMAGES = 4  # GenerateRequest.num_images' bound: the largest warm-up a request can express
SHAPE_INPUTS = {"unet": "sample", "vae_decoder": "latent", "text_encoder": "input_ids", "text_encoder_2": "input_ids"}


class TensorRTUnavailable(AtelierError):
    """TensorRT or a CUDA GPU is not available in this process."""

    status = 503
    code = "tensorrt_unavailable"


class OutsideEngineProfile(InvalidRequest):
    """A request that no optimization profile of the engines covers: refused before any GPU work
    (422, code invalid_field, `field` width, height or num_images; the message names the range)."""


@dataclass(frozen=True)
class MachineFacts:
    """What an engine must have been built for, as seen on this machine."""

    gpu_name: str
    compute_capability: str
    trt_version: str

    def key(self, component: str, pipeline_hash: str, precision: str, profile: str) -> EngineKey:
        return EngineKey(pipeline_hash, component, self.gpu_name, self.compute_capability, self.trt_version,
                         precision, profile)


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(
            f"ATELIER_BACKEND=tensorrt needs the TensorRT Python package (`pip install tensorrt`), "
            f"which cannot be imported here: {exc}"
        ) from None
    return tensorrt


def machine_facts(trt) -> MachineFacts:
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("ATELIER_BACKEND=tensorrt needs a CUDA GPU; torch sees none")
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return MachineFacts(torch.cuda.get_device_name(index), f"{major}.{minor}", str(trt.__version__))


def verified_engines(engines_dir: Path, facts: MachineFacts, pipeline_hash: str, precision: str | None = None,
                     profile: str | None = None) -> dict[str, tuple[Artifact, Path]]:
    """Every engine in the manifest, checked against this machine and its sha256.

    `precision` / `profile` None accept what the engine was built with (a build choice, not a
    machine fact); the GPU, compute capability, TensorRT version and pipeline must match.
    """
    engines = read_manifest(engines_dir).engines()
    if "unet" not in engines:
        raise ArtifactError(f"the manifest in {engines_dir} lists no unet engine; run builds/compile.py")
    found = {}
    for component, artifact in sorted(engines.items()):
        if component not in COMPONENTS:
            raise ArtifactError(f"the manifest in {engines_dir} lists an engine for unknown component {component!r}")
        built = artifact.key
        expected = facts.key(component, pipeline_hash, precision or (built.precision if built else ""),
                             profile or (built.profile if built else ""))
        found[component] = (artifact, check_engine(artifact, expected, engines_dir))
    return found


def refit_map_of(engines_dir: Path) -> dict[str, OnnxWeight] | None:
    """The UNet's torch -> ONNX weight map, when the manifest ships one (sha256-checked)."""
    for artifact in read_manifest(engines_dir).artifacts:
        if artifact.component == "unet" and artifact.kind == REFIT_MAP_KIND:
            return load_refit_map(verified_file(artifact, engines_dir))
    return None


def unet_onnx_of(engines_dir: Path) -> Path | None:
    """The UNet's ONNX export the engine was built from, when the manifest ships it (every file
    of it sha256-checked: the .onnx and its .onnx.data), else None."""
    files = [a for a in read_manifest(engines_dir).artifacts if a.component == "unet" and a.kind == "onnx"]
    paths = [verified_file(artifact, engines_dir) for artifact in files]
    return next((p for p in paths if p.name.endswith(".onnx")), None)


class OnnxInitializers:
    """The named initializers of an ONNX file, read one at a time on demand (external data
    included), so a 10 GB UNet export is never loaded whole."""

    def __init__(self, path: Path):
        import onnx

        self.path = Path(path)
        model = onnx.load(str(self.path), load_external_data=False)
        self._tensors = {tensor.name: tensor for tensor in model.graph.initializer}

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def get(self, name: str) -> torch.Tensor:
        """The initializer `name` as a CPU tensor, in ONNX layout and dtype (float32 for this project's exports)."""
        from onnx import external_data_helper, numpy_helper

        tensor = self._tensors.get(name)
        if tensor is None:
            raise ArtifactError(f"{self.path.name} has no initializer {name!r}")
        external = external_data_helper.uses_external_data(tensor)
        if external:
            external_data_helper.load_external_data_for_tensor(tensor, str(self.path.parent))
        try:
            return torch.from_numpy(numpy_helper.to_array(tensor).copy())
        finally:
            if external:
                tensor.ClearField("raw_data")  # read again from disk if ever needed again


def onnx_base_weights(source: OnnxInitializers, shapes: Mapping[str, torch.Size], refit_map: Mapping[str, OnnxWeight],
                      device: torch.device | str) -> dict[str, torch.Tensor]:
    """The slot layers' base weights as the engine was built from them: the fp32 ONNX
    initializers, in torch layout, float32, on `device`."""
    out = {}
    for param, shape in shapes.items():
        target = _target(param, refit_map)
        tensor = source.get(target.name)
        tensor = tensor.t() if target.transposed else tensor
        if tuple(tensor.shape) != tuple(shape):
            raise ArtifactError(f"the ONNX initializer {target.name} (for {param}) has shape {tuple(tensor.shape)}, "
                                f"the UNet weight {tuple(shape)}: the export does not match this pipeline")
        out[param] = tensor.to(device=device, dtype=torch.float32).contiguous()
    return out


def default_fallback(name: str) -> Backend:
    if name == "eager":
        return EagerBackend()
    if name == "compile":
        from service.engine.backends.compile import CompileBackend

        return CompileBackend()
    raise ValueError(f"the tensorrt backend can fall back to {' or '.join(FALLBACKS)}, not {name!r}")


# ---------------------------------------------------------------------------------------------
# Profiles: what the engines accept.


Shape = tuple[int, ...]


@dataclass(frozen=True)
class EngineProfile:
    """One optimization profile of an engine: each input's (min, opt, max) shape."""

    index: int
    shapes: Mapping[str, tuple[Shape, Shape, Shape]]

    def covers(self, feeds: Mapping[str, Shape]) -> bool:
        """Whether every shape in `feeds` (input name -> shape) lies within this profile."""
        for name, shape in feeds.items():
            bounds = self.shapes.get(name)
            if bounds is None:
                return False
            low, _, high = bounds
            if len(shape) != len(low) or any(not lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
                return False
        return True


def engine_profiles(trt, engine) -> list[EngineProfile]:
    """Every optimization profile of `engine`, read from the engine itself (`get_tensor_profile_shape`)."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    profiles = []
    for index in range(engine.num_optimization_profiles):
        shapes = {}
        for name in inputs:
            low, opt, high = engine.get_tensor_profile_shape(name, index)
            shapes[name] = (tuple(int(d) for d in low), tuple(int(d) for d in opt), tuple(int(d) for d in high))
        profiles.append(EngineProfile(index, shapes))
    if not profiles:
        raise ArtifactError("the engine has no optimization profile")
    return profiles


@dataclass(frozen=True)
class PipelineShapes:
    """What turns a request into engine input shapes (read off the loaded pipeline once)."""

    latent_scale: int = 8  # pixels per latent cell
    latent_channels: int = 4
    tokens: int = 77
    cfg_possible: bool = True  # False for a guidance-distilled UNet (time_cond_proj_dim): never doubled

    @classmethod
    def of(cls, pipe) -> "PipelineShapes":
        config = pipe.unet.config
        tokenizer = getattr(pipe, "tokenizer", None)
        return cls(int(getattr(pipe, "vae_scale_factor", 8)), int(config.in_channels),
                   int(getattr(tokenizer, "model_max_length", 77)), getattr(config, "time_cond_proj_dim", None) is None)

    def unet_batch(self, images: int, guidance_scale: float) -> int:
        """The UNet's batch for `images` images: doubled under classifier-free guidance (guidance > 1),
        exactly as service.engine.pipeline decides it."""
        return images * (2 if (guidance_scale > 1.0 and self.cfg_possible) else 1)

    def feeds(self, width: int, height: int, images: int, guidance_scale: float) -> dict[str, dict[str, Shape]]:
        """Component -> {checked input: shape} for one request (text encoders run once per prompt: batch 1)."""
        h, w = height // self.latent_scale, width // self.latent_scale
        return {"unet": {"sample": (self.unet_batch(images, guidance_scale), self.latent_channels, h, w)},
                "vae_decoder": {"latent": (images, self.latent_channels, h, w)},
                "text_encoder": {"input_ids": (1, self.tokens)},
                "text_encoder_2": {"input_ids": (1, self.tokens)}}


def describe_profile(component: str, profile: EngineProfile, shapes: PipelineShapes) -> str:
    """A profile in the API's terms: "256-1280 x 256-1280 px (width x height), 1-4 images" ..."""
    name = SHAPE_INPUTS[component]
    low, _, high = profile.shapes[name]
    if component in ("unet", "vae_decoder"):
        s = shapes.latent_scale
        size = f"{low[3] * s}-{high[3] * s} x {low[2] * s}-{high[2] * s} px (width x height)"
        if component == "unet" and shapes.cfg_possible:
            most = high[0] // 2
            images = f"up to {most} image{'s' if most != 1 else ''} with guidance_scale > 1, {high[0]} without"
            if most < 1:
                images = f"guidance_scale <= 1 only, up to {high[0]} image{'s' if high[0] != 1 else ''}"
        else:
            images = f"up to {high[0]} image{'s' if high[0] != 1 else ''}"
        return f"{size}, {images}"
    return f"prompt batches {low[0]}-{high[0]}"


def range_summary(profiles: Mapping[str, list[EngineProfile]], shapes: PipelineShapes) -> list[str]:
    """Each UNet profile in the API's terms (what the service's ready line and docs show)."""
    return [describe_profile("unet", p, shapes) for p in profiles.get("unet", [])]


# ---------------------------------------------------------------------------------------------
# The backend.


class TensorRTBackend(Backend):
    name = "tensorrt"
    offload_to = "cpu"  # where the torch modules the engines replace go (tests use "meta")

    def __init__(self, engines_dir: Path, pipeline_dir: Path, fallback: str | None = None, *,
                 precision: str | None = None, profile: str | None = None, lora_scale: float = 1.0,
                 make_fallback: Callable[[str], Backend] = default_fallback):
        if fallback is not None and fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS} or None, got {fallback!r}")
        self.engines_dir = Path(engines_dir)
        self.pipeline_dir = Path(pipeline_dir)
        self.fallback = fallback
        self.precision, self.profile, self.lora_scale = precision, profile, lora_scale
        self.make_fallback = make_fallback
        self.active: str | None = None  # "tensorrt", or the fallback's name, once prepared
        self.fallback_reason: str | None = None
        self.fallback_backend: Backend | None = None
        self.runners: dict[str, EngineRunner] = {}
        self.engines: dict[str, object] = {}
        self.fused: FusedWeights | None = None
        self.refit_map: dict[str, OnnxWeight] = {}
        self.refit_base_source: str | None = None  # "onnx" (fp32 initializers) or "torch:<dtype>"
        self.shapes = PipelineShapes()
        self.stream: EngineStream | None = None
        self.memory: SharedActivations | None = None
        self._onnx: OnnxInitializers | None = None
        self._onnx_cache: dict[str, torch.Tensor] = {}
        self._unet_params: dict[str, torch.Tensor] = {}
        self._param_of: dict[str, str] = {}
        self._trt = self._logger = self._runtime = None

    def machine_facts(self, trt) -> MachineFacts:
        return machine_facts(trt)

    # -- preparing --------------------------------------------------------------------------

    def prepare(self, pipe) -> None:
        EagerBackend().prepare(pipe)
        try:
            trt = import_tensorrt()
            facts = self.machine_facts(trt)
            found = verified_engines(self.engines_dir, facts, fingerprint_pipeline(self.pipeline_dir),
                                     self.precision, self.profile)
            slot = base_weights(pipe.unet, device="meta")  # the adapter slot's layers: names and shapes only
            if slot and not found["unet"][0].refittable:
                raise ArtifactError("the unet engine was built without refit; twins cannot be switched on it "
                                    "(rebuild with refit, or serve with another backend)")
            refit_map = refit_map_of(self.engines_dir) or {}
            device = _device_of(pipe.unet)
            base, onnx = self._refit_base(pipe.unet, slot, refit_map, device) if slot else ({}, None)
            engines = self._deserialize(trt, {c: path for c, (_, path) in found.items()})
            self._attach(trt, engines, base, refit_map, pipe.unet, onnx)
            self.runners = self._runners(trt, engines, device)
            self.shapes = PipelineShapes.of(pipe)
        except (TensorRTUnavailable, ArtifactError) as exc:
            self.runners = {}
            if self.fallback is None:
                raise
            self._fall_back(pipe, exc)
            return
        install_runners(pipe, self.runners)
        moved = offload_replaced(pipe, self.runners, self.offload_to)
        self.active = self.name
        log.info("tensorrt backend ready", extra={"fields": {
            "engines": sorted(engines), "gpu": facts.gpu_name, "trt": facts.trt_version, "lora_layers": len(base),
            "refit_base": self.refit_base_source, "activation_bytes": self.memory.size if self.memory else None,
            "offloaded": moved, "serving_range": range_summary(self.profiles(), self.shapes),
            "warmup": [str(s) for s in self.warmup_shapes()]}})

    def _refit_base(self, unet, slot: Mapping[str, torch.Tensor], refit_map: Mapping[str, OnnxWeight],
                    device: torch.device) -> tuple[dict[str, torch.Tensor], OnnxInitializers | None]:
        """Base weights of the slot layers: the fp32 ONNX initializers when the export ships with
        the engines, else (warned) copies of the served UNet's weights."""
        path = unet_onnx_of(self.engines_dir)
        reason = None
        if path is None:
            reason = "no unet ONNX export in the manifest"
        else:
            try:
                source = OnnxInitializers(path)
            except ImportError as exc:
                reason = f"the onnx package cannot be imported ({exc})"
            else:
                self.refit_base_source = "onnx"
                return onnx_base_weights(source, {p: t.shape for p, t in slot.items()}, refit_map, device), source
        dtype = next(unet.parameters()).dtype
        log.warning("tensorrt refit base weights come from the served UNet", extra={"fields": {
            "reason": reason, "dtype": str(dtype).removeprefix("torch."),
            "effect": "refitted layers carry this dtype's rounding instead of the fp32 weights the engine was built from"}})
        self.refit_base_source = f"torch:{str(dtype).removeprefix('torch.')}"
        return base_weights(unet), None

    def _runners(self, trt, engines: Mapping[str, object], device: torch.device) -> dict[str, "EngineRunner"]:
        self.stream = EngineStream(device)
        self.memory = SharedActivations.for_engines(engines.values(), device)
        return {component: EngineRunner(trt, engine, component, self.stream, self.memory, device)
                for component, engine in engines.items()}

    def _attach(self, trt, engines: Mapping[str, object], base: Mapping[str, torch.Tensor],
                refit_map: Mapping[str, OnnxWeight], unet: torch.nn.Module, onnx: OnnxInitializers | None = None) -> None:
        """Keep what twin switches need: the engines, the kept base weights, the weight names."""
        self._logger = self._logger or trt.Logger(trt.Logger.WARNING)
        if base:
            self._check_refit_names(trt, engines["unet"], base, refit_map)
        self._trt = trt
        self.engines = dict(engines)
        self.refit_map = dict(refit_map)
        self.fused = FusedWeights(base, self.lora_scale) if base else None
        self._onnx = onnx
        # For weights TensorRT fused with a refitted one (get_missing_weights): ONNX name -> param.
        params = {n.replace(".base_layer", ""): p for n, p in unet.named_parameters() if ".lora_" not in n}
        self._unet_params = params
        self._param_of = {_target(p, refit_map).name: p for p in [*params, *refit_map]}

    def _fall_back(self, pipe, exc: AtelierError) -> None:
        self.fallback_reason = f"{exc.code}: {exc}"
        report_fallback(self.name, self.fallback, exc.code, str(exc))
        self.fallback_backend = self.make_fallback(self.fallback)
        self.fallback_backend.prepare(pipe)
        self.active = self.fallback_backend.name

    def _deserialize(self, trt, paths: Mapping[str, Path]) -> dict:
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)  # kept: it must outlive its engines
        engines = {}
        for component, path in paths.items():
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise ArtifactError(f"TensorRT could not deserialize the {component} engine {path}")
            engines[component] = engine
        return engines

    def _check_refit_names(self, trt, engine, base: Mapping[str, torch.Tensor], refit_map: Mapping[str, OnnxWeight]) -> None:
        refittable = set(trt.Refitter(engine, self._logger).get_all_weights())
        unknown = [p for p in base if _target(p, refit_map).name not in refittable]
        if unknown:
            raise ArtifactError(
                f"{len(unknown)} adapter-slot weight(s) are not refittable in the unet engine under their "
                f"{'mapped' if refit_map else 'torch'} names, "
                f"e.g. {unknown[0]!r} -> {_target(unknown[0], refit_map).name!r}; "
                "ship a refit_map artifact (service.engine.lora_fuse.match_onnx_initializers) with the engines"
            )

    # -- shapes: warm-up, requests, status ----------------------------------------------------

    def profiles(self) -> dict[str, list[EngineProfile]]:
        return {component: runner.profiles for component, runner in self.runners.items()}

    def warmup_shapes(self) -> tuple[WarmupShape, ...]:
        """The UNet's OPT shape of each profile, as a generation (a fallback's own shapes after a fallback)."""
        if self.active != self.name:
            return self.fallback_backend.warmup_shapes() if hasattr(self.fallback_backend, "warmup_shapes") else ()
        shapes = []
        s = self.shapes
        for profile in self.runners["unet"].profiles:
            batch, _, h, w = profile.shapes["sample"][1]
            cfg = s.cfg_possible and batch % 2 == 0
            shape = WarmupShape(w * s.latent_scale, h * s.latent_scale, min(batch // 2 if cfg else batch, MAX_IMAGES), cfg)
            if shape in shapes:
                continue
            expressible = all(MIN_SIDE <= side <= MAX_SIDE for side in (shape.width, shape.height))
            if not expressible or self._refusal(shape.width, shape.height, shape.images, 5.0 if cfg else 1.0):
                log.warning("tensorrt warm-up shape skipped: not a request the API accepts, or not covered by "
                            "every engine", extra={"fields": {"shape": str(shape)}})
                continue
            shapes.append(shape)
        return tuple(shapes)

    def check_request(self, request) -> None:
        """Raise OutsideEngineProfile (422) when no profile of some engine covers `request`, or
        when it asks for conditioning the engines were not built with (garments, pose, edit)."""
        if self.active == self.name:
            for field, present in (("garments", bool(getattr(request, "garments", None))),
                                   ("pose", getattr(request, "pose", None) is not None),
                                   ("mask_asset_id", getattr(request, "mask_asset_id", None) is not None)):
                if present:
                    raise OutsideEngineProfile(
                        f"this server's TensorRT engines render prompt-only images; {field} (garment, pose and "
                        "edit conditioning) is served by replicas on the eager or compile backend", field=field)
        if hasattr(request, "width"):  # an edit takes its size from its source image
            self.check_shape(request.width, request.height, request.num_images, request.guidance_scale)

    def check_shape(self, width: int, height: int, images: int, guidance_scale: float) -> None:
        """`check_request` for one pipeline batch: `images` rows of one size and guidance (a
        batch of requests: the sum of their num_images)."""
        if self.active != self.name:
            if hasattr(self.fallback_backend, "check_shape"):
                self.fallback_backend.check_shape(width, height, images, guidance_scale)
            return
        refusal = self._refusal(width, height, images, guidance_scale)
        if refusal is not None:
            raise refusal

    def max_images(self, width: int, height: int, guidance_scale: float) -> int | None:
        """The most images one pipeline batch of this size and guidance may hold (0: this size is
        not served at all; None: no limit), for whoever groups requests into batches."""
        if self.active != self.name:
            return self.fallback_backend.max_images(width, height, guidance_scale) \
                if hasattr(self.fallback_backend, "max_images") else None
        most = 0
        while most < 64 and self._refusal(width, height, most + 1, guidance_scale) is None:
            most += 1
        return most

    def _refusal(self, width: int, height: int, images: int, guidance_scale: float) -> OutsideEngineProfile | None:
        for component, feeds in self.shapes.feeds(width, height, images, guidance_scale).items():
            runner = self.runners.get(component)
            if runner is None or any(p.covers(feeds) for p in runner.profiles):
                continue
            name = SHAPE_INPUTS[component]
            shape = feeds[name]
            sized = [p for p in runner.profiles if _sizes_fit(p.shapes[name], shape)]
            field = "num_images" if sized else ("width" if not any(
                p.shapes[name][0][-1] <= shape[-1] <= p.shapes[name][2][-1] for p in runner.profiles) else "height")
            cfg = " with guidance_scale > 1" if component == "unet" and shape[0] > images else ""
            ranges = "; or ".join(describe_profile(component, p, self.shapes) for p in runner.profiles)
            return OutsideEngineProfile(
                f"this server's TensorRT {component} engine serves {ranges} (multiples of 8 px); "
                f"this request needs {width}x{height} px, {images} image{'s' if images != 1 else ''}{cfg}. "
                "Choose a size and image count within that range.", field=field)
        return None

    def status(self) -> dict:
        out = {"backend": self.name, "active": self.active, "fallback_reason": self.fallback_reason}
        if self.active == self.name:
            out["serving_range"] = range_summary(self.profiles(), self.shapes)
            out["refit_base"] = self.refit_base_source
            out["activation_bytes"] = self.memory.size if self.memory else None
        elif self.fallback_backend is not None and hasattr(self.fallback_backend, "status"):
            out["serving_range"] = self.fallback_backend.status().get("serving_range")
            out["fallback_status"] = self.fallback_backend.status()
        return out

    # -- twins ------------------------------------------------------------------------------

    @property
    def handles_adapters(self) -> bool:
        """True when twins must be switched here (refit), not in the PyTorch adapter slot."""
        return self.active == self.name

    @property
    def adapter_owner(self) -> str | None:
        return self.fused.owner if self.fused else None

    def switch_adapter(self, adapter: PreparedAdapter | None) -> None:
        """Make the UNet engine render `adapter` (None: the base model). Callers hold the pipeline lock."""
        if self.fused is None:
            if adapter is None:
                return
            raise ArtifactError("the tensorrt backend has no adapter slot layers to fuse a twin into")
        weights = self.fused.switch(adapter)
        if not weights:
            return
        try:
            self.refit(weights)
        except Exception:
            self.refit(self.fused.unfuse())  # back to the base model: a known state
            raise

    def refit(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Refit the UNet engine with `weights` (UNet parameter names, torch layout)."""
        if self.stream is not None:
            self.stream.synchronize()  # no enqueued inference may still read the old weights (one sync per switch)
        refit_engine(self._trt, self.engines["unet"], self._logger, weights, self.refit_map, self._current_weight)

    def _current_weight(self, onnx_name: str) -> tuple[str, torch.Tensor, bool] | None:
        """The value the engine should keep for an ONNX weight TensorRT wants set again: a slot
        layer's current (fused or base) weight in torch layout, else the ONNX initializer itself
        (already in ONNX layout), else the served torch parameter. (name, tensor, transposed)."""
        param = self._param_of.get(onnx_name)
        if self.fused is not None and param in self.fused.base:
            return param, self.fused.weight(param), _target(param, self.refit_map).transposed
        if self._onnx is not None and onnx_name in self._onnx:
            if onnx_name not in self._onnx_cache:
                self._onnx_cache[onnx_name] = self._onnx.get(onnx_name)
            return onnx_name, self._onnx_cache[onnx_name], False
        weight = self._unet_params.get(param) if param is not None else None
        return (param, weight.detach(), _target(param, self.refit_map).transposed) if weight is not None else None


def _sizes_fit(bounds: tuple[Shape, Shape, Shape], shape: Shape) -> bool:
    low, _, high = bounds
    return all(lo <= s <= hi for lo, s, hi in zip(low[1:], shape[1:], high[1:]))


def _device_of(module: torch.nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _target(param: str, refit_map: Mapping[str, OnnxWeight]) -> OnnxWeight:
    return refit_map.get(param) or OnnxWeight(onnx_initializer_name(param))


def refit_engine(trt, engine, logger, weights: Mapping[str, torch.Tensor], refit_map: Mapping[str, OnnxWeight],
                 current: Callable[[str], tuple[str, torch.Tensor, bool] | None] | None = None) -> None:
    """Set `weights` (torch names and layout; CPU or CUDA tensors) on a refittable engine and refit it.

    TensorRT may have fused a changed weight with others (q, k and v projections sharing an
    input, say): those come back from `get_missing_weights` and must be set too, unchanged;
    `current(onnx_name)` gives (name, value, transposed: whether the value is in torch layout
    and the ONNX initializer holds it transposed) for them.
    """
    refitter = trt.Refitter(engine, logger)
    keep = []  # TensorRT reads these pointers during refit_cuda_engine

    def put(param: str, tensor: torch.Tensor, target: OnnxWeight) -> None:
        prototype = refitter.get_weights_prototype(target.name)
        tensor = tensor.detach().t() if target.transposed else tensor.detach()
        if prototype.size != tensor.numel():
            raise ArtifactError(f"refit {param} -> {target.name}: the engine holds {prototype.size} values, "
                                f"the new weight {tensor.numel()}")
        tensor = tensor.to(torch_dtype(trt, prototype.dtype)).contiguous()
        keep.append(tensor)
        location = trt.TensorLocation.DEVICE if tensor.is_cuda else trt.TensorLocation.HOST
        if not refitter.set_named_weights(target.name, trt.Weights(prototype.dtype, tensor.data_ptr(), tensor.numel()),
                                          location):
            raise ArtifactError(f"TensorRT rejected the refit weights {target.name} (for {param})")

    for param, tensor in weights.items():
        put(param, tensor, _target(param, refit_map))
    missing = list(refitter.get_missing_weights())
    for _ in range(2):  # once for the weights fused with ours; once more in case those pull in others
        if not missing or current is None:
            break
        for name in missing:
            found = current(name)
            if found is None:
                raise ArtifactError(f"the refit also needs {name!r}, whose torch weight is unknown; "
                                    "ship a refit_map covering every UNet weight")
            param, tensor, transposed = found
            put(param, tensor, OnnxWeight(name, transposed))
        missing = list(refitter.get_missing_weights())
    if missing:
        raise ArtifactError(f"the refit needs {len(missing)} more weight(s) set together, e.g. {missing[:3]}")
    on_gpu = [t for t in keep if t.is_cuda]
    if on_gpu:
        torch.cuda.current_stream(on_gpu[0].device).synchronize()  # the casts and transposes above are enqueued, not done
    if not refitter.refit_cuda_engine():
        raise ArtifactError("TensorRT failed to refit the unet engine")


# ---------------------------------------------------------------------------------------------
# Running engines on torch tensors.


def torch_dtype(trt, dtype) -> torch.dtype:
    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32,
             "INT64": torch.int64, "INT8": torch.int8, "UINT8": torch.uint8, "BOOL": torch.bool}
    for name, torch_type in table.items():
        if getattr(trt.DataType, name, None) == dtype:
            return torch_type
    raise ArtifactError(f"no torch dtype for the TensorRT type {dtype}")


class EngineStream:
    """The one CUDA stream every engine runs on (TensorRT adds synchronisations on the default
    stream). Ordered with torch's current stream by stream waits (events recorded on the GPU),
    never by host synchronisation: `begin()` before an enqueue (the engine waits for the torch
    work that produced its inputs), `end()` after (torch's later work waits for the engine).
    Tensors handed to an engine are allocated on torch's current stream, which waits for the
    engine before any later work, so the caching allocator cannot reuse them too early. On a
    CPU (stand-in engines in tests) every method is a no-op and the handle is 0."""

    def __init__(self, device: torch.device):
        self.device = device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    @property
    def handle(self) -> int:
        return self.stream.cuda_stream if self.stream is not None else 0

    def begin(self) -> None:
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))

    def end(self) -> None:
        if self.stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(self.stream)

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()


def engine_memory_size(engine) -> int:
    """Activation memory an execution context of `engine` needs, over all its profiles."""
    size = getattr(engine, "device_memory_size_v2", None)  # TensorRT >= 10.1 (accounts for weight streaming)
    return int(size if size is not None else engine.device_memory_size)


@dataclass
class SharedActivations:
    """One device-memory block that every execution context of every engine uses for its
    activations (they run one at a time), instead of one maximum-profile block per context."""

    buffer: torch.Tensor
    size: int

    @classmethod
    def for_engines(cls, engines, device: torch.device) -> "SharedActivations":
        size = max([engine_memory_size(e) for e in engines] + [1])
        return cls(torch.empty(size, dtype=torch.uint8, device=device), size)

    @property
    def ptr(self) -> int:
        return self.buffer.data_ptr()

    def create_context(self, trt, engine):
        strategies = getattr(trt, "ExecutionContextAllocationStrategy", None)
        if strategies is not None:  # TensorRT >= 10
            context = engine.create_execution_context(strategies.USER_MANAGED)
        else:
            context = engine.create_execution_context_without_device_memory()
        if context is None:
            return None
        if hasattr(context, "set_device_memory"):  # TensorRT >= 10.1
            context.set_device_memory(self.ptr, self.size)
        else:
            context.device_memory = self.ptr
        return context


class EngineRunner:
    """One engine, one execution context per optimization profile (all on the shared activation
    block): torch tensors in, torch tensors out (by tensor name), enqueued on the engine stream.
    Each call runs on the first profile that covers its input shapes."""

    def __init__(self, trt, engine, component: str, stream: EngineStream, memory: SharedActivations | None = None,
                 device: torch.device | None = None):
        self.engine, self.component, self.stream = engine, component, stream
        self.device = device or stream.device
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        io = {n: (engine.get_tensor_mode(n), torch_dtype(trt, engine.get_tensor_dtype(n))) for n in names}
        self.inputs = {n: dt for n, (mode, dt) in io.items() if mode == trt.TensorIOMode.INPUT}
        self.outputs = {n: dt for n, (mode, dt) in io.items() if mode == trt.TensorIOMode.OUTPUT}
        self.profiles = engine_profiles(trt, engine)
        self.contexts = []
        for profile in self.profiles:
            context = memory.create_context(trt, engine) if memory is not None else engine.create_execution_context()
            if context is None:
                raise ArtifactError(f"TensorRT could not create an execution context for the {component} engine")
            if profile.index and not context.set_optimization_profile_async(profile.index, stream.handle):
                raise ArtifactError(f"TensorRT could not select profile {profile.index} of the {component} engine")
            self.contexts.append(context)
        stream.synchronize()  # the profile selections are enqueued (start-up only)

    def profile_for(self, shapes: Mapping[str, Shape]) -> EngineProfile:
        for profile in self.profiles:
            if profile.covers(shapes):
                return profile
        ranges = "; ".join(f"profile {p.index}: " + ", ".join(f"{n} {lo}..{hi}" for n, (lo, _, hi) in p.shapes.items())
                           for p in self.profiles)
        raise OutsideEngineProfile(f"the {self.component} engine has no profile for inputs "
                                   f"{ {n: list(s) for n, s in shapes.items()} } ({ranges})")

    def __call__(self, **feeds: torch.Tensor) -> dict[str, torch.Tensor]:
        missing = sorted(set(self.inputs) - set(feeds))
        if missing:
            raise ValueError(f"the {self.component} engine needs inputs {missing}")
        # Freed after the enqueue: torch's current stream waits for the engine (end()) before
        # any later work, so the allocator reuses them only once the engine is done with them.
        held = {name: feeds[name].to(device=self.device, dtype=dtype).contiguous() for name, dtype in self.inputs.items()}
        context = self.contexts[self.profile_for({n: tuple(t.shape) for n, t in held.items()}).index]
        for name, tensor in held.items():
            if not context.set_input_shape(name, tuple(tensor.shape)):
                raise ValueError(f"{self.component}: input {name} of shape {tuple(tensor.shape)} "
                                 "is outside the engine's profile")
            context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name, dtype in self.outputs.items():
            outputs[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device=self.device)
            context.set_tensor_address(name, outputs[name].data_ptr())
        self.stream.begin()
        if not context.execute_async_v3(self.stream.handle):
            raise RuntimeError(f"TensorRT failed to enqueue the {self.component} engine")
        self.stream.end()
        return outputs


def install_runners(pipe, runners: Mapping[str, EngineRunner]) -> None:
    """Route the pipeline's modules through the engines (instance attributes shadow the methods;
    the torch modules stay for their configs and dtypes, off the GPU: `offload_replaced`)."""
    pipe.unet.forward = _unet_forward(runners["unet"])
    if "vae_decoder" in runners:
        pipe.vae.decode = _vae_decode(runners["vae_decoder"])
    for component, pooled in (("text_encoder", "pooler_output"), ("text_encoder_2", "text_embeds")):
        encoder = getattr(pipe, component, None)
        if component in runners and encoder is not None:
            encoder.forward = _text_encoder_forward(runners[component], pooled)


def offload_replaced(pipe, runners: Mapping[str, EngineRunner], device: str = "cpu") -> list[str]:
    """Move the torch modules the engines replaced to `device` (the CPU), freeing the GPU memory
    they held: the UNet (with the adapter slot's layers), the text encoders, and the VAE's decoder
    half (its encoder stays: image conditioning encodes with it). Returns what moved."""
    modules = {"unet": [("unet", pipe.unet)],
               "text_encoder": [("text_encoder", getattr(pipe, "text_encoder", None))],
               "text_encoder_2": [("text_encoder_2", getattr(pipe, "text_encoder_2", None))],
               "vae_decoder": [("vae.decoder", pipe.vae.decoder), ("vae.post_quant_conv", getattr(pipe.vae, "post_quant_conv", None))]}
    moved = []
    for component in runners:
        for name, module in modules.get(component, []):
            if module is not None:
                module.to(device)
                moved.append(name)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    return moved


def _unet_forward(runner: EngineRunner):
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    def forward(sample, timestep, encoder_hidden_states, class_labels=None, timestep_cond=None, attention_mask=None,
                cross_attention_kwargs=None, added_cond_kwargs=None, return_dict=True, **unsupported):
        if class_labels is not None or timestep_cond is not None or attention_mask is not None or cross_attention_kwargs \
                or any(v is not None for v in unsupported.values()) \
                or set(added_cond_kwargs or ()) - {"text_embeds", "time_ids"}:
            raise NotImplementedError("the unet engine takes sample, timestep, encoder_hidden_states and SDXL's "
                                      "added_cond_kwargs (text_embeds, time_ids) only")
        t = torch.as_tensor(timestep, device=sample.device).reshape(-1)
        if t.numel() > 1:  # shape only: comparing values would sync the host with the GPU on every call
            raise NotImplementedError("the unet engine takes one timestep for the whole batch")
        feeds = {"sample": sample, "timestep": t.to(torch.float32), "encoder_hidden_states": encoder_hidden_states}
        if added_cond_kwargs:
            feeds.update(text_embeds=added_cond_kwargs["text_embeds"], time_ids=added_cond_kwargs["time_ids"])
        noise = runner(**feeds)["noise_pred"].to(sample.dtype)
        return UNet2DConditionOutput(sample=noise) if return_dict else (noise,)

    return forward


def _vae_decode(runner: EngineRunner):
    from diffusers.models.autoencoders.vae import DecoderOutput

    def decode(z, return_dict=True, generator=None):
        image = runner(latent=z)["image"].to(z.dtype)
        return DecoderOutput(sample=image) if return_dict else (image,)

    return decode


def _text_encoder_forward(runner: EngineRunner, pooled: str):
    """What diffusers reads off a CLIP text encoder: `[0]` (last_hidden_state, or text_embeds for
    the projection model) and `.hidden_states[-2]` (clip_skip is not supported)."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling
    from transformers.models.clip.modeling_clip import CLIPTextModelOutput

    def forward(input_ids, attention_mask=None, position_ids=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        out = runner(input_ids=input_ids)
        hidden = (out["hidden_states_penultimate"], out["last_hidden_state"])  # [-2] is the penultimate layer
        if pooled == "text_embeds":
            return CLIPTextModelOutput(text_embeds=out["text_embeds"], last_hidden_state=out["last_hidden_state"],
                                       hidden_states=hidden)
        return BaseModelOutputWithPooling(last_hidden_state=out["last_hidden_state"],
                                          pooler_output=out["pooler_output"], hidden_states=hidden)

    return forward
