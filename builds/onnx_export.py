"""Export a diffusers SDXL (or SD 1.x) pipeline's hot modules to ONNX, and check them with onnxruntime.

Owns: the graph each component is exported as (its wrapper module, input and output names,
dtypes, dynamic axes), the shared exporter call (torch's dynamo exporter first, the
TorchScript exporter as fallback), writing one self-contained `.onnx` file per component
(plus one `<name>.onnx.data` external-weights file only when the weights do not fit in a
2 GB protobuf), and the onnxruntime-vs-torch check at several shapes. Must never download
anything, build TensorRT engines (builds/compile.py) or write the manifest.

Graphs (B = batch, T = tokens, fixed at the tokenizer's 77; h, w = latent height/width = pixels / 8):

    text_encoder    input_ids int32 [B, T]  ->  last_hidden_state [B, T, D1], hidden_states_penultimate
                    [B, T, D1] (what SDXL conditions on), pooler_output [B, D1]
    text_encoder_2  input_ids int32 [B, T]  ->  last_hidden_state, hidden_states_penultimate [B, T, D2],
                    text_embeds [B, P] (SDXL's pooled prompt embedding)
    unet            sample [B, 4, h, w], timestep [1], encoder_hidden_states [B, T, D1+D2],
                    text_embeds [B, P], time_ids [B, 6] (SDXL's added_cond_kwargs; absent for SD 1.x)
                    ->  noise_pred [B, 4, h, w]
    vae_decoder     latent [B, 4, h, w], already divided by the VAE's scaling_factor  ->  image [B, 3, 8h, 8w]

All float tensors are float32: the ONNX files are the precise reference; TensorRT builds fp16
engines from them.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

log = logging.getLogger("atelier.compile")

OPSET = 18  # >= 17 for LayerNormalization; 18 is the dynamo exporter's native opset. TensorRT 10 parses up to 20+.
COMPONENTS = ("text_encoder", "text_encoder_2", "unet", "vae_decoder")
PROTOBUF_LIMIT = 2 * 1024**3  # an ONNX file (protobuf) cannot hold more; larger weights go to one .onnx.data file
EXTERNAL_MARGIN = 64 * 1024**2  # graph and metadata on top of the weights


# The dynamic axes of every input and output, by component. The axis names are roles that
# builds/compile.py turns into TensorRT shape profiles: "batch" (the component's own batch;
# for the UNet that is twice the image batch under classifier-free guidance), "height" and
# "width" in latent cells. Everything else (tokens, channels, the timestep) is fixed.
_LATENT = {0: "batch", 2: "height", 3: "width"}
DYNAMIC_AXES: dict[str, dict[str, dict[int, str]]] = {
    "text_encoder": {name: {0: "batch"} for name in
                     ("input_ids", "last_hidden_state", "hidden_states_penultimate", "pooler_output")},
    "text_encoder_2": {name: {0: "batch"} for name in
                       ("input_ids", "last_hidden_state", "hidden_states_penultimate", "text_embeds")},
    "unet": {"sample": _LATENT, "encoder_hidden_states": {0: "batch"}, "text_embeds": {0: "batch"},
             "time_ids": {0: "batch"}, "noise_pred": _LATENT},
    "vae_decoder": {"latent": _LATENT, "image": {0: "batch", 2: "image_height", 3: "image_width"}},
}


def _axes(component: str, names: tuple[str, ...]) -> dict[str, dict[int, str]]:
    return {name: dict(axes) for name, axes in DYNAMIC_AXES[component].items() if name in names}


class ExportError(RuntimeError):
    """A component could not be exported or its ONNX file disagrees with torch."""


@dataclass
class ComponentGraph:
    """One exportable module: what goes in, what comes out, which axes may vary."""

    name: str
    module: torch.nn.Module
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    # (batch, latent_height, latent_width, generator) -> the inputs, in input_names order
    make_inputs: Callable[[int, int, int, torch.Generator], tuple[torch.Tensor, ...]]

    def inputs(self, batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        return self.make_inputs(batch, height, width, torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class ExportResult:
    component: str
    onnx_path: Path
    files: tuple[Path, ...]  # the .onnx file first, then its external data file, if any
    exporter: str  # "dynamo" | "torchscript"
    seconds: float


# ---------------------------------------------------------------------------------------------
# Wrappers: each makes one component a plain tensors-in, tensors-out module.


class _TextEncoder(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module, pooled: str):
        super().__init__()
        self.encoder = encoder
        self.pooled = pooled  # "pooler_output" (CLIPTextModel) | "text_embeds" (...WithProjection)

    def forward(self, input_ids: torch.Tensor):
        out = self.encoder(input_ids, output_hidden_states=True, return_dict=True)
        return out.last_hidden_state, out.hidden_states[-2], getattr(out, self.pooled)


class _SDXLUNet(torch.nn.Module):
    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[0]


class _UNet(torch.nn.Module):
    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class _VAEDecoder(torch.nn.Module):
    """`vae.decode(z).sample` for latents already divided by `vae.config.scaling_factor`."""

    def __init__(self, vae: torch.nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latent):
        return self.vae.decode(latent, return_dict=False)[0]


# ---------------------------------------------------------------------------------------------
# One function per component.


def max_tokens(pipe) -> int:
    return int(pipe.tokenizer.model_max_length)


def _text_encoder_graph(name: str, encoder, tokens: int, pooled: str) -> ComponentGraph:
    vocab = int(encoder.config.vocab_size)

    def make_inputs(batch, height, width, generator):
        return (torch.randint(0, vocab, (batch, tokens), generator=generator, dtype=torch.int64).to(torch.int32),)

    outputs = ("last_hidden_state", "hidden_states_penultimate", pooled)
    axes = _axes(name, ("input_ids",) + outputs)
    return ComponentGraph(name, _TextEncoder(encoder, pooled).eval(), ("input_ids",), outputs, axes, make_inputs)


def text_encoder_graph(pipe) -> ComponentGraph:
    """The first CLIP text encoder (CLIPTextModel): int32 token ids -> hidden states, pooled output."""
    return _text_encoder_graph("text_encoder", pipe.text_encoder, max_tokens(pipe), "pooler_output")


def text_encoder_2_graph(pipe) -> ComponentGraph:
    """SDXL's second text encoder (CLIPTextModelWithProjection): token ids -> hidden states, text_embeds."""
    return _text_encoder_graph("text_encoder_2", pipe.text_encoder_2, max_tokens(pipe), "text_embeds")


