"""Execution backends behind one interface: how the loaded pipeline's modules are run.

`eager` is the plain PyTorch path; `compile` runs the UNet under torch.compile with twins
hot-swapped in place; `tensorrt` runs engines built by `builds/compile.py`.
`create_backend(settings)` picks one from `ATELIER_BACKEND`. Every backend derives from
`Backend`: it says what to warm up (`warmup_shapes`), vets requests before any GPU work
(`check_request`: a 422 for what it cannot serve), reports its state for the ready line
(`status`), and puts a twin's adapter in place (`use_adapter`: the adapter slot, unless the
backend `handles_adapters` itself, as TensorRT's refit does).
"""

from __future__ import annotations

from service.config import Settings
from service.engine.backends.base import Backend, WarmupShape, parse_warmup_sizes
from service.engine.backends.eager import EagerBackend


def create_backend(settings: Settings) -> Backend:
    sizes = parse_warmup_sizes(settings.warmup_sizes)
    if settings.backend == "eager":
        return EagerBackend(sizes)
    if settings.backend == "compile":
        from service.engine.backends.compile import CompileBackend

        return CompileBackend(settings.compile_mode, settings.compile_dynamic, settings.compile_compiler, sizes)
    if settings.backend == "tensorrt":
        from dataclasses import replace

        from service.engine.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(settings.engines_dir, settings.base_model, settings.backend_fallback,
                               make_fallback=lambda name: create_backend(replace(settings, backend=name)))
    raise ValueError(f"unknown backend {settings.backend!r}")


__all__ = ["Backend", "WarmupShape", "create_backend", "parse_warmup_sizes"]
