"""Compile the base pipeline for serving: ONNX exports checked against torch, TensorRT engines, S3 transfer.

The flow, one subcommand per step (each writes or updates OUT/manifest.json, whose
pipeline_hash is service.engine.loading.fingerprint_pipeline(PIPELINE)):

  export    Load PIPELINE (a diffusers SDXL or SD 1.x directory, fp32 on CPU) and export
            text_encoder, text_encoder_2, unet and vae_decoder to OUT/<component>.onnx
            (opset 18; dynamic batch, and height/width for the UNet and VAE decoder; the text
            encoders take 77 int32 token ids). torch's dynamo exporter is tried first, the
            TorchScript exporter if it fails (--exporter picks one). Each file is then run
            with onnxruntime on CPU next to torch on the same random inputs at every
            --check-shapes shape (two different ones by default, which proves the dynamic
            axes work); the largest |onnx - torch| is recorded as max_abs_error, and an
            export above --max-error x max(1, max|torch output|) is deleted and the command
            exits 1. --skip-check skips this (max_abs_error is then null). The UNet also
            gets OUT/unet.refit_map.json (kind refit_map): which ONNX initializer holds each
            torch weight, for refitting twins into its engine.
  build     Where `import tensorrt` works and CUDA is present: build an fp16 TensorRT
            engine from each ONNX file (refittable: the UNet only, for twins) with the
            optimization profiles below, reusing and updating a timing cache, into
            OUT/engines/<EngineKey.cache_name()>. The key holds the pipeline hash, GPU name
            and compute capability (torch.cuda), TensorRT version, precision and profiles.
            The VAE decoder stays fp32 when the pipeline's VAE says force_upcast (SDXL's VAE
            overflows in fp16), unless --vae-fp16. Without TensorRT or CUDA it prints why and
            exits 0, having built nothing (the ONNX files still count). UNVERIFIED on a GPU:
            see build_engine().
  all       export, then build.
  upload    Upload OUT's manifest and every artifact it lists (each sha256-verified first)
            to s3://bucket/prefix/, artifacts first and the manifest last.
  download  Download s3://bucket/prefix/ into OUT, verifying every artifact's sha256 against
            the manifest; a file that does not match is deleted and the command exits 1. The
            manifest is written last, only when everything it lists is there.

Profiles (--batch, --height, --width as MIN:OPT:MAX, in images and pixels, then each
--extra-profile BATCH/HEIGHT/WIDTH). Under CFG the UNet's OPT and MAX batch are doubled, its
MIN is not (guidance_scale <= 1 runs one row per image); --no-cfg doubles nothing. The
serving backend reads the built profiles back from the engines: they are its serving range,
and a request outside every profile is refused with a 422 naming it (docs/BENCHMARKS.md,
"Serving range of each backend"). The default covers the common catalogue sizes:
  1. catalogue: 1-4 images, 256-1280 px each side, OPT one image at 1024x1024 (covers
     1024x1024, 4:5 portrait 1024x1280 and 896x1120, 5:4 and 3:4 sizes, everything the
     demo and warm-up use);
  2. large: one image, 256-2048 px each side, OPT 2048x2048 (Shopify's recommended 2048x2048
     square, and any single image the API accepts).
The trade-off: TensorRT sizes activation memory by the largest shape of any profile (one
block, shared by all contexts). For the UNet the large profile's maximum, 2 rows at 2048 px
(8.4 M latent cells x channels), stays below the catalogue's 8 rows at 1280 px (13.1 M); only
unfused attention would grow (x1.6 by tokens squared). The fp32 VAE decoder is the risk: at
2048 px its mid-block attention spans 65k tokens, so build it without the large profile, or
leave it out (--components without vae_decoder: the torch VAE then decodes on the GPU), if
its engine's memory is too large. A second profile roughly doubles build time (each is
tuned). Without it (--extra-profile none) 2048 px requests are refused with the 422; the
other route is rendering 1024x1024 and upscaling outside Atelier (softer detail than a
native 2048 render, no extra GPU memory). Profile MIN sides cost no memory, so the
catalogue profile starts at the API's 256 px. All of this is UNVERIFIED until a GPU run.

S3 credentials come from the standard AWS chain (environment, profile, role); the endpoint
and region default to ATELIER_S3_ENDPOINT_URL and ATELIER_S3_REGION. PIPELINE defaults to
ATELIER_BASE_MODEL or $ATELIER_HOME/demo/pipeline (build it with builds/demo.py), OUT to
$ATELIER_ENGINES_DIR (default $ATELIER_HOME/engines).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.errors import AtelierError  # noqa: E402

if TYPE_CHECKING:
    from service.engine.artifacts import Artifact, Manifest

# service.engine.artifacts is imported where it is used: importing it imports the
# service.engine package, and with it torch (4 s), which `--help` should not wait for.

log = logging.getLogger("atelier.compile")

EPILOG = """examples:
  python builds/demo.py                                   # the demo pipeline, if you have no other
  python builds/compile.py export                         # ONNX + onnxruntime check -> $ATELIER_ENGINES_DIR (default $ATELIER_HOME/engines)
  python builds/compile.py build --batch 1:1:4 --height 768:1024:1024 --width 768:1024:1024
  python builds/compile.py all --exporter torchscript     # both steps
  python builds/compile.py upload s3://models/atelier/sdxl-v1 --endpoint-url http://127.0.0.1:8333
  python builds/compile.py download s3://models/atelier/sdxl-v1 --out /srv/engines

