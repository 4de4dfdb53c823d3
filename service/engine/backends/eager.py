"""The eager backend: PyTorch modules run as loaded, in inference mode.

Serves every size the API accepts (256..2048 px, any multiple of 8; diffusers' UNet passes
explicit upsample sizes for latents that are not multiples of 4). Warm-up pays first-call
costs (CUDA context, cuBLAS handles) once, at the first configured size: nothing is
specialised to a shape, so one size is enough.
"""

from __future__ import annotations

from service.engine.backends.base import Backend, WarmupShape


class EagerBackend(Backend):
    name = "eager"
    handles_adapters = False  # twins switch in the PyTorch adapter slot (`Backend.use_adapter`)

    def __init__(self, warmup_sizes: tuple[tuple[int, int], ...] = ((256, 256),)):
        self.warmup_sizes = tuple(warmup_sizes)

    def prepare(self, pipe) -> None:
        for module in pipe.components.values():
            if hasattr(module, "eval") and hasattr(module, "parameters"):
                module.eval()
                module.requires_grad_(False)

    def prepare_unet(self, unet) -> None:
        """Another UNet that serves (an inpainting UNet): inference mode, like the pipeline's."""
        unet.eval()
        unet.requires_grad_(False)

    def warmup_shapes(self) -> tuple[WarmupShape, ...]:
        return tuple(WarmupShape(w, h) for w, h in self.warmup_sizes[:1])

    def check_request(self, request) -> None:
        """Every request the API accepts is served."""

    def check_shape(self, width: int, height: int, images: int, guidance_scale: float) -> None:
        """Every batch shape is served."""

    def max_images(self, width: int, height: int, guidance_scale: float) -> int | None:
        return None  # no limit of the backend's own (memory permitting)

    def status(self) -> dict:
        return {"backend": self.name, "active": self.name, "serving_range": "every size the API accepts"}
