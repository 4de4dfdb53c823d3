"""Bounds on what one /v1/verify or /v1/detect may cost, checked before Pillow or the C2PA
reader see a file.

Owns: a walk of the container's structure (PNG chunks, JPEG markers and scans, WebP chunks)
that stops as soon as a limit is passed (`check_structure`: total chunks, metadata chunks and
their bytes, JPEG scans), the time budget between verification stages (`Deadline`), and the
slots that bound concurrent verifies per API key and in all, and public checks per source and
in all (`VerifySlots`). A file refused here costs microseconds: a PNG of 1.7 million tiny text
chunks stops at the first chunk past the limit. Must never decode pixels or parse a manifest
itself.

Metadata is every chunk that is not pixels or their header: PNG text/iTXt/zTXt/eXIf/caBX...,
JPEG APPn and COM segments (where XMP, EXIF and C2PA's JUMBF live), WebP EXIF/XMP/C2PA.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.errors import AtelierError

PNG_PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT",
                              b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT"})
WEBP_PIXEL_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"})


class ImageTooComplex(AtelierError):
    """The file's structure or its verification cost passes a bound: refused, not verified."""

    status = 422
    code = "image_too_complex"

    def __init__(self, message: str):
        super().__init__(message, field="image")


class VerifyBusy(AtelierError):
    status = 429
    code = "too_many_concurrent"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message, code=code)
        if status is not None:
            self.status = status

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


@dataclass(frozen=True)
class VerifyLimits:
    max_chunks: int = 8192
    max_metadata_chunks: int = 256
    max_metadata_bytes: int = 8 * 1024**2
    max_scans: int = 64
    budget_ms: int = 5000

    @classmethod
    def from_settings(cls, settings) -> "VerifyLimits":
        return cls(settings.verify_max_chunks, settings.verify_max_metadata_chunks, settings.verify_max_metadata_bytes,
                   settings.verify_max_scans, settings.verify_budget_ms)


@dataclass
class _Tally:
    limits: VerifyLimits
    chunks: int = 0
    metadata_chunks: int = 0
    metadata_bytes: int = 0
    scans: int = 0

    def chunk(self, metadata_bytes: int | None = None) -> None:
        self.chunks += 1
        if self.chunks > self.limits.max_chunks:
            raise ImageTooComplex(f"the image has more than {self.limits.max_chunks} chunks; not verified")
        if metadata_bytes is not None:
            self.metadata_chunks += 1
            self.metadata_bytes += metadata_bytes
            if self.metadata_chunks > self.limits.max_metadata_chunks:
                raise ImageTooComplex(f"the image has more than {self.limits.max_metadata_chunks} metadata chunks; "
                                      "not verified")
            if self.metadata_bytes > self.limits.max_metadata_bytes:
                raise ImageTooComplex(f"the image holds more than {self.limits.max_metadata_bytes} bytes of metadata; "
                                      "not verified")

    def scan(self) -> None:
        self.scans += 1
        if self.scans > self.limits.max_scans:
            raise ImageTooComplex(f"the JPEG has more than {self.limits.max_scans} scans; not verified")


def check_structure(data: bytes, fmt: str, limits: VerifyLimits) -> dict[str, int]:
    """Walk the container and raise `ImageTooComplex` at the first bound passed; returns the
    counts. A malformed structure is left to the decoder to refuse (it stops the walk here)."""
    tally = _Tally(limits)
    if fmt == "png":
        _png(data, tally)
    elif fmt == "jpeg":
        _jpeg(data, tally)
    elif fmt == "webp":
        _webp(data, tally)
    return {"chunks": tally.chunks, "metadata_chunks": tally.metadata_chunks, "metadata_bytes": tally.metadata_bytes,
            "scans": tally.scans}


def _png(data: bytes, tally: _Tally) -> None:
    pos, end = 8, len(data)
    while pos + 12 <= end:
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        tally.chunk(None if kind in PNG_PIXEL_CHUNKS else length)
        pos += 12 + length
        if kind == b"IEND":
            break
    if pos < end:  # bytes after IEND (or a torn chunk): metadata a reader may still look at
        tally.chunk(end - pos)


def _jpeg(data: bytes, tally: _Tally) -> None:
    pos, end = 2, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:  # entropy-coded data: skip to the next marker candidate
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x00 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # stuffed byte, RSTn, TEM
            pos += 2
            continue
        if marker == 0xD9:  # end of image
            tally.chunk()
            if pos + 2 < end:
                tally.chunk(end - pos - 2)
            return
        if pos + 4 > end:
            return
        (length,) = struct.unpack_from(">H", data, pos + 2)
        is_metadata = 0xE0 <= marker <= 0xEF or marker == 0xFE
        tally.chunk(length if is_metadata else None)
        if marker == 0xDA:
            tally.scan()
        pos += 2 + max(length, 2)


def _webp(data: bytes, tally: _Tally) -> None:
    pos, end = 12, len(data)
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        tally.chunk(None if kind in WEBP_PIXEL_CHUNKS else size)
        pos += 8 + size + (size & 1)


class Deadline:
    """The time budget of one verification, checked between its stages."""

    def __init__(self, budget_ms: int, clock=time.monotonic):
        self._clock = clock
        self.budget_ms = budget_ms
        self.started = clock()

    def elapsed_ms(self) -> float:
        return (self._clock() - self.started) * 1000.0

    def check(self, stage: str) -> None:
        if self.elapsed_ms() > self.budget_ms:
            raise ImageTooComplex(f"verifying this image passed its {self.budget_ms} ms budget before {stage}; "
                                  "not verified")


class VerifySlots:
    """Concurrent verifies: at most `per_key` per API key (429) and `total` in all (503). The
    public check (`service.provenance.detect`) has slots of its own, held per source address
    (`holder`, `busy_code`), so a keyless flood can never take a verify slot."""

    def __init__(self, per_key: int, total: int, *, holder: str = "API key", busy_code: str = "verify_busy"):
        self.per_key = per_key
        self.total = total
        self.holder = holder
        self.busy_code = busy_code
        self._lock = threading.Lock()
        self._by_key: dict[str, int] = {}
        self._all = 0

    @contextmanager
    def hold(self, key_id: str) -> Iterator[None]:
        with self._lock:
            if self._by_key.get(key_id, 0) >= self.per_key:
                raise VerifyBusy(f"this {self.holder} already runs {self.per_key} check{'s' * (self.per_key != 1)} "
                                 "at once; retry when one ends")
            if self._all >= self.total:
                raise VerifyBusy("the service is checking as many images as it takes at once; retry shortly",
                                 code=self.busy_code, status=503)
            self._by_key[key_id] = self._by_key.get(key_id, 0) + 1
            self._all += 1
        try:
            yield
        finally:
            with self._lock:
                self._all -= 1
                left = self._by_key[key_id] - 1
                if left:
                    self._by_key[key_id] = left
                else:
                    del self._by_key[key_id]
