"""Is this upload an image we may decode? Size, format and pixel bounds, checked before decoding.

Owns: the accepted formats (PNG, JPEG, WebP, recognised by their magic bytes, never by a
name or a declared type), the byte and pixel limits, and the one full decode that follows
the header checks (so a truncated or corrupt file is refused here, not in the renderer).
Must never decode more than `max_pixels` pixels, nor trust Pillow's own bomb limit alone.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from service.errors import AtelierError, PayloadTooLarge

MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg"}
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
MIN_SIDE = 32


class UnsupportedImage(AtelierError):
    status = 415
    code = "unsupported_image"


class ImageBomb(AtelierError):
    status = 413
    code = "image_too_large"


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int
    height: int

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def sniff(data: bytes) -> str | None:
    for magic, name in MAGIC.items():
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(data: bytes, *, max_bytes: int, max_pixels: int, field: str = "file") -> ImageFacts:
    """The image's format and size, if it is a PNG, JPEG or WebP within the bounds; else a 4xx."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes}", field=field)
    fmt = sniff(data)
    if fmt is None:
        raise UnsupportedImage("send a PNG, JPEG or WebP image (recognised by its content, not its name)", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt.upper()]) as image:  # reads the header only
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageBomb(f"the image declares {width}x{height} pixels; the limit is {max_pixels} pixels",
                                    field=field)
                if min(width, height) < MIN_SIDE:
                    raise UnsupportedImage(f"the image is {width}x{height}; each side must be at least {MIN_SIDE} px",
                                           field=field)
                image.load()  # the one full decode, now that its size is known to be bounded
    except AtelierError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageBomb("the image declares too many pixels", field=field) from None
    except Exception:  # truncated, corrupt, or not what its magic bytes claim
        raise UnsupportedImage(f"the {fmt.upper()} image cannot be decoded", field=field) from None
    return ImageFacts(fmt, width, height)
