"""Marking every generated image twice: an invisible watermark, then XMP and a C2PA manifest.

Owns: the order of marking (watermark the pixels -> encode the file -> XMP digital source
type -> C2PA signature, which must come last because it hashes the file) and the random
64-bit watermark id of each image (never personal data). The manifest names the generation
and what licensed it (the context's licence, by opaque ids), never the twin or the person.
Any failure raises MarkingFailed: an image is never returned unmarked. Must never decide
about HTTP.
"""

from __future__ import annotations

import io
import logging
import secrets
import time

from PIL import Image

from service import __version__
from service.config import Settings
from service.errors import MarkingFailed, ModelLoadError
from service.imaging import MarkContext, MarkedImage, encode_image
from service.provenance import watermark
from service.provenance.c2pa import C2paSigner, Ingredient, ManifestInfo
from service.provenance.xmp import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, TRAINED_ALGORITHMIC_MEDIA, add_xmp
from service.schemas import MEDIA_TYPES

log = logging.getLogger("atelier.provenance")
GENERATOR_NAME = "Atelier"
# Watermark strengths tried in turn: the mark is read back from the encoded file and made
# stronger only when it would not decode (small images with busy content need it).
PSNR_STEPS_DB = (40.0, 37.0, 34.0, 31.0)


def watermark_hex(payload: int) -> str:
    return f"{payload:016x}"


class ProvenanceMarker:
    """The service's ImageMarker: watermark + XMP + C2PA for every image."""

    def __init__(self, signer: C2paSigner):
        self.signer = signer

    @classmethod
    def from_settings(cls, settings: Settings) -> "ProvenanceMarker":
        missing = [str(p) for p in (settings.c2pa_chain, settings.c2pa_key) if not p.is_file()]
        if missing:
            raise ModelLoadError(
                f"C2PA signing material is missing ({', '.join(missing)}): run `make demo` "
                "(builds a development CA) or set ATELIER_C2PA_CHAIN and ATELIER_C2PA_KEY"
            )
        return cls(C2paSigner.from_pem_files(settings.c2pa_chain, settings.c2pa_key))

    def mark(self, image: Image.Image, fmt: str, context: MarkContext) -> MarkedImage:
        start = time.perf_counter()
        payload = secrets.randbits(64)
        try:
            data, encode_ms = self._watermarked_file(image.convert("RGB"), fmt, payload, context)
            data = add_xmp(data, fmt, generation_id=context.generation_id, generator=f"{GENERATOR_NAME} {__version__}",
                           digital_source_type=TRAINED_ALGORITHMIC_MEDIA if context.source is None
                           else COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA)  # an edit: as its C2PA actions say
            info = ManifestInfo(
                generation_id=context.generation_id,
                watermark_id=watermark_hex(payload),
                generator_name=GENERATOR_NAME,
                generator_version=__version__,
                ingredient=None if context.source is None else Ingredient(
                    data=context.source[0], mime_type=MEDIA_TYPES[context.source[1]], title=context.source[2],
                    generation_id=getattr(context.source, "generation_id", None)),  # none: not one of ours
                licence=context.licence,  # what licensed it, by opaque ids; the twin is never named
            )
            signed, manifest_sha256 = self.signer.sign(data, MEDIA_TYPES[fmt], info)
        except Exception as exc:
            log.exception("marking failed", extra={"fields": {"generation_id": context.generation_id, "index": context.index}})
            raise MarkingFailed(f"image {context.index} could not be marked ({type(exc).__name__}); nothing is returned unmarked") from None
        total_ms = (time.perf_counter() - start) * 1000.0
        return MarkedImage(
            data=signed,
            watermark_id=watermark_hex(payload),
            manifest_sha256=manifest_sha256,
            timings_ms={"mark": total_ms - encode_ms, "postprocess": encode_ms},
        )


    def _watermarked_file(self, image: Image.Image, fmt: str, payload: int, context: MarkContext) -> tuple[bytes, float]:
        """Embed, encode, and read the mark back from the file; stronger only if it must be."""
        encode_ms = 0.0
        for psnr_db in PSNR_STEPS_DB:
            marked = watermark.embed(image, payload, psnr_db=psnr_db)
            encode_start = time.perf_counter()
            data = encode_image(marked, fmt)
            encode_ms += (time.perf_counter() - encode_start) * 1000.0
            reading = watermark.detect(Image.open(io.BytesIO(data)).convert("RGB"), rescaled=False)
            if reading.found and reading.payload == payload:
                if psnr_db != PSNR_STEPS_DB[0]:
                    log.info("watermark strengthened", extra={"fields": {"generation_id": context.generation_id, "psnr_db": psnr_db}})
                return data, encode_ms
        raise RuntimeError(f"the watermark does not read back even at {PSNR_STEPS_DB[-1]} dB")