def unet_graph(pipe) -> ComponentGraph:
    """The UNet, with SDXL's added_cond_kwargs (text_embeds, time_ids) as explicit inputs."""
    unet = pipe.unet
    config = unet.config
    tokens = max_tokens(pipe)
    sdxl = config.addition_embed_type == "text_time"
    channels = int(config.in_channels)
    cross = int(config.cross_attention_dim)
    if sdxl:
        # projection_class_embeddings_input_dim = pooled text embedding + time ids x addition_time_embed_dim
        # (SDXL: 1280 + 6 x 256; the refiner has 5 time ids, so the count is derived, not assumed)
        pooled = int(pipe.text_encoder_2.config.projection_dim)
        time_ids = (int(config.projection_class_embeddings_input_dim) - pooled) // int(config.addition_time_embed_dim)

    def make_inputs(batch, height, width, generator):
        sample = torch.randn(batch, channels, height, width, generator=generator)
        timestep = torch.rand(1, generator=generator) * 999.0
        hidden = torch.randn(batch, tokens, cross, generator=generator)
        if not sdxl:
            return sample, timestep, hidden
        text_embeds = torch.randn(batch, pooled, generator=generator)
        # original size, crop top-left, target size: plausible values, not noise
        size = torch.tensor([height * 8.0, width * 8.0])
        ids = torch.cat([size, torch.zeros(2), size]).repeat(batch, 1)[:, :time_ids]
        return sample, timestep, hidden, text_embeds, ids

    inputs = ("sample", "timestep", "encoder_hidden_states")
    if sdxl:
        inputs += ("text_embeds", "time_ids")
    module = _SDXLUNet(unet) if sdxl else _UNet(unet)
    return ComponentGraph("unet", module.eval(), inputs, ("noise_pred",), _axes("unet", inputs + ("noise_pred",)),
                          make_inputs)