exit status: 0 done (or build skipped: no TensorRT/CUDA, reason printed); 1 an export failed
its check, a file did not match its sha256, or another error (message on stderr); 2 usage."""

# The check's bound, relative to the output's scale: |onnx - torch| <= MAX_RELATIVE_ERROR x
# max(1, max|torch|). Both sides run fp32 on CPU; they differ only by kernel choice and
# summation order (onnxruntime's GEMM/conv/attention vs ATen's), which costs a few ulps per
# op. Measured on the demo pipeline at two shapes (torch 2.13, onnxruntime 1.32): text
# encoders 1.9e-6 and 1.5e-6 (outputs up to 3.4), UNet 2.0e-6 (up to 1.5), VAE decoder
# 2.6e-5 (up to 4.4): at most 6e-6 relative. Real SDXL is ~50x deeper, and rounding
# error grows at most linearly with depth, so about 3e-4 relative is the worst expected:
# 1e-3 leaves headroom for that and is still ~170x above what the demo shows. A wrong
# export (a mis-wired input, a dropped layer, a shape specialised to the traced size, an op
# with other semantics) errs by 1e-2 to 1 relative, far above it.
MAX_RELATIVE_ERROR = 1e-3
# Latents 30x30, 34x26 and 64x48: sides that are not multiples of 4 (what a graph traced on
# diffusers' other upsampling branch fails on), an odd batch-2 aspect, and a larger one.
DEFAULT_CHECK_SHAPES = "1x240x240,2x272x208,1x512x384"
# The default engine profiles (see "Profiles" in the module docstring for the trade-off):
# the catalogue profile, then one extra profile for large single images.
DEFAULT_BATCH = "1:1:4"
DEFAULT_SIZE = "256:1024:1280"
DEFAULT_EXTRA_PROFILES = ("1:1:1/256:2048:2048/256:2048:2048",)
ENGINE_DIR = "engines"
PRECISION = "fp16"
# The manifest kind of the UNet's torch -> ONNX weight map (what service.engine.backends.tensorrt
# reads as REFIT_MAP_KIND to refit twins' fused weights into the engine).
REFIT_MAP_KIND = "refit_map"


class CompileError(RuntimeError):
    """A step failed; the message says which and why (exit status 1)."""


# ---------------------------------------------------------------------------------------------
# Profiles and shapes.


@dataclass(frozen=True)
class Range:
    min: int
    opt: int
    max: int

    @classmethod
    def parse(cls, text: str, what: str) -> "Range":
        try:
            parts = [int(p) for p in text.split(":")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be MIN:OPT:MAX integers, got {text!r}") from None
        if len(parts) == 1:
            parts *= 3
        if len(parts) != 3 or not 0 < parts[0] <= parts[1] <= parts[2]:
            raise argparse.ArgumentTypeError(f"{what} must be MIN:OPT:MAX with 0 < MIN <= OPT <= MAX, got {text!r}")
        return cls(*parts)

    def scaled(self, factor: int = 1, divisor: int = 1) -> "Range":
        return Range(self.min * factor // divisor, self.opt * factor // divisor, self.max * factor // divisor)


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile, in images and pixels."""

    batch: Range
    height: Range
    width: Range
    cfg: bool = True  # classifier-free guidance: the UNet runs the conditional and unconditional halves together

    def key(self) -> str:
        """The profile field of EngineKey, e.g. "b1-4_h512-1024_w512-1024" (OPT only tunes, so it is not part of it)."""
        b, h, w = self.batch, self.height, self.width
        return f"b{b.min}-{b.max}_h{h.min}-{h.max}_w{w.min}-{w.max}" + ("" if self.cfg else "_nocfg")

    def check(self, latent_scale: int) -> None:
        for name, value in (("height", self.height), ("width", self.width)):
            odd = [v for v in (value.min, value.opt, value.max) if v % latent_scale]
            if odd:
                raise CompileError(f"--{name} values must be multiples of {latent_scale} (the VAE's scale), got {odd}")

    def roles(self, component: str, latent_scale: int) -> dict[str, Range]:
        """The range of each dynamic axis role (see onnx_export.DYNAMIC_AXES) for `component`.

        Under CFG the UNet's OPT and MAX batch are doubled (both halves in one call), but its
        MIN stays the image minimum: a request with guidance_scale <= 1 runs without CFG, one
        UNet row per image."""
        batch = self.batch
        if component == "unet" and self.cfg:
            batch = Range(self.batch.min, self.batch.opt * 2, self.batch.max * 2)
        return {"batch": batch, "height": self.height.scaled(divisor=latent_scale),
                "width": self.width.scaled(divisor=latent_scale)}

    @classmethod
    def parse(cls, text: str, cfg: bool = True) -> "Profile":
        """"BATCH/HEIGHT/WIDTH", each MIN:OPT:MAX (images; pixels), e.g. "1:1:1/256:2048:2048/256:2048:2048"."""
        parts = text.split("/")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"a profile is BATCH/HEIGHT/WIDTH, each MIN:OPT:MAX, got {text!r}")
        return cls(Range.parse(parts[0], "batch"), Range.parse(parts[1], "height"), Range.parse(parts[2], "width"), cfg)


