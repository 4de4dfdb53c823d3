"""XMP metadata for generated images: the IPTC digital source type, written into the container.

Owns: building Atelier's XMP packet (`Iptc4xmpExt:DigitalSourceType` = trainedAlgorithmicMedia,
or compositeWithTrainedAlgorithmicMedia for an edit,
`xmp:CreatorTool`, `dc:format`, `atelier:GenerationId`) and placing it in PNG (an uncompressed
`iTXt` chunk with keyword `XML:com.adobe.xmp`, right after IHDR), JPEG (an APP1 segment with the
`http://ns.adobe.com/xap/1.0/\\0` header, after SOI and any JFIF/EXIF APP segments) and WebP
(an `XMP ` chunk at the end, with a VP8X header added or its XMP flag set) by editing the
container only; plus reading the digital source type back from any of the three.

Must never: decode or re-encode pixels (the bytes of every image chunk/scan are copied verbatim),
embed anything that varies between two calls with the same inputs (no clocks, no random ids), or
run after C2PA signing (the C2PA hard binding hashes the asset, so XMP goes in first).
"""

from __future__ import annotations

import re
import struct
import zlib
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from service.errors import MarkingFailed

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# An edit: the source's pixels outside the mask, generated ones inside (the C2PA actions say the same).
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"

NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_XMP = "http://ns.adobe.com/xap/1.0/"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
# Atelier's own XMP namespace. `.example` is reserved (RFC 2606): swap in a domain Atelier
# controls before third parties are told to rely on it; readers match on this constant.
NS_ATELIER = "http://ns.atelier.example/xmp/1.0/"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_MAX_SEGMENT = 0xFFFF - 2  # payload bytes an APPn segment can hold after its length field
MAX_XMP_BYTES = 1 << 20  # read side: larger (inflated) packets are ignored
WEBP_XMP_FLAG = 0x04
WEBP_ALPHA_FLAG = 0x10

MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def build_xmp_packet(
    *, generation_id: str, creator_tool: str, mime_type: str,
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA,
) -> bytes:
    """The UTF-8 XMP packet: a read-only packet (`end="r"`, no padding), identical for identical inputs."""
    attrs = {
        "Iptc4xmpExt:DigitalSourceType": digital_source_type,
        "xmp:CreatorTool": creator_tool,
        "dc:format": mime_type,
        "atelier:GenerationId": generation_id,
    }
    fields = "".join(f"\n    {name}={quoteattr(value)}" for name, value in attrs.items())
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        f' <rdf:RDF xmlns:rdf="{NS_RDF}">\n'
        '  <rdf:Description rdf:about=""'
        f'\n    xmlns:xmp="{NS_XMP}"'
        f'\n    xmlns:dc="{NS_DC}"'
        f'\n    xmlns:Iptc4xmpExt="{NS_IPTC_EXT}"'
        f'\n    xmlns:atelier="{NS_ATELIER}"'
        f"{fields}/>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )
    return packet.encode("utf-8")


def add_xmp(data: bytes, fmt: str, *, generation_id: str, generator: str,
            digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA) -> bytes:
    """Return `data` with Atelier's XMP packet in it, replacing any XMP already there.

    `fmt` is "png", "jpeg" or "webp" (or the matching MIME type); `generator` becomes
    `xmp:CreatorTool` (e.g. "Atelier 0.1.0"); `digital_source_type` is trainedAlgorithmicMedia,
    or compositeWithTrainedAlgorithmicMedia for an edit. Raises MarkingFailed (code
    `xmp_failed`) for an unsupported format or a malformed container.
    """
    mime_type = MIME_TYPES.get(fmt, fmt)
    packet = build_xmp_packet(generation_id=generation_id, creator_tool=generator, mime_type=mime_type,
                              digital_source_type=digital_source_type)
    return write_xmp(data, mime_type, packet)


def write_xmp(data: bytes, mime_type: str, packet: bytes) -> bytes:
    """Place a ready XMP packet in a PNG, JPEG or WebP container without touching the image data."""
    writer = {"image/png": _png_write, "image/jpeg": _jpeg_write, "image/webp": _webp_write}.get(mime_type)
    if writer is None:
        raise MarkingFailed(f"XMP cannot be written into {mime_type!r}", code="xmp_failed")
    try:
        return writer(bytes(data), packet)
    except (IndexError, struct.error, ValueError) as exc:
        raise MarkingFailed(f"XMP cannot be written: malformed {mime_type} container ({exc})", code="xmp_failed") from exc


