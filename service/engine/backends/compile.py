"""The `compile` backend: the UNet under torch.compile, twins hot-swapped without recompiles.

Owns: compiling the pipeline's hot modules once, before warm-up; the warm-up shapes; and
catching a compiled call that cannot run, serving it eagerly, and reporting that fallback.
By default only the UNet's repeated transformer blocks are compiled (diffusers' regional
compilation, `compile_repeated_blocks`): one block's graph is reused for every instance, so
compiling takes seconds instead of minutes and runs as fast as compiling the whole UNet.
`full` compiles the whole UNet forward instead. The VAE decoder stays eager: it runs once
per image (the UNet runs twice per step), and compiling it failed on CPU with torch 2.13 (a
non-contiguous input in its group norm under AOT autograd).

Shapes (docs/BENCHMARKS.md, "Serving range of each backend", has the measurements):
- `dynamic=True` (the default, ATELIER_COMPILE_DYNAMIC): one graph per block width serves
  every (batch, height, width) the API accepts; dynamo still specialises a batch of 1 (a
  single image without CFG) and, with the IP-Adapter loaded, a batch of several images, so
  warm-up also runs those two cases once, at the first size. (With the IP-Adapter, the
  first size whose token grid its mask does not divide adds one more graph.) Duck sizing
  is off while tracing (`_no_duck_shapes`), so a token count that equals a channel count
  is not specialised.
- `dynamic=False` (size buckets): each new (batch, height, width) compiles under the
  pipeline lock, and regional compilation adds one graph per attention level per size, so
  dynamo's recompile limit (8 per code object) is reached after a few sizes. Warm-up then
  compiles exactly the configured ATELIER_WARMUP_SIZES.
Either way, warm-up runs at ATELIER_WARMUP_SIZES, so requests at those sizes never compile.

Fallback to eager: with `fullgraph=True`, a call past the recompile limit raises
`FailOnRecompileLimitHit` instead of running; a compiler crash raises `BackendCompilerFailed`.
The guard installed as `unet.forward` catches those, runs that UNet call eagerly
(`torch.compiler.set_stance("force_eager")`), and reports it (`report_fallback`: a log line
per reason and shape, `atelier_backend_fallbacks_total{backend="compile"}` per call, and
`status()` for the ready line). A recompile-limit fallback is per call (shapes already
compiled stay compiled); a compiler failure turns the backend eager for good, so it is not
retried on every call. A `RecompileError` (`error_on_recompile`, used by tests and benches)
is never swallowed.

Twin swaps never recompile: the adapter slot (`service.twins.slot`) is created before
compilation and a swap copies tensors into it in place (the same contract as diffusers'
`enable_lora_hotswap`), so the compiled graphs see the same parameters with new values.
`tests/test_compile_backend.py` checks this with `error_on_recompile`. Mixed-twin batches do
not recompile either: each slot layer reads its rows' lanes from a tensor (`AdapterSlot.route`
writes it in place), so which twin a row renders is data the graph takes, never a guard
(`tests/test_mixed_lanes.py`, under `error_on_recompile`). Must never change
numerics beyond the compiler's own reordering (tests compare against eager).
"""

from __future__ import annotations

import functools
import logging

import torch

from service.engine.backends.base import Backend, WarmupShape, report_fallback
from service.engine.backends.eager import EagerBackend

log = logging.getLogger("atelier.engine")
MODES = ("regional", "full")


def _fallback_reason(exc: BaseException) -> str | None:
    """"recompile_limit" / "compile_failed" for the compiler errors a guard serves eagerly, else None."""
    from torch._dynamo import exc as dynamo_exc

    if isinstance(exc, dynamo_exc.RecompileError):  # error_on_recompile: the caller asked to be told
        return None
    if isinstance(exc, dynamo_exc.FailOnRecompileLimitHit):
        return "recompile_limit"
    if isinstance(exc, (dynamo_exc.BackendCompilerFailed, dynamo_exc.InternalTorchDynamoError, dynamo_exc.Unsupported)):
        return "compile_failed"
    return None


def _no_duck_shapes():
    """Dynamo's duck sizing gives equal sizes one symbol: a token count that happens to equal a
    channel count (64 tokens and 64 channels on the demo at 256 px; 1280 tokens and 1280
    channels for SDXL at 1024x1280) is then specialised, and the next size recompiles. Off
    while this backend's graphs are traced."""
    from torch.fx.experimental import _config

    return _config.patch(use_duck_shape=False)