def profiles_key(profiles: "list[Profile] | tuple[Profile, ...]") -> str:
    """The profile field of EngineKey for an engine built with these profiles, in order."""
    return "+".join(p.key() for p in profiles)


def read_onnx_inputs(onnx_path: Path) -> dict[str, list[int | None]]:
    """Each graph input's shape (None for a dynamic axis), read without loading the weights."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def engine_shapes(component: str, inputs: dict[str, list[int | None]], profile: Profile,
                  latent_scale: int) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """MIN/OPT/MAX shapes of each input of `component`'s ONNX graph for `profile`."""
    from builds.onnx_export import DYNAMIC_AXES

    roles = profile.roles(component, latent_scale)
    shapes = {}
    for name, dims in inputs.items():
        axes = DYNAMIC_AXES[component].get(name, {})
        picked: dict[str, list[int]] = {"min": [], "opt": [], "max": []}
        for axis, size in enumerate(dims):
            if axis in axes:
                span = roles[axes[axis]]
                for bound in picked:
                    picked[bound].append(getattr(span, bound))
            elif size is None:
                raise CompileError(f"{component}: input {name} axis {axis} is dynamic but has no role; re-export it")
            else:
                for bound in picked:
                    picked[bound].append(size)
        shapes[name] = (tuple(picked["min"]), tuple(picked["opt"]), tuple(picked["max"]))
    return shapes


def _vae_config(pipeline_dir: Path) -> dict:
    return json.loads((Path(pipeline_dir) / "vae" / "config.json").read_text())


def pipeline_latent_scale(pipeline_dir: Path) -> int:
    """Pixels per latent cell, from the VAE config (no weights loaded)."""
    return 2 ** (len(_vae_config(pipeline_dir)["block_out_channels"]) - 1)


def engine_precision(component: str, pipeline_dir: Path, vae_fp16: bool = False) -> str:
    """fp16, except the VAE decoder of a VAE that asks to be upcast: SDXL's VAE overflows in
    fp16 (NaN/black images), which is what diffusers' force_upcast (default true) means."""
    if component == "vae_decoder" and not vae_fp16 and _vae_config(pipeline_dir).get("force_upcast", True):
        return "fp32"
    return PRECISION