def read_xmp(data: bytes) -> bytes | None:
    """The XMP packet of a PNG, JPEG or WebP (format sniffed from the bytes), or None. Never raises."""
    try:
        if data.startswith(PNG_SIGNATURE):
            return _png_read(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_read(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_read(data)
    except (IndexError, struct.error, ValueError, zlib.error):
        return None
    return None


def read_digital_source_type(data: bytes) -> str | None:
    """`Iptc4xmpExt:DigitalSourceType` from the image's XMP (attribute, element or rdf:resource form)."""
    packet = read_xmp(data)
    if packet is None:
        return None
    return _xmp_property(packet, NS_IPTC_EXT, "DigitalSourceType")


def read_generation_id(data: bytes) -> str | None:
    """`atelier:GenerationId` from the image's XMP, or None."""
    packet = read_xmp(data)
    if packet is None:
        return None
    return _xmp_property(packet, NS_ATELIER, "GenerationId")


# --- XMP parsing ---------------------------------------------------------------------------

_FORBIDDEN_MARKUP = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def _xmp_property(packet: bytes, namespace: str, name: str) -> str | None:
    # XMP never legitimately carries a DTD; refusing one rules out entity expansion tricks in
    # packets that arrive in uploaded files (the verify route reads untrusted images).
    if _FORBIDDEN_MARKUP.search(packet):
        return None
    try:
        root = ElementTree.fromstring(packet.strip(b"\x00 \t\r\n"))
    except ElementTree.ParseError:
        return None
    qualified = f"{{{namespace}}}{name}"
    for description in root.iter(f"{{{NS_RDF}}}Description"):
        if qualified in description.attrib:
            return description.attrib[qualified].strip()
        element = description.find(qualified)
        if element is not None:
            resource = element.attrib.get(f"{{{NS_RDF}}}resource")
            text = resource if resource is not None else (element.text or "")
            return text.strip() or None
    return None


# --- PNG -----------------------------------------------------------------------------------


def _png_chunks(data: bytes):
    """Yield (type, start, end) of every chunk, `end` past the CRC; stops after IEND."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunk_type = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        yield chunk_type, pos, end
        if chunk_type == b"IEND":
            return
        pos = end
    raise ValueError("PNG without IEND")


def _png_chunk(chunk_type: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + chunk_type + payload + struct.pack(">I", crc)


def _is_png_xmp(data: bytes, start: int, end: int) -> bool:
    return data[start + 8 : end - 4].startswith(PNG_XMP_KEYWORD + b"\x00")


def _png_write(data: bytes, packet: bytes) -> bytes:
    # iTXt: keyword NUL, compression flag 0, method 0, empty language NUL, empty translated NUL, text.
    itxt = _png_chunk(b"iTXt", PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
    out = [PNG_SIGNATURE]
    placed = False
    for chunk_type, start, end in _png_chunks(data):
        if chunk_type == b"iTXt" and _is_png_xmp(data, start, end):
            continue  # replaced
        out.append(data[start:end])
        if chunk_type == b"IHDR":
            out.append(itxt)
            placed = True
    if not placed:
        raise ValueError("PNG without IHDR")
    return b"".join(out)


def _png_read(data: bytes) -> bytes | None:
    for chunk_type, start, end in _png_chunks(data):
        if chunk_type == b"iTXt" and _is_png_xmp(data, start, end):
            body = data[start + 8 : end - 4][len(PNG_XMP_KEYWORD) + 1 :]
            compressed, _method = body[0], body[1]
            rest = body[2:]
            language_end = rest.index(b"\x00")
            translated_end = rest.index(b"\x00", language_end + 1)
            text = rest[translated_end + 1 :]
            if not compressed:
                return text
            inflater = zlib.decompressobj()  # bounded: a compressed chunk could be a zip bomb
            packet = inflater.decompress(text, MAX_XMP_BYTES)
            return None if inflater.unconsumed_tail else packet
    return None


# --- JPEG ----------------------------------------------------------------------------------


def _jpeg_segments(data: bytes):
    """Yield (marker, start, end) of every segment before the first SOS; SOS itself yields end=None."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("JPEG marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: entropy data follows
            yield marker, pos, None
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ValueError("truncated JPEG segment")
        yield marker, pos, end
        pos = end
    raise ValueError("JPEG without a scan")


def _is_jpeg_xmp(data: bytes, marker: int, start: int, end: int | None) -> bool:
    return marker == 0xE1 and end is not None and data[start + 4 : end].startswith(JPEG_XMP_HEADER)


def _jpeg_write(data: bytes, packet: bytes) -> bytes:
    payload = JPEG_XMP_HEADER + packet
    if len(payload) > JPEG_MAX_SEGMENT:
        raise ValueError("XMP packet too large for one APP1 segment")
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    out = [b"\xff\xd8"]
    placed = False
    for marker, start, end in _jpeg_segments(data):
        if _is_jpeg_xmp(data, marker, start, end):
            continue  # replaced
        # Keep JFIF (APP0) and EXIF (APP1) first, as their specs require; XMP goes right after.
        if not placed and not (marker == 0xE0 or (marker == 0xE1 and end is not None)):
            out.append(app1)
            placed = True
        if end is None:
            out.append(data[start:])  # the scan and everything after it, verbatim
            break
        out.append(data[start:end])
    return b"".join(out)


def _jpeg_read(data: bytes) -> bytes | None:
    for marker, start, end in _jpeg_segments(data):
        if _is_jpeg_xmp(data, marker, start, end):
            return data[start + 4 + len(JPEG_XMP_HEADER) : end]
    return None


# --- WebP ----------------------------------------------------------------------------------


def _webp_chunks(data: bytes):
    """Yield (fourcc, start, end) of every chunk in the RIFF body, `end` past the pad byte."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    (riff_size,) = struct.unpack("<I", data[4:8])
    limit = min(len(data), 8 + riff_size)
    pos = 12
    while pos + 8 <= limit:
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > limit:
            raise ValueError("truncated WebP chunk")
        yield fourcc, pos, min(end, limit)
        pos = end


def _webp_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")


def _webp_canvas(fourcc: bytes, payload: bytes) -> tuple[int, int, bool]:
    """(width, height, has_alpha) from a simple-format VP8 or VP8L bitstream header."""
    if fourcc == b"VP8 ":
        if payload[3:6] != b"\x9d\x01\x2a":
            raise ValueError("bad VP8 start code")
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if fourcc == b"VP8L":
        if payload[0] != 0x2F:
            raise ValueError("bad VP8L signature")
        (bits,) = struct.unpack("<I", payload[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise ValueError(f"unexpected WebP chunk {fourcc!r}")


def _webp_write(data: bytes, packet: bytes) -> bytes:
    chunks = [(fourcc, data[start:end]) for fourcc, start, end in _webp_chunks(data)]
    if not chunks:
        raise ValueError("empty WebP")
    body = [raw for fourcc, raw in chunks if fourcc != b"XMP "]
    if chunks[0][0] == b"VP8X":
        header = bytearray(body[0])
        header[8] |= WEBP_XMP_FLAG
        body[0] = bytes(header)
    else:
        fourcc, raw = chunks[0]
        (size,) = struct.unpack("<I", raw[4:8])
        width, height, alpha = _webp_canvas(fourcc, raw[8 : 8 + size])
        flags = WEBP_XMP_FLAG | (WEBP_ALPHA_FLAG if alpha else 0)
        vp8x = struct.pack("<B3x", flags) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body.insert(0, _webp_chunk(b"VP8X", vp8x))
    body.append(_webp_chunk(b"XMP ", packet))
    riff_body = b"WEBP" + b"".join(body)
    return b"RIFF" + struct.pack("<I", len(riff_body)) + riff_body


def _webp_read(data: bytes) -> bytes | None:
    for fourcc, start, end in _webp_chunks(data):
        if fourcc == b"XMP ":
            (size,) = struct.unpack("<I", data[start + 4 : start + 8])
            return data[start + 8 : start + 8 + size]
    return None