def vae_decoder_graph(pipe) -> ComponentGraph:
    """The VAE decoder (post_quant_conv + decoder) on latents already scaled by 1/scaling_factor."""
    channels = int(pipe.vae.config.latent_channels)

    def make_inputs(batch, height, width, generator):
        return (torch.randn(batch, channels, height, width, generator=generator),)

    return ComponentGraph("vae_decoder", _VAEDecoder(pipe.vae).eval(), ("latent",), ("image",),
                          _axes("vae_decoder", ("latent", "image")), make_inputs)


GRAPHS = {
    "text_encoder": text_encoder_graph,
    "text_encoder_2": text_encoder_2_graph,
    "unet": unet_graph,
    "vae_decoder": vae_decoder_graph,
}


def pipeline_components(pipe) -> tuple[str, ...]:
    """The exportable components this pipeline has (SD 1.x has no text_encoder_2)."""
    return tuple(name for name in COMPONENTS if name == "vae_decoder" or getattr(pipe, name, None) is not None)


def latent_scale(pipe) -> int:
    """Pixels per latent cell (8 for SD and SDXL)."""
    return 2 ** (len(pipe.vae.config.block_out_channels) - 1)


def latent_multiple(pipe) -> int:
    """2 ** the UNet's downsamplings: latent sides that are not multiples of this take diffusers'
    explicit-upsample-size branch (the one TRACE_SAMPLE traces, which serves every side)."""
    return 2 ** (len(pipe.unet.config.block_out_channels) - 1)


# ---------------------------------------------------------------------------------------------
# The shared export helper.


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


# The traced (batch, latent height, latent width). 30 is deliberately not a multiple of 4 (nor
# of 8): diffusers' UNet passes explicit upsample sizes only when a latent side is not a
# multiple of 2**num_upsamplers (4 for SDXL, 8 for SD 1.x), and a graph traced on the other
# branch upsamples by a fixed factor 2, so it only runs at latent sides divisible by 4
# ("Concat ... mismatched dimensions 15 and 16" at 30x30). Traced here, the graph takes the
# skip connections' sizes, which is right for every side, multiples of 4 included (both
# exporters; checked with onnxruntime at 30x30, 34x26 and 64x48 latents). Batch 2 keeps the
# exporter from specialising the batch to 1.
TRACE_SAMPLE = (2, 30, 30)


