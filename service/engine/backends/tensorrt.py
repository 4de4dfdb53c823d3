"""The `tensorrt` backend: the UNet (and VAE decoder, text encoders) run as TensorRT engines.

UNVERIFIED ON A GPU: written against the TensorRT 10 Python API, but the machine it was written
on has neither CUDA nor TensorRT. What runs in CI is everything before TensorRT is touched
(the typed refusals, the manifest and key checks, the fallback), the twin-switch refit logic
against a stand-in Refitter, and the LoRA weight math in `service.engine.lora_fuse`; the test
on a real engine (EngineRunner, Refitter) in tests/test_tensorrt_backend.py skips without both.

Owns: checking that the engines under `engines_dir` were built for this machine (GPU name and
compute capability, TensorRT version, this pipeline's fingerprint; precision and profile when
asked for) and are intact (sha256), loading them, and swapping them into the loaded pipeline
as thin torch-in / torch-out runners on torch's current CUDA stream, so `service.engine.
pipeline` runs unchanged. Engines and I/O follow builds/onnx_export.py's graphs:

    text_encoder(_2)  input_ids -> last_hidden_state, hidden_states_penultimate, pooler_output | text_embeds
    unet              sample, timestep [1], encoder_hidden_states[, text_embeds, time_ids] -> noise_pred
    vae_decoder       latent (already / scaling_factor) -> image          (replaces `vae.decode`)

Twins: an engine has no LoRA branch, so the adapter slot's peft layers (still on the torch
UNet) are bypassed. `switch_adapter` fuses a twin into the slot layers' weights
(`lora_fuse.FusedWeights`) and refits the UNet engine in place (`tensorrt.Refitter`); the
engine must be built refittable. Refit names come from the manifest's `refit_map` artifact
(torch parameter -> ONNX initializer, `lora_fuse.match_onnx_initializers`); without one, torch
names under `unet.` are assumed, and checked against the engine's refittable weights at start
(this project's exporter folds Linear weights into anonymous transposed initializers, so the
attention projections need the map). Weights TensorRT fused with a refitted one (q, k, v sharing
one GEMM) are set again from their current values.

When TensorRT, CUDA or a matching engine is missing, `prepare` raises a typed error
(`TensorRTUnavailable`, `EngineMismatch`, `ArtifactError`), or, with `fallback` set to
"eager" or "compile", logs why and prepares the pipeline with that backend instead
(`active` and `fallback_reason` say what happened). The pipeline is only modified once every
engine has been checked and loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from service.engine.artifacts import Artifact, ArtifactError, EngineKey, check_engine, read_manifest, verified_file
from service.engine.backends.base import Backend
from service.engine.backends.eager import EagerBackend
from service.engine.loading import fingerprint_pipeline
from service.engine.lora_fuse import FusedWeights, OnnxWeight, base_weights, load_refit_map, onnx_initializer_name
from service.errors import AtelierError
from service.twins.slot import PreparedAdapter

log = logging.getLogger("atelier.engine")

COMPONENTS = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
FALLBACKS = ("eager", "compile")
REFIT_MAP_KIND = "refit_map"


class TensorRTUnavailable(AtelierError):
    """TensorRT or a CUDA GPU is not available in this process."""

    status = 503
    code = "tensorrt_unavailable"


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


def default_fallback(name: str) -> Backend:
    if name == "eager":
        return EagerBackend()
    if name == "compile":
        from service.engine.backends.compile import CompileBackend

        return CompileBackend()
    raise ValueError(f"the tensorrt backend can fall back to {' or '.join(FALLBACKS)}, not {name!r}")


class TensorRTBackend:
    name = "tensorrt"

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
            base = base_weights(pipe.unet)  # the adapter slot's layers, at the UNet's dtype and device
            if base and not found["unet"][0].refittable:
                raise ArtifactError("the unet engine was built without refit; twins cannot be switched on it "
                                    "(rebuild with refit, or serve with another backend)")
            refit_map = refit_map_of(self.engines_dir) or {}
            engines = self._deserialize(trt, {c: path for c, (_, path) in found.items()})
            self._attach(trt, engines, base, refit_map, pipe.unet)
        except (TensorRTUnavailable, ArtifactError) as exc:
            if self.fallback is None:
                raise
            self._fall_back(pipe, exc)
            return
        self.runners = {component: EngineRunner(trt, engine, component) for component, engine in engines.items()}
        install_runners(pipe, self.runners)
        self.active = self.name
        log.info("tensorrt backend ready", extra={"fields": {"engines": sorted(engines), "gpu": facts.gpu_name,
                                                            "trt": facts.trt_version, "lora_layers": len(base)}})

    def _attach(self, trt, engines: Mapping[str, object], base: Mapping[str, torch.Tensor],
                refit_map: Mapping[str, OnnxWeight], unet: torch.nn.Module) -> None:
        """Keep what twin switches need: the engines, the kept base weights, the weight names."""
        self._logger = self._logger or trt.Logger(trt.Logger.WARNING)
        if base:
            self._check_refit_names(trt, engines["unet"], base, refit_map)
        self._trt = trt
        self.engines = dict(engines)
        self.refit_map = dict(refit_map)
        self.fused = FusedWeights(base, self.lora_scale) if base else None
        # For weights TensorRT fused with a refitted one (get_missing_weights): ONNX name -> param.
        params = {n.replace(".base_layer", ""): p for n, p in unet.named_parameters() if ".lora_" not in n}
        self._unet_params = params
        self._param_of = {_target(p, refit_map).name: p for p in [*params, *refit_map]}

    def _fall_back(self, pipe, exc: AtelierError) -> None:
        self.fallback_reason = f"{exc.code}: {exc}"
        log.warning("tensorrt backend unavailable; falling back", extra={"fields": {
            "fallback": self.fallback, "reason": self.fallback_reason}})
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
        if torch.cuda.is_available():
            torch.cuda.current_stream().synchronize()  # no enqueued inference may still read the old weights
        refit_engine(self._trt, self.engines["unet"], self._logger, weights, self.refit_map, self._current_weight)

    def _current_weight(self, onnx_name: str) -> tuple[str, torch.Tensor, bool] | None:
        """The torch parameter behind an ONNX weight, the value the engine should keep for it, and
        whether the ONNX initializer holds it transposed."""
        param = self._param_of.get(onnx_name)
        if param is None:
            return None
        transposed = _target(param, self.refit_map).transposed
        if self.fused is not None and param in self.fused.base:
            return param, self.fused.weight(param), transposed
        weight = self._unet_params.get(param)
        return (param, weight.detach(), transposed) if weight is not None else None


def _target(param: str, refit_map: Mapping[str, OnnxWeight]) -> OnnxWeight:
    return refit_map.get(param) or OnnxWeight(onnx_initializer_name(param))


def refit_engine(trt, engine, logger, weights: Mapping[str, torch.Tensor], refit_map: Mapping[str, OnnxWeight],
                 current: Callable[[str], tuple[str, torch.Tensor, bool] | None] | None = None) -> None:
    """Set `weights` (torch names and layout; CPU or CUDA tensors) on a refittable engine and refit it.

    TensorRT may have fused a changed weight with others (q, k and v projections sharing an
    input, say): those come back from `get_missing_weights` and must be set too, unchanged;
    `current(onnx_name)` gives (torch name, value in torch layout, transposed in ONNX) for them.
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
    if torch.cuda.is_available():
        torch.cuda.current_stream().synchronize()  # the casts and transposes above are enqueued, not done
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


