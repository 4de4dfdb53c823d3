"""The eager backend: PyTorch modules run as loaded, in inference mode."""

from __future__ import annotations


class EagerBackend:
    name = "eager"

    def prepare(self, pipe) -> None:
        for module in pipe.components.values():
            if hasattr(module, "eval") and hasattr(module, "parameters"):
                module.eval()
                module.requires_grad_(False)
