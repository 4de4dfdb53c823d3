"""Turning a generated PIL image into file bytes (PNG, JPEG or WebP), deterministically.

Owns: the encoder settings of each output format. Must never add metadata that varies
between runs (timestamps), so the same pixels always give the same bytes.
"""

from __future__ import annotations

import io

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
