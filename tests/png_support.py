"""Building and taking apart PNG files chunk by chunk, for tests that forge or damage images."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator


def chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload, CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, the whole chunk's bytes) of each chunk after the signature."""
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        yield data[pos + 4:pos + 8], data[pos:pos + 12 + length]
        pos += 12 + length