def export_onnx(graph: ComponentGraph, out_dir: Path, sample: tuple[int, int, int] = TRACE_SAMPLE,
                opset: int = OPSET, exporter: str = "auto") -> ExportResult:
    """Export `graph` to `out_dir/<name>.onnx` with its dynamic axes.

    `exporter`: "dynamo" (torch.export based), "torchscript" (the legacy tracer), or "auto":
    dynamo, falling back to torchscript when it fails. Exports into a temporary directory
    first, then rewrites the model as one file (or one file + one `.onnx.data` when the
    weights pass the 2 GB protobuf limit), so the artifact set never depends on which exporter
    ran or how it chose to split weights. `sample` is (batch, latent h, latent w) for tracing
    (TRACE_SAMPLE: see there why 30x30).
    """
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{graph.name}.onnx"
    data_name = f"{graph.name}.onnx.data"
    args = graph.inputs(*sample)
    order = ("dynamo", "torchscript") if exporter == "auto" else (exporter,)
    errors: list[str] = []
    began = time.perf_counter()
    for kind in order:
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{graph.name}-export-") as tmp:
            tmp_path = Path(tmp) / f"{graph.name}.onnx"
            try:
                _run_exporter(kind, graph, args, tmp_path, opset)
                model = onnx.load(str(tmp_path), load_external_data=True)
                fixed = static_axes(model, graph)
                if fixed:
                    raise ExportError(f"dynamic axes were exported as fixed sizes: {', '.join(fixed)}")
            except Exception as exc:  # exporter failures come in many types; the next exporter may work
                errors.append(f"{kind}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
                log.warning("%s exporter failed for %s: %s", kind, graph.name, exc)
                continue
            model.producer_name = "atelier builds/compile.py"
            del model.metadata_props[:]
            onnx.helper.set_model_props(model, {"atelier.component": graph.name, "atelier.exporter": kind})
            for stale in (final, out_dir / data_name):
                stale.unlink(missing_ok=True)
            external = _param_bytes(graph.module) + EXTERNAL_MARGIN >= PROTOBUF_LIMIT
            if external:
                onnx.save_model(model, str(final), save_as_external_data=True, all_tensors_to_one_file=True,
                                location=data_name, size_threshold=1024)
            else:
                onnx.save_model(model, str(final))
            onnx.checker.check_model(str(final))  # by path: works past 2 GB
        files = (final, out_dir / data_name) if external else (final,)
        seconds = time.perf_counter() - began
        log.debug("exported %s with the %s exporter in %.1f s", graph.name, kind, seconds)
        return ExportResult(graph.name, final, files, kind, seconds)
    raise ExportError(f"could not export {graph.name} to ONNX: " + "; ".join(errors))


def _run_exporter(kind: str, graph: ComponentGraph, args: tuple[torch.Tensor, ...], path: Path, opset: int) -> None:
    names = dict(input_names=list(graph.input_names), output_names=list(graph.output_names), opset_version=opset)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if kind == "dynamo":
            # Its registry warns once per missing torchvision op (nms, roi_align...): noise here.
            logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
            # Dim.AUTO on every dynamic axis, not named Dims: torch.export then infers which
            # axes are equal and their ranges itself (named Dims fail on guards such as the
            # CPU attention's batch <= 63, and the dynamic_axes conversion specialised
            # time_ids' batch to the sample's value). The axes are checked after export.
            # external_data=True: the exporter never builds a >2 GB protobuf in memory.
            torch.onnx.export(graph.module, args, str(path), dynamo=True, external_data=True, optimize=True,
                              verbose=False, dynamic_shapes=_auto_shapes(graph), **names)
        elif kind == "torchscript":
            torch.onnx.export(graph.module, args, str(path), dynamo=False, do_constant_folding=True,
                              dynamic_axes=graph.dynamic_axes, **names)
        else:
            raise ValueError(f"unknown exporter {kind!r}")


def _auto_shapes(graph: ComponentGraph) -> dict[str, dict[int, object] | None]:
    forward = list(inspect.signature(graph.module.forward).parameters)
    if forward != list(graph.input_names):
        raise ExportError(f"{graph.name}: wrapper arguments {forward} differ from its input names {graph.input_names}")
    axes = graph.dynamic_axes
    return {name: ({axis: torch.export.Dim.AUTO for axis in axes[name]} if name in axes else None)
            for name in graph.input_names}


def static_axes(model, graph: ComponentGraph) -> list[str]:
    """Inputs' axes that should be dynamic but were exported as fixed sizes (an exporter
    that specialised a shape: the file would only run at the traced size)."""
    fixed = []
    inputs = {value.name: value for value in model.graph.input}
    for name, axes in graph.dynamic_axes.items():
        if name not in inputs:
            continue  # an output: its shape follows from the inputs
        dims = inputs[name].type.tensor_type.shape.dim
        fixed += [f"{name}[{axis}]={dims[axis].dim_value}" for axis in axes if dims[axis].HasField("dim_value")]
    return fixed


# ---------------------------------------------------------------------------------------------
# Checking an export against torch.


def onnx_session(path: Path):
    """An onnxruntime CPU session for `path` (exact fp32 kernels, no graph rewrites that change numerics)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class CheckResult:
    component: str
    max_abs_error: float  # the largest |onnx - torch| over every output and every shape
    max_abs_reference: float  # the largest |torch| over the same outputs: the scale of the error
    shapes: tuple[tuple[int, int, int], ...]
    seconds: float

    @property
    def relative_error(self) -> float:
        return self.max_abs_error / max(self.max_abs_reference, 1e-12)


def check_onnx(graph: ComponentGraph, onnx_path: Path, shapes: tuple[tuple[int, int, int], ...]) -> CheckResult:
    """Run torch and onnxruntime on the same random inputs at each (batch, latent h, latent w)."""
    import numpy as np

    began = time.perf_counter()
    session = onnx_session(onnx_path)
    worst = scale = 0.0
    for index, shape in enumerate(shapes):
        inputs = graph.inputs(*shape, seed=1000 + index)
        with torch.no_grad():
            expected = graph.module(*inputs)
        expected = expected if isinstance(expected, (tuple, list)) else (expected,)
        got = session.run(list(graph.output_names), {n: t.numpy() for n, t in zip(graph.input_names, inputs)})
        for name, want, have in zip(graph.output_names, expected, got):
            want = want.detach().numpy()
            if want.shape != have.shape:
                raise ExportError(f"{graph.name}: output {name} has shape {have.shape} in ONNX, "
                                  f"{want.shape} in torch (inputs at batch/h/w {shape})")
            if not np.isfinite(have).all():
                raise ExportError(f"{graph.name}: output {name} holds NaN/inf in ONNX at batch/h/w {shape}")
            worst = max(worst, float(np.max(np.abs(have - want))))
            scale = max(scale, float(np.max(np.abs(want))))
    return CheckResult(graph.name, worst, scale, tuple(shapes), time.perf_counter() - began)


# ---------------------------------------------------------------------------------------------
# The UNet's refit map: which ONNX initializer holds each torch weight.


REFIT_MAP_SUFFIX = ".refit_map.json"


def write_refit_map(graph: ComponentGraph, onnx_path: Path, out_dir: Path) -> Path:
    """`out_dir/<name>.refit_map.json`: torch parameter -> ONNX initializer for every Linear
    and Conv2d weight of the wrapped model (every layer a LoRA can touch).

    Exporters rename weights (TorchScript: `onnx::MatMul_538`, stored transposed; dynamo:
    `val_92`), so TensorRT's refitter cannot find a twin's fused weights under torch names:
    the tensorrt backend reads this map (service.engine.lora_fuse.match_onnx_initializers,
    matching by value) to refit the engine. Raises LoraFuseError when a weight is found in no
    initializer or in several.
    """
    import onnx
    from onnx import numpy_helper

    from service.engine.lora_fuse import match_onnx_initializers, save_refit_map

    inner = next(iter(graph.module.children()))  # the wrapper's one child: the unet (prefix "unet.")
    params = {f"{name}.weight": module.weight.detach() for name, module in inner.named_modules()
              if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))}
    model = onnx.load(str(onnx_path), load_external_data=True)
    initializers = {init.name: torch.from_numpy(numpy_helper.to_array(init).copy()) for init in model.graph.initializer}
    mapping = match_onnx_initializers(params, initializers)
    return save_refit_map(out_dir / f"{graph.name}{REFIT_MAP_SUFFIX}", mapping)


def remove_export(out_dir: Path, component: str) -> None:
    for path in (out_dir / f"{component}.onnx", out_dir / f"{component}.onnx.data",
                 out_dir / f"{component}{REFIT_MAP_SUFFIX}"):
        path.unlink(missing_ok=True)
    for leftover in out_dir.glob(f".{component}-export-*"):
        shutil.rmtree(leftover, ignore_errors=True)
