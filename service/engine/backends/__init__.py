"""Execution backends behind one interface: how the loaded pipeline's modules are run.

`eager` is the plain PyTorch path. The compiled backends (torch.compile, TensorRT) plug in
here with the same interface.
"""

from __future__ import annotations

from service.engine.backends.base import Backend
from service.engine.backends.eager import EagerBackend

_BACKENDS: dict[str, type[Backend]] = {"eager": EagerBackend}


def create_backend(name: str) -> Backend:
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(sorted(_BACKENDS))}") from None


__all__ = ["Backend", "create_backend"]
