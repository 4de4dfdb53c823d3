"""Image files leaving the service: deterministic encoding, and the marker interface.

Owns: the encoder settings of each output format (no metadata that varies between runs, so
the same pixels give the same bytes), and the `ImageMarker` interface the engine calls for
every image: the provenance marker implements it, `PlainEncoder` (no marks) serves engines
used outside the service. It sits below the engine and provenance so neither imports the
other. Must never import anything else from `service`.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from PIL import Image

JPEG_QUALITY = 95
WEBP_QUALITY = 95


def encode_image(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=6)
    elif fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    elif fmt == "webp":
        image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return buffer.getvalue()


class SourceImage(NamedTuple):
    """An edit's source image (bytes, format, title), named in the signed manifest as its
    ingredient; `generation_id` only when it is an Atelier generation of the same twin (without
    one the ingredient is marked as not an Atelier generation: an uploaded photo)."""

    data: bytes
    format: str
    title: str
    generation_id: str | None = None


@dataclass(frozen=True)
class MarkContext:
    generation_id: str
    twin_id: str | None
    index: int
    seed: int
    # An edit's source image (a SourceImage, or bytes, format, title): the signed manifest names
    # it as an ingredient, and the image is then marked as a composite (C2PA and XMP alike).
    source: tuple[bytes, str, str] | None = None
    # What licensed the generation (`service.rendering.RenderLicence.assertion()`): the signed
    # manifest names it (`com.atelier.licence`); None for the base model.
    licence: dict | None = None


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