class CompileBackend(Backend):
    name = "compile"
    # Twins switch in the PyTorch adapter slot, in place: the compiled graphs never see another
    # tensor, so a switch recompiles nothing (`Backend.use_adapter`).
    handles_adapters = False

    def __init__(self, mode: str = "regional", dynamic: bool = True, compiler: str = "inductor",
                 warmup_sizes: tuple[tuple[int, int], ...] = ((256, 256),)):
        if mode not in MODES:
            raise ValueError(f"compile mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.dynamic = dynamic
        self.compiler = compiler  # "inductor" in production; "aot_eager" checks graphs without codegen
        self.warmup_sizes = tuple(warmup_sizes)
        self.eager_only = False  # set for good after a compiler failure
        self.eager_calls = 0  # UNet calls served eagerly by the guard
        self.fallback_reason: str | None = None  # the last one
        self._logged: set[tuple[str, tuple]] = set()

    def prepare(self, pipe) -> None:
        EagerBackend().prepare(pipe)
        self.prepare_unet(pipe.unet)
        log.info("compile backend ready", extra={"fields": {"mode": self.mode, "dynamic": self.dynamic,
                                                            "compiler": self.compiler,
                                                            "warmup": [str(s) for s in self.warmup_shapes()]}})

    def prepare_unet(self, unet) -> None:
        """Compile one UNet (the pipeline's, or another one that serves, e.g. an inpainting UNet)
        and install the eager-fallback guard as its `forward`."""
        unet.eval()
        unet.requires_grad_(False)
        options = {"fullgraph": True, "dynamic": self.dynamic, "backend": self.compiler}
        forward = unet.forward  # the bound method, before anything shadows it
        if self.mode == "regional" and getattr(unet, "_repeated_blocks", None):
            unet.compile_repeated_blocks(**options)
            compiled = forward  # the blocks inside it are compiled
        else:
            compiled = torch.compile(forward, **options)
        unet.forward = self._guard(compiled, forward)

    def _guard(self, compiled, eager):
        @functools.wraps(eager)
        def forward(sample, *args, **kwargs):
            if self.eager_only:
                return self._eager(eager, sample, args, kwargs, "compile_failed", None)
            try:
                with _no_duck_shapes():
                    return compiled(sample, *args, **kwargs)
            except Exception as exc:
                reason = _fallback_reason(exc)
                if reason is None:
                    raise
                if reason == "compile_failed":
                    self.eager_only = True
                return self._eager(eager, sample, args, kwargs, reason, exc)

        return forward

    def _eager(self, eager, sample, args, kwargs, reason: str, exc: BaseException | None):
        self.eager_calls += 1
        self.fallback_reason = reason
        shape = tuple(sample.shape)
        first = (reason, shape) not in self._logged
        if first:
            self._logged.add((reason, shape))
        detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}" if exc else \
            "the backend serves eagerly since an earlier compiler failure"
        report_fallback(self.name, "eager", reason, detail, log_line=first, sample_shape=list(shape),
                        eager_calls=self.eager_calls)
        with torch.compiler.set_stance("force_eager"):
            return eager(sample, *args, **kwargs)

    def warmup_shapes(self) -> tuple[WarmupShape, ...]:
        shapes = [WarmupShape(w, h) for w, h in self.warmup_sizes]
        if self.dynamic:
            w, h = self.warmup_sizes[0]
            # dynamo specialises a batch of 1 (one image, no CFG); and with the IP-Adapter loaded
            # its key reshape guards whether the image embeddings' batch equals the latents' (it
            # does for one image), so a multi-image batch is another graph: compile both now, not
            # under the lock later.
            shapes += [WarmupShape(w, h, cfg=False), WarmupShape(w, h, images=2)]
        return tuple(shapes)

    def check_request(self, request) -> None:
        """Every request the API accepts is served (one that no graph covers runs eagerly, reported)."""

    def check_shape(self, width: int, height: int, images: int, guidance_scale: float) -> None:
        """Every batch shape is served."""

    def max_images(self, width: int, height: int, guidance_scale: float) -> int | None:
        return None  # no limit of the backend's own (memory permitting)

    def status(self) -> dict:
        return {"backend": self.name, "active": "eager" if self.eager_only else self.name, "mode": self.mode,
                "dynamic": self.dynamic, "compiler": self.compiler, "eager_fallback_calls": self.eager_calls,
                "fallback_reason": self.fallback_reason, "serving_range": "every size the API accepts"}
