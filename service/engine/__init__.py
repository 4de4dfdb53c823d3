"""Generation: load a diffusers pipeline, run it for one request, report per-stage timings."""

from service.engine.pipeline import Engine, GeneratedImage, GenerationResult

__all__ = ["Engine", "GeneratedImage", "GenerationResult"]
