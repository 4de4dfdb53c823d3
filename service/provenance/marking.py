"""Marking every generated image twice: an invisible watermark, then XMP and a C2PA manifest.

Owns: the order of marking (watermark the pixels -> encode the file -> XMP digital source
type -> C2PA signature, which must come last because it hashes the file) and the random
64-bit watermark id of each image (never personal data). Any failure raises MarkingFailed:
an image is never returned unmarked. Must never decide about HTTP.
"""

from __future__ import annotations

import logging
import secrets
import time

from PIL import Image

from service import __version__
from service.config import Settings
from service.engine.encoding import encode_image
from service.engine.marking import MarkContext, MarkedImage
from service.errors import MarkingFailed, ModelLoadError
from service.provenance import watermark
from service.provenance.c2pa import C2paSigner, ManifestInfo
from service.provenance.xmp import add_xmp
from service.schemas import MEDIA_TYPES

log = logging.getLogger("atelier.provenance")
GENERATOR_NAME = "Atelier"


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
            marked = watermark.embed(image.convert("RGB"), payload)
            encode_start = time.perf_counter()
            data = encode_image(marked, fmt)
            encode_ms = (time.perf_counter() - encode_start) * 1000.0
            data = add_xmp(data, fmt, generation_id=context.generation_id, generator=f"{GENERATOR_NAME} {__version__}")
            info = ManifestInfo(
                generation_id=context.generation_id,
                watermark_id=watermark_hex(payload),
                generator_name=GENERATOR_NAME,
                generator_version=__version__,
                twin_id=context.twin_id,
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
