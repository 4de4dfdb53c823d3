"""The `compile` backend: the UNet under torch.compile, twins hot-swapped without recompiles.

Owns: compiling the pipeline's hot modules once, before warm-up. By default only the UNet's
repeated transformer blocks are compiled (diffusers' regional compilation,
`compile_repeated_blocks`): one block's graph is reused for every instance, so compiling
takes seconds instead of minutes and runs as fast as compiling the whole UNet. `full`
compiles the whole UNet instead. Shapes are static unless `dynamic` is set: each new
(batch, height, width) compiles once; `dynamic=True` trades a little speed for no
per-size compiles. The VAE decoder stays eager: it runs once per image (the UNet runs
twice per step), and compiling it failed on CPU with torch 2.13 (a non-contiguous input in
its group norm under AOT autograd).

Twin swaps never recompile: the adapter slot (`service.twins.slot`) is created before
compilation and a swap copies tensors into it in place (the same contract as diffusers'
`enable_lora_hotswap`), so the compiled graphs see the same parameters with new values.
`tests/test_compile_backend.py` checks this with `error_on_recompile`. Must never change
numerics beyond the compiler's own reordering (tests compare against eager).
"""

from __future__ import annotations

import logging

from service.engine.backends.eager import EagerBackend

log = logging.getLogger("atelier.engine")
MODES = ("regional", "full")


class CompileBackend:
    name = "compile"

    def __init__(self, mode: str = "regional", dynamic: bool = False, compiler: str = "inductor"):
        if mode not in MODES:
            raise ValueError(f"compile mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.dynamic = dynamic
        self.compiler = compiler  # "inductor" in production; "aot_eager" checks graphs without codegen

    def prepare(self, pipe) -> None:
        EagerBackend().prepare(pipe)
        options = {"fullgraph": True, "dynamic": self.dynamic, "backend": self.compiler}
        unet = pipe.unet
        if self.mode == "regional" and getattr(unet, "_repeated_blocks", None):
            unet.compile_repeated_blocks(**options)
        else:
            unet.compile(**options)
        log.info("compile backend ready", extra={"fields": {"mode": self.mode, "dynamic": self.dynamic,
                                                            "compiler": self.compiler}})

