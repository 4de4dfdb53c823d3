"""Verifying an uploaded image: decode it safely, read the watermark and the C2PA manifest.

Owns: the limits on what is decoded (format sniffed from magic bytes, the container's
structure bounded by `service.provenance.limits` before Pillow or the C2PA reader run, declared
pixel count checked from the header before any pixel is decompressed, a time budget between
stages), and the verification report. The report's `generation_id` is None here: what a
manifest claims is kept apart (`claimed_*`) until the watermark index confirms it
(`service.provenance.disclosure`); so are the manifest's signer and digital source type, which
only the public check (`service.provenance.detect`) weighs. The training-mining answer and the
licence assertion (what licensed the generation: a signed licence's id and hash, or a paper
consent record's id and version) are reported only from a manifest that is intact and signed
(Valid or Trusted). Must never trust the upload: garbage, empty bodies, decompression bombs and
chunk bombs end as typed 4xx errors, never as a crash, unbounded memory or unbounded time.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image

from service.errors import MalformedRequest, PayloadTooLarge, UnreadableImage
from service.provenance import watermark
from service.provenance.c2pa import read_c2pa
from service.provenance.limits import Deadline, VerifyLimits, check_structure
from service.provenance.marking import watermark_hex
from service.provenance.xmp import read_digital_source_type

MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"))
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def sniff_format(data: bytes) -> str:
    for magic, fmt in MAGIC:
        if data.startswith(magic):
            return fmt
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise UnreadableImage("the upload is not a PNG, JPEG or WebP image", field="image")


def open_bounded(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    """Decode `data` only if its header declares at most `max_pixels` pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt.upper()])
    except Image.DecompressionBombError:
        raise PayloadTooLarge(f"the image declares more than {max_pixels} pixels; not decoded") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on garbage
        raise UnreadableImage(f"the {fmt} image cannot be read: {type(exc).__name__}", field="image") from None
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(f"the image declares {width}x{height} pixels; at most {max_pixels} pixels are verified")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except Exception as exc:  # noqa: BLE001
        raise UnreadableImage(f"the {fmt} image cannot be decoded: {type(exc).__name__}", field="image") from None
    return image


@dataclass(frozen=True)
class VerifyReport:
    format: str
    width: int
    height: int
    watermark_found: bool
    watermark_id: str | None
    bit_errors_corrected: int | None
    c2pa_state: str
    c2pa_reasons: list[str]
    generation_id: str | None
    digital_source_type: str | None
    claimed_generation_id: str | None = None  # what the manifest says (any state): not shown as such
    claimed_watermark_id: str | None = None
    training_mining: str | None = None  # from an intact, signed manifest only
    licence: dict | None = None  # the manifest's licence assertion: from an intact, signed manifest only
    manifest_source_type: str | None = None  # the manifest's digital source type (any state): not shown as such
    manifest_signer: tuple[str | None, str | None] | None = None  # (organization, common name) of its certificate

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "watermark": {"found": self.watermark_found, "watermark_id": self.watermark_id, "bit_errors_corrected": self.bit_errors_corrected},
            "c2pa": {"state": self.c2pa_state, "reasons": self.c2pa_reasons},
            "generation_id": self.generation_id,
            "digital_source_type": self.digital_source_type,
            "training_mining": self.training_mining,
            "licence": self.licence,
            "audit": None,  # the generation's summary: for its own tenant and admins (disclosure.py)
        }


@lru_cache(maxsize=4)
def _anchors_pem(path: Path | None) -> str | None:
    """The trust anchors' PEM, read once per process (a new anchor file needs a restart)."""
    return path.read_text() if path is not None and path.is_file() else None


def verify_image(data: bytes, max_pixels: int, trust_anchors: Path | None,
                 limits: VerifyLimits | None = None) -> VerifyReport:
    if not data:
        raise MalformedRequest("the body is empty; send the image bytes (raw body or multipart field 'image')")
    limits = limits or VerifyLimits()
    deadline = Deadline(limits.budget_ms)
    fmt = sniff_format(data)
    check_structure(data, fmt, limits)  # before Pillow or the C2PA reader parse anything
    image = open_bounded(data, fmt, max_pixels)
    deadline.check("the watermark was read")
    reading = watermark.detect(image.convert("RGB"))
    deadline.check("the C2PA manifest was read")
    c2pa = read_c2pa(data, MIME[fmt], _anchors_pem(trust_anchors))
    return VerifyReport(
        format=fmt,
        width=image.width,
        height=image.height,
        watermark_found=reading.found,
        watermark_id=watermark_hex(reading.payload) if reading.found and reading.payload is not None else None,
        bit_errors_corrected=reading.bit_errors_corrected,
        c2pa_state=c2pa.state,
        c2pa_reasons=list(c2pa.reasons),
        generation_id=None,
        digital_source_type=read_digital_source_type(data),
        claimed_generation_id=c2pa.generation_id,
        claimed_watermark_id=c2pa.watermark_id,
        training_mining=c2pa.training_mining if c2pa.state in ("Valid", "Trusted") else None,
        licence=c2pa.licence if c2pa.state in ("Valid", "Trusted") else None,
        manifest_source_type=c2pa.digital_source_type,
        manifest_signer=c2pa.signer,
    )