def parse_check_shapes(text: str) -> tuple[tuple[int, int, int], ...]:
    """"1x256x256,2x192x320" -> ((1, 256, 256), (2, 192, 320)): batch x height x width in pixels."""
    shapes = []
    for item in text.split(","):
        try:
            batch, height, width = (int(p) for p in item.strip().lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--check-shapes items are BxHxW, got {item!r}") from None
        if min(batch, height, width) <= 0:
            raise argparse.ArgumentTypeError(f"--check-shapes sizes must be positive, got {item!r}")
        shapes.append((batch, height, width))
    return tuple(shapes)


# ---------------------------------------------------------------------------------------------
# The manifest.


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def update_manifest(out_dir: Path, pipeline_hash: str, added: "list[Artifact]",
                    replaced: set[tuple[str, str]]) -> "Manifest":
    """Write OUT/manifest.json: the previous entries minus those of a (component, kind) in
    `replaced`, plus `added`. Entries from another pipeline hash are all dropped (stale)."""
    from service.engine.artifacts import ArtifactError, Manifest, read_manifest, write_manifest

    try:
        previous = read_manifest(out_dir)
    except ArtifactError:
        previous = None
    kept = []
    if previous is not None and previous.pipeline_hash == pipeline_hash:
        kept = [a for a in previous.artifacts if (a.component, a.kind) not in replaced]
    elif previous is not None:
        log.info("dropping %d manifest entries of another pipeline (%s)", len(previous.artifacts), previous.pipeline_hash[:12])
    artifacts = sorted(kept + added, key=lambda a: (a.kind != "onnx", a.component, a.file))
    manifest = Manifest(pipeline_hash, now(), tuple(artifacts))
    write_manifest(out_dir, manifest)
    return manifest


def _artifact(out_dir: Path, path: Path, component: str, kind: str, **extra) -> "Artifact":
    from service.engine.artifacts import Artifact, sha256_file

    return Artifact(component=component, kind=kind, file=path.relative_to(out_dir).as_posix(),
                    sha256=sha256_file(path), bytes=path.stat().st_size, **extra)


# ---------------------------------------------------------------------------------------------
# export


@dataclass(frozen=True)
class ExportReport:
    component: str
    exporter: str
    export_seconds: float
    check_seconds: float | None
    max_abs_error: float | None
    bound: float | None
    files: tuple[Path, ...]


def export_command(pipeline_dir: Path, out_dir: Path, components: tuple[str, ...] | None = None,
                   check_shapes: tuple[tuple[int, int, int], ...] = parse_check_shapes(DEFAULT_CHECK_SHAPES),
                   max_error: float = MAX_RELATIVE_ERROR, skip_check: bool = False, exporter: str = "auto",
                   progress: bool = False) -> "tuple[Manifest, list[ExportReport]]":
    """Export (and check) each component; update the manifest with those that pass. Raises
    CompileError naming the components that failed, after the manifest lists the others."""
    import torch
    from tqdm import tqdm

    from builds import onnx_export
    from service.engine.loading import fingerprint_pipeline, load_pipeline

    pipeline_dir, out_dir = Path(pipeline_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline_hash = fingerprint_pipeline(pipeline_dir)
    pipe = load_pipeline(pipeline_dir, torch.device("cpu"), torch.float32)
    available = onnx_export.pipeline_components(pipe)
    components = tuple(components or available)
    missing = [c for c in components if c not in available]
    if missing:
        raise CompileError(f"the pipeline at {pipeline_dir} has no {', '.join(missing)} (it has {', '.join(available)})")
    scale = onnx_export.latent_scale(pipe)
    latent_shapes = []
    for batch, height, width in check_shapes:
        if height % scale or width % scale:
            raise CompileError(f"check shape {batch}x{height}x{width}: height and width must be multiples of "
                               f"{scale} px (the VAE's scale) for this pipeline")
        latent_shapes.append((batch, height // scale, width // scale))
    reports: list[ExportReport] = []
    added: list[Artifact] = []
    failures: list[str] = []
    bar = tqdm(components, desc="export", unit="component", disable=not progress)
    for component in bar:
        bar.set_postfix_str(component)
        graph = onnx_export.GRAPHS[component](pipe)
        onnx_export.remove_export(out_dir, component)
        try:
            result = onnx_export.export_onnx(graph, out_dir, exporter=exporter)
        except onnx_export.ExportError as exc:
            failures.append(str(exc))
            continue
        error = bound = check_seconds = None
        if not skip_check:
            try:
                check = onnx_export.check_onnx(graph, result.onnx_path, tuple(latent_shapes))
            except onnx_export.ExportError as exc:
                onnx_export.remove_export(out_dir, component)
                failures.append(str(exc))
                continue
            error, check_seconds = check.max_abs_error, check.seconds
            bound = max_error * max(1.0, check.max_abs_reference)
            if not error <= bound:  # NaN fails too
                onnx_export.remove_export(out_dir, component)
                failures.append(f"{component}: onnxruntime differs from torch by {error:.3g} (max |torch| "
                                f"{check.max_abs_reference:.3g}), above the bound {bound:.3g} = {max_error:g} x "
                                f"max(1, max |torch|); the export was deleted")
                continue
        log.info("%s: %s exporter, %.1f s, max abs error %s", component, result.exporter, result.seconds,
                 "unchecked" if error is None else f"{error:.3g}")
        reports.append(ExportReport(component, result.exporter, result.seconds, check_seconds, error, bound, result.files))
        added.append(_artifact(out_dir, result.files[0], component, "onnx", max_abs_error=error))
        added += [_artifact(out_dir, extra, component, "onnx") for extra in result.files[1:]]
        if component == "unet":
            refit_map = _refit_map(graph, result.onnx_path, out_dir)
            if refit_map is not None:
                added.append(_artifact(out_dir, refit_map, component, REFIT_MAP_KIND))
    bar.close()
    # A re-exported component's old engines were built from the previous file: drop them too.
    done = {r.component for r in reports}
    replaced = {(c, kind) for c in done for kind in ("onnx", "engine", REFIT_MAP_KIND)}
    replaced |= {(c, kind) for c in components if c not in done for kind in ("onnx", REFIT_MAP_KIND)}  # files gone
    manifest = update_manifest(out_dir, pipeline_hash, added, replaced)
    if failures:
        raise CompileError("export failed:\n  " + "\n  ".join(failures))
    return manifest, reports


def _refit_map(graph, onnx_path: Path, out_dir: Path) -> Path | None:
    from builds import onnx_export
    from service.engine.lora_fuse import LoraFuseError

    try:
        return onnx_export.write_refit_map(graph, onnx_path, out_dir)
    except LoraFuseError as exc:  # the export itself is fine; twins on TensorRT then need torch names
        log.warning("no refit map for %s (the tensorrt backend will try torch names): %s", graph.name, exc)
        return None


# ---------------------------------------------------------------------------------------------
# build (TensorRT)


def tensorrt_unavailable() -> str | None:
    """Why engines cannot be built here, or None when TensorRT and a CUDA device are present."""
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install failing to load its libraries
        return f"TensorRT is not importable here ({type(exc).__name__}: {exc}); install the `tensorrt` package on a CUDA machine"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is available (torch.cuda.is_available() is False)"
    return None


def machine_key_fields() -> dict[str, str]:
    """gpu_name, compute_capability (torch.cuda) and trt_version (tensorrt.__version__) of this machine."""
    import tensorrt
    import torch

    device = torch.cuda.current_device()  # the device TensorRT builds for
    major, minor = torch.cuda.get_device_capability(device)
    return {"gpu_name": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}",
            "trt_version": tensorrt.__version__}


def build_command(pipeline_dir: Path, out_dir: Path, profile: "Profile | list[Profile]", components: tuple[str, ...] | None = None,
                  timing_cache: Path | None = None, workspace_gib: float | None = None,
                  vae_fp16: bool = False, progress: bool = False, say=print) -> "Manifest | None":
    """Build an engine per ONNX file in the manifest; None (and the reason said) where TensorRT
    or CUDA is missing."""
    from tqdm import tqdm

    from service.engine.artifacts import EngineKey, read_manifest
    from service.engine.loading import fingerprint_pipeline

    reason = tensorrt_unavailable()
    if reason is not None:
        say(f"build: skipped, no engines built: {reason}. The ONNX files in {out_dir} are unaffected.")
        return None
    pipeline_dir, out_dir = Path(pipeline_dir), Path(out_dir)
    pipeline_hash = fingerprint_pipeline(pipeline_dir)
    manifest = read_manifest(out_dir)
    if manifest.pipeline_hash != pipeline_hash:
        raise CompileError(f"{out_dir} holds exports of another pipeline ({manifest.pipeline_hash[:12]}, "
                           f"not {pipeline_hash[:12]} at {pipeline_dir}); run export first")
    onnx_files = {a.component: a for a in manifest.artifacts if a.kind == "onnx" and a.file.endswith(".onnx")}
    components = tuple(components or onnx_files)
    missing = [c for c in components if c not in onnx_files]
    if missing:
        raise CompileError(f"no ONNX export of {', '.join(missing)} in {out_dir}; run export first")
    latent_scale = pipeline_latent_scale(pipeline_dir)
    profiles = list(profile) if isinstance(profile, (list, tuple)) else [profile]
    for each in profiles:
        each.check(latent_scale)
    machine = machine_key_fields()
    engine_dir = out_dir / ENGINE_DIR
    engine_dir.mkdir(parents=True, exist_ok=True)
    slug = "".join(ch if ch.isalnum() else "-" for ch in machine["gpu_name"]).strip("-").lower()
    timing_cache = Path(timing_cache or engine_dir / f"timing-{slug}-sm{machine['compute_capability']}-trt{machine['trt_version']}.cache")
    added: list[Artifact] = []
    bar = tqdm(components, desc="build", unit="engine", disable=not progress)
    for component in bar:
        bar.set_postfix_str(component)
        onnx_path = out_dir / onnx_files[component].file
        inputs = read_onnx_inputs(onnx_path)
        shapes = [engine_shapes(component, inputs, each, latent_scale) for each in profiles]
        precision = engine_precision(component, pipeline_dir, vae_fp16)
        key = EngineKey(pipeline_hash=pipeline_hash, component=component, precision=precision,
                        profile=profiles_key(profiles), **machine)
        engine_path = engine_dir / key.cache_name()
        began = time.perf_counter()
        # Only the UNet is refitted (twins); REFIT elsewhere would only cost engine size and speed.
        refittable = build_engine(onnx_path, engine_path, shapes, timing_cache, workspace_gib,
                                  fp16=precision == "fp16", refit=component == "unet")
        log.info("%s: engine %s built in %.0f s", component, engine_path.name, time.perf_counter() - began)
        added.append(_artifact(out_dir, engine_path, component, "engine", key=key, refittable=refittable))
    bar.close()
    return update_manifest(out_dir, pipeline_hash, added, {(c, "engine") for c in components})


def build_engine(onnx_path: Path, engine_path: Path, shapes: "dict[str, tuple] | list[dict[str, tuple]]",
                 timing_cache: Path, workspace_gib: float | None = None, fp16: bool = True, refit: bool = True) -> bool:
    """Build one fp16 (or fp32) engine from `onnx_path`, refittable when `refit`, with one
    optimization profile per entry of `shapes` (input name -> MIN/OPT/MAX shapes); returns
    whether it deserialises as refittable.

    UNVERIFIED: written against TensorRT's documented Python API (8.6, 10.x, 11.x) but never
    run on the machine this was written on (no GPU, no TensorRT). Per version:
    - TensorRT < 10: networks need the EXPLICIT_BATCH creation flag; 10+ is always explicit batch.
    - TensorRT 10.x: a weakly typed network from the fp32 ONNX with BuilderFlag.FP16, so
      TensorRT picks fp16 kernels where it can (fp32 where fp16 would overflow or is slower).
    - TensorRT 11+: the precision flags are gone (strongly typed networks only), so the ONNX
      is first converted to mixed fp16 with NVIDIA ModelOpt's AutoCast (inputs and outputs
      stay fp32), and built from that.
    BuilderFlag.REFIT for the UNet only (not REFIT_IDENTICAL or STRIP_PLAN, which only allow
    refitting the same weights): every weight stays refittable, so a twin's LoRA delta can be
    merged into the UNet's weights and pushed with trt.Refitter without rebuilding the engine.
    Profiles: the serving backend reads them back with get_tensor_profile_shape, creates one
    execution context per profile and picks one per call by its input shapes.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    weak_fp16 = hasattr(trt.BuilderFlag, "FP16")
    source = onnx_path if (weak_fp16 or not fp16) else _mixed_fp16_onnx(onnx_path, engine_path.parent)
    if not parser.parse_from_file(str(source)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CompileError(f"TensorRT cannot parse {source}: {errors}")

    config = builder.create_builder_config()
    if fp16 and weak_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if refit:
        config.set_flag(trt.BuilderFlag.REFIT)
    if workspace_gib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 1024**3))
    for profile_shapes in (shapes if isinstance(shapes, list) else [shapes]):
        profile = builder.create_optimization_profile()
        for index in range(network.num_inputs):
            tensor = network.get_input(index)
            if tensor.name not in profile_shapes:
                raise CompileError(f"{onnx_path.name}: TensorRT sees an input {tensor.name!r} the profile does not cover")
            profile.set_shape(tensor.name, *profile_shapes[tensor.name])
        config.add_optimization_profile(profile)

    # The timing cache records kernel timings per GPU and TensorRT version: later builds (other
    # components, other profiles, rebuilds) skip re-timing identical layers.
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CompileError(f"TensorRT could not build an engine from {onnx_path.name} (see its log above)")
    part = engine_path.with_name(f".{engine_path.name}.part")
    part.write_bytes(memoryview(serialized))
    part.replace(engine_path)
    timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))

    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise CompileError(f"the engine built from {onnx_path.name} does not deserialise")
    return bool(engine.refittable)


def _mixed_fp16_onnx(onnx_path: Path, work_dir: Path) -> Path:
    """TensorRT 11+: the fp32 ONNX converted to mixed fp16 (fp32 I/O) with ModelOpt AutoCast. UNVERIFIED."""
    import onnx

    try:
        from modelopt.onnx.autocast import convert_to_mixed_precision
    except ImportError:
        raise CompileError("TensorRT 11+ builds only strongly typed networks: fp16 engines need the ONNX "
                           "converted to fp16 first, which this uses NVIDIA ModelOpt's AutoCast for "
                           "(pip install 'nvidia-modelopt[onnx]')") from None
    model = convert_to_mixed_precision(onnx_path=str(onnx_path), low_precision_type="fp16", keep_io_types=True)
    target = work_dir / f"{onnx_path.stem}.fp16.onnx"
    # weights beside the graph whatever their size: never a >2 GB protobuf (an intermediate file)
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{target.name}.data")
    return target


# ---------------------------------------------------------------------------------------------
# The command line.


def _defaults():
    from service.config import Settings

    return Settings.from_env()


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="builds/compile.py", description=__doc__,
                                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub):
        sub.add_argument("--pipeline", type=Path, default=None,
                         help="diffusers pipeline directory (default: ATELIER_BASE_MODEL or $ATELIER_HOME/demo/pipeline)")
        sub.add_argument("--out", type=Path, default=None,
                         help="output directory with manifest.json (default: $ATELIER_ENGINES_DIR (default $ATELIER_HOME/engines))")
        sub.add_argument("--components", default=None,
                         help="comma-separated subset of text_encoder,text_encoder_2,unet,vae_decoder (default: all)")
        sub.add_argument("--quiet", action="store_true", help="no progress bar or log lines")

    def export_options(sub):
        sub.add_argument("--exporter", choices=("auto", "dynamo", "torchscript"), default="auto",
                         help="torch.onnx exporter: auto = dynamo, falling back to torchscript (default: auto)")
        sub.add_argument("--check-shapes", type=parse_check_shapes, default=parse_check_shapes(DEFAULT_CHECK_SHAPES),
                         help=f"BxHxW (pixels) shapes to check at, comma-separated (default: {DEFAULT_CHECK_SHAPES})")
        sub.add_argument("--max-error", type=float, default=MAX_RELATIVE_ERROR,
                         help=f"fail above this |onnx - torch| per unit of output scale (default: {MAX_RELATIVE_ERROR:g})")
        sub.add_argument("--skip-check", action="store_true", help="do not run the onnxruntime check")

    def build_options(sub):
        sub.add_argument("--batch", type=lambda t: Range.parse(t, "--batch"), default=Range.parse(DEFAULT_BATCH, "--batch"),
                         help=f"images per call, MIN:OPT:MAX (default: {DEFAULT_BATCH})")
        sub.add_argument("--height", type=lambda t: Range.parse(t, "--height"), default=Range.parse(DEFAULT_SIZE, "--height"),
                         help=f"image height in pixels, MIN:OPT:MAX (default: {DEFAULT_SIZE})")
        sub.add_argument("--width", type=lambda t: Range.parse(t, "--width"), default=Range.parse(DEFAULT_SIZE, "--width"),
                         help=f"image width in pixels, MIN:OPT:MAX (default: {DEFAULT_SIZE})")
        sub.add_argument("--extra-profile", action="append", default=None, metavar="B/H/W",
                         help="another optimization profile, BATCH/HEIGHT/WIDTH each MIN:OPT:MAX (images; pixels); "
                              "repeat for more; 'none' for only the one above (default: "
                              f"{' and '.join(DEFAULT_EXTRA_PROFILES)}: single images up to 2048 px)")
        sub.add_argument("--no-cfg", action="store_true",
                         help="do not double the UNet's batch for classifier-free guidance")
        sub.add_argument("--timing-cache", type=Path, default=None,
                         help="TensorRT timing cache file (default: OUT/engines/timing-<gpu>-<sm>-<trt>.cache)")
        sub.add_argument("--workspace-gib", type=float, default=None, help="TensorRT workspace limit (default: TensorRT's)")
        sub.add_argument("--vae-fp16", action="store_true",
                         help="build the VAE decoder in fp16 even when its config says force_upcast (a VAE fixed for fp16)")

    def s3_options(sub, verb):
        sub.add_argument("url", help="s3://bucket[/prefix]")
        sub.add_argument("--out", type=Path, default=None,
                         help=f"directory to {verb} (default: $ATELIER_ENGINES_DIR (default $ATELIER_HOME/engines))")
        sub.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: ATELIER_S3_ENDPOINT_URL or AWS)")
        sub.add_argument("--region", default=None, help="S3 region (default: ATELIER_S3_REGION or the AWS chain's)")
        sub.add_argument("--quiet", action="store_true", help="no progress bar")

    summaries = {
        "export": "export to ONNX and check each file against torch with onnxruntime",
        "build": "build refittable TensorRT engines from the ONNX files (skipped without TensorRT/CUDA)",
        "all": "export, then build",
        "upload": "upload OUT's manifest and artifacts to s3://bucket/prefix",
        "download": "download s3://bucket/prefix into OUT, verifying every sha256",
    }
    sub = commands.add_parser("export", help=summaries.get("export"), description="Export to ONNX and check with onnxruntime.")
    common(sub)
    export_options(sub)
    sub = commands.add_parser("build", help=summaries.get("build"), description="Build TensorRT engines from the ONNX files.")
    common(sub)
    build_options(sub)
    sub = commands.add_parser("all", help=summaries.get("all"), description="export, then build.")
    common(sub)
    export_options(sub)
    build_options(sub)
    sub = commands.add_parser("upload", help=summaries.get("upload"), description="Upload OUT to S3.")
    s3_options(sub, "upload")
    sub = commands.add_parser("upload-model", help="upload the base pipeline (PIPELINE) with a sha256 manifest",
                              description="Upload the base model's pipeline directory to S3 for ATELIER_BASE_MODEL_S3.")
    sub.add_argument("--pipeline", type=Path, default=None, help="pipeline directory (default: ATELIER_BASE_MODEL)")
    s3_options(sub, "(unused for upload-model)")
    sub = commands.add_parser("download", help=summaries.get("download"),
                              description="Download from S3 into OUT, verifying every sha256.")
    s3_options(sub, "download into")
    return main_parser


def build_profiles(args) -> list[Profile]:
    """The main profile (--batch/--height/--width) and the extra ones (--extra-profile, default one)."""
    cfg = not args.no_cfg
    extra = args.extra_profile if args.extra_profile is not None else list(DEFAULT_EXTRA_PROFILES)
    if "none" in extra:
        extra = []
    try:
        return [Profile(args.batch, args.height, args.width, cfg=cfg)] + [Profile.parse(text, cfg) for text in extra]
    except argparse.ArgumentTypeError as exc:
        raise CompileError(str(exc)) from None


def _print_exports(reports: list[ExportReport]) -> None:
    for r in reports:
        error = "unchecked" if r.max_abs_error is None else f"max|err| {r.max_abs_error:.2e} (bound {r.bound:.2e})"
        check = "" if r.check_seconds is None else f", check {r.check_seconds:.1f} s"
        size = sum(p.stat().st_size for p in r.files)
        print(f"{r.component:15} {r.exporter:11} export {r.export_seconds:6.1f} s{check}  {error}  {size} bytes")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    progress = not args.quiet
    if progress and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        log.setLevel(logging.INFO)
    settings = _defaults()
    out = (args.out or settings.engines_dir).expanduser().resolve()
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():  # log lines above the progress bar, not through it
        return _run(args, settings, out, progress)


def _run(args, settings, out: Path, progress: bool) -> int:
    try:
        if args.command == "upload-model":
            from service.engine.artifact_sync import upload_artifacts, write_weights_manifest

            pipeline = (args.pipeline or settings.base_model).expanduser().resolve()
            write_weights_manifest(pipeline)
            manifest = upload_artifacts(pipeline, args.url, args.endpoint_url or settings.s3_endpoint_url,
                                        args.region or settings.s3_region, progress=progress)
            print(f"uploaded the base model ({len(manifest.artifacts)} files) from {pipeline} to {args.url.rstrip('/')}/")
            return 0
        if args.command in ("upload", "download"):
            from service.engine.artifact_sync import download_artifacts, upload_artifacts

            endpoint = args.endpoint_url or settings.s3_endpoint_url
            region = args.region or settings.s3_region
            if args.command == "upload":
                manifest = upload_artifacts(out, args.url, endpoint, region, progress=progress)
                print(f"uploaded {len(manifest.artifacts)} artifacts and the manifest from {out} to {args.url.rstrip('/')}/")
            else:
                manifest = download_artifacts(args.url, out, endpoint, region, progress=progress)
                print(f"downloaded {len(manifest.artifacts)} verified artifacts and the manifest into {out}")
            return 0
        pipeline = (args.pipeline or settings.base_model).expanduser().resolve()
        components = tuple(c.strip() for c in args.components.split(",") if c.strip()) if args.components else None
        if args.command in ("export", "all"):
            manifest, reports = export_command(pipeline, out, components, args.check_shapes, args.max_error,
                                               args.skip_check, args.exporter, progress)
            _print_exports(reports)
            print(f"manifest: {out / 'manifest.json'} ({len(manifest.artifacts)} artifacts)")
        if args.command in ("build", "all"):
            manifest = build_command(pipeline, out, build_profiles(args), components, args.timing_cache,
                                     args.workspace_gib, args.vae_fp16, progress)
            if manifest is not None:
                for engine in manifest.engines().values():
                    print(f"{engine.component:15} engine {engine.file}  refittable={engine.refittable}  {engine.bytes} bytes")
                print(f"manifest: {out / 'manifest.json'} ({len(manifest.artifacts)} artifacts)")
        return 0
    except (CompileError, AtelierError) as exc:  # ArtifactError, ModelLoadError, UnsafeWeights
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:  # ConfigError (a malformed URL), a missing or unreadable file
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
