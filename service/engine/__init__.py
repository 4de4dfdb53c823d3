"""Generation: load a diffusers pipeline, run batches of requests, report per-stage timings.

Imported by the renderer only (torch); the gateway never imports it.
"""

from service.engine.pipeline import Engine
from service.rendering import GeneratedImage, GenerationResult

__all__ = ["Engine", "GeneratedImage", "GenerationResult"]