class EngineRunner:
    """One engine and one execution context: torch tensors in, torch tensors out (by tensor name),
    enqueued on torch's current CUDA stream, so torch work before and after stays ordered."""

    def __init__(self, trt, engine, component: str):
        self.engine, self.component = engine, component
        self.context = engine.create_execution_context()
        if self.context is None:
            raise ArtifactError(f"TensorRT could not create an execution context for the {component} engine")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        io = {n: (engine.get_tensor_mode(n), torch_dtype(trt, engine.get_tensor_dtype(n))) for n in names}
        self.inputs = {n: dt for n, (mode, dt) in io.items() if mode == trt.TensorIOMode.INPUT}
        self.outputs = {n: dt for n, (mode, dt) in io.items() if mode == trt.TensorIOMode.OUTPUT}

    def __call__(self, **feeds: torch.Tensor) -> dict[str, torch.Tensor]:
        missing = sorted(set(self.inputs) - set(feeds))
        if missing:
            raise ValueError(f"the {self.component} engine needs inputs {missing}")
        device = torch.device("cuda", torch.cuda.current_device())
        stream = torch.cuda.current_stream(device)
        held = []  # freed after enqueue: torch's allocator reuses them only for later work on this stream
        for name, dtype in self.inputs.items():
            tensor = feeds[name].to(device=device, dtype=dtype).contiguous()
            held.append(tensor)
            if not self.context.set_input_shape(name, tuple(tensor.shape)):
                raise ValueError(f"{self.component}: input {name} of shape {tuple(tensor.shape)} "
                                 "is outside the engine's profile")
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name, dtype in self.outputs.items():
            outputs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype, device=device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to enqueue the {self.component} engine")
        return outputs


def install_runners(pipe, runners: Mapping[str, EngineRunner]) -> None:
    """Route the pipeline's modules through the engines (instance attributes shadow the methods;
    the torch modules stay for their configs, dtypes and the slot's base weights)."""
    pipe.unet.forward = _unet_forward(runners["unet"])
    if "vae_decoder" in runners:
        pipe.vae.decode = _vae_decode(runners["vae_decoder"])
    for component, pooled in (("text_encoder", "pooler_output"), ("text_encoder_2", "text_embeds")):
        encoder = getattr(pipe, component, None)
        if component in runners and encoder is not None:
            encoder.forward = _text_encoder_forward(runners[component], pooled)


def _unet_forward(runner: EngineRunner):
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    def forward(sample, timestep, encoder_hidden_states, class_labels=None, timestep_cond=None, attention_mask=None,
                cross_attention_kwargs=None, added_cond_kwargs=None, return_dict=True, **unsupported):
        if class_labels is not None or timestep_cond is not None or attention_mask is not None or cross_attention_kwargs \
                or any(v is not None for v in unsupported.values()):
            raise NotImplementedError("the unet engine takes sample, timestep, encoder_hidden_states and SDXL's "
                                      "added_cond_kwargs only")
        t = torch.as_tensor(timestep, device=sample.device).reshape(-1).to(torch.float32)
        if t.numel() > 1 and not bool((t == t[0]).all()):
            raise NotImplementedError("the unet engine takes one timestep for the whole batch")
        feeds = {"sample": sample, "timestep": t[:1], "encoder_hidden_states": encoder_hidden_states}
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
