"""The hook through which every generated image leaves the engine: encode, and mark.

Owns: the `ImageMarker` interface the engine calls for each image, and `PlainEncoder`, the
unmarked encoder used when an engine runs alone (benchmarks, engine tests). The service
always installs the provenance marker (`service.provenance.marking`); a marker that fails
raises, and the engine never falls back to an unmarked image. Must never import provenance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from service.engine.encoding import encode_image


@dataclass(frozen=True)
class MarkContext:
    generation_id: str
    twin_id: str | None
    index: int
    seed: int


@dataclass(frozen=True)
class MarkedImage:
    data: bytes
    watermark_id: str | None = None
    manifest_sha256: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # "mark" and "postprocess"


class ImageMarker(Protocol):
    def mark(self, image: Image.Image, fmt: str, context: MarkContext) -> MarkedImage: ...


class PlainEncoder:
    """Encodes without any mark. Only for engines used outside the service."""

    def mark(self, image: Image.Image, fmt: str, context: MarkContext) -> MarkedImage:
        start = time.perf_counter()
        data = encode_image(image, fmt)
        return MarkedImage(data, timings_ms={"postprocess": (time.perf_counter() - start) * 1000.0})
