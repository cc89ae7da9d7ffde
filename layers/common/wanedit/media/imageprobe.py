"""What an image is, from its first bytes: format (by magic bytes, not name), size and transparency.

The API takes JPEG, PNG (without an alpha channel), BMP and WEBP, 240-8000 px a side. Those facts sit
in the header: PNG's IHDR (and a tRNS chunk before IDAT), a JPEG SOFn marker, the BMP info header,
the WEBP VP8/VP8L/VP8X chunk. The first 64 KB (`HEADER_BYTES`) hold them for nearly every file; a JPEG
with large EXIF/ICC segments can put SOF later, so `probe_image_reader` reads on in 64 KB blocks, up to
1 MB, skipping segment and chunk bodies.

Alpha: PNG colour types 4/6 or a tRNS chunk; WEBP's VP8X alpha flag or VP8L's alpha bit; BMP only when
a 16/32-bit bitmap declares a non-zero alpha mask (a plain 32-bit BI_RGB pixel's 4th byte is reserved,
not alpha). JPEG has none.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from wanedit.media.reader import BlockReader, ProbeError, RangeReader

__all__ = ["HEADER_BYTES", "ImageInfo", "ProbeError", "probe_image", "probe_image_reader"]

HEADER_BYTES = 65536
MAX_HEADER_BYTES = 1_048_576
MAX_PNG_CHUNKS = 1000

ImageFormat = Literal["JPEG", "PNG", "BMP", "WEBP"]
MIME_TYPES: dict[ImageFormat, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "WEBP": "image/webp",
}
_OTHER_FORMATS = (
    (b"GIF8", "a GIF"),
    (b"II*\x00", "a TIFF"),
    (b"MM\x00*", "a TIFF"),
    (b"%PDF", "a PDF"),
    (b"\x00\x00\x01\x00", "an ICO"),
    (b"8BPS", "a Photoshop (PSD)"),
)


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    mime: str
    width: int
    height: int
    has_alpha: bool
    size_bytes: int


def probe_image(header: bytes, size: int) -> ImageInfo:
    """Probe from the first bytes of a file of ``size`` bytes (give `HEADER_BYTES`, or all of it)."""
    return _probe(_HeaderReader(header, size), size)


def probe_image_reader(reader: RangeReader, *, max_bytes: int = MAX_HEADER_BYTES) -> ImageInfo:
    """Probe through ranged reads of 64 KB blocks, reading no more than ``max_bytes``."""
    return _probe(BlockReader(reader, block_size=HEADER_BYTES, max_bytes=max_bytes), reader.size)


class _HeaderReader:
    """The first bytes of a file; reading past them (but inside the file) means more were needed."""

    def __init__(self, header: bytes, size: int) -> None:
        self._header = header
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if end > len(self._header):
            raise ProbeError(
                f"the image header goes past the first {len(self._header):,} bytes; probe it with a reader"
            )
        return self._header[offset:end]


def _probe(reader: RangeReader, size: int) -> ImageInfo:
    if size == 0:
        raise ProbeError("the file is empty (0 bytes)")
    magic = reader.read(0, 32)
    if magic.startswith(b"\x89PNG\r\n\x1a\n"):
        width, height, alpha = _png(reader)
        return _info("PNG", width, height, alpha, size)
    if magic.startswith(b"\xff\xd8\xff"):
        width, height = _jpeg(reader)
        return _info("JPEG", width, height, False, size)
    if magic.startswith(b"BM"):
        width, height, alpha = _bmp(reader)
        return _info("BMP", width, height, alpha, size)
    if magic[:4] == b"RIFF" and magic[8:12] == b"WEBP":
        width, height, alpha = _webp(magic)
        return _info("WEBP", width, height, alpha, size)
    raise ProbeError(f"{_other_format(magic)}; the API accepts JPEG, PNG, BMP or WEBP — convert it")


def _info(fmt: ImageFormat, width: int, height: int, alpha: bool, size: int) -> ImageInfo:
    if width <= 0 or height <= 0:
        raise ProbeError(f"the {fmt} header gives an impossible size {width}x{height}; re-export the image")
    return ImageInfo(fmt, MIME_TYPES[fmt], width, height, alpha, size)


def _other_format(magic: bytes) -> str:
    for prefix, name in _OTHER_FORMATS:
        if magic.startswith(prefix):
            return f"{name} image"
    if magic[4:8] == b"ftyp":
        brand = magic[8:12].decode("latin-1").strip()
        return f"an ISO media file (brand '{brand}': HEIC/AVIF or a video), not a supported image"
    return f"not a supported image (it starts with {magic[:8]!r})"


def _exact(reader: RangeReader, offset: int, length: int, what: str) -> bytes:
    data = reader.read(offset, length)
    if len(data) < length:
        raise ProbeError(f"the {what} is truncated at byte {offset + len(data):,}; upload the complete file")
    return data


def _png(reader: RangeReader) -> tuple[int, int, bool]:
    ihdr = _exact(reader, 8, 25, "PNG")
    if ihdr[4:8] != b"IHDR":
        raise ProbeError("a PNG without IHDR as its first chunk; re-export the image")
    width, height, _depth, color_type = struct.unpack(">IIBB", ihdr[8:18])
    if color_type in (4, 6):
        return width, height, True
    offset = 33
    for _ in range(MAX_PNG_CHUNKS):
        length, kind = struct.unpack(">I4s", _exact(reader, offset, 8, "PNG"))
        if kind == b"tRNS":
            return width, height, True
        if kind in (b"IDAT", b"IEND"):
            return width, height, False
        offset += 12 + length
    raise ProbeError(f"a PNG with more than {MAX_PNG_CHUNKS} chunks before its image data")


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(reader: RangeReader) -> tuple[int, int]:
    offset = 2
    while True:
        marker = _exact(reader, offset, 2, "JPEG")
        if marker[0] != 0xFF:
            raise ProbeError(f"a corrupt JPEG (no marker at byte {offset:,}); re-export the image")
        code = marker[1]
        if code == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length
            offset += 2
            continue
        if code in (0xD9, 0xDA):
            raise ProbeError("a JPEG without a frame header (SOF) before its image data; re-export it")
        (length,) = struct.unpack(">H", _exact(reader, offset + 2, 2, "JPEG"))
        if code in _SOF_MARKERS:
            _precision, height, width = struct.unpack(">BHH", _exact(reader, offset + 4, 5, "JPEG"))
            return width, height
        if length < 2:
            raise ProbeError(f"a corrupt JPEG segment at byte {offset:,}; re-export the image")
        offset += 2 + length


_BI_BITFIELDS, _BI_ALPHABITFIELDS = 3, 6


def _bmp(reader: RangeReader) -> tuple[int, int, bool]:
    (dib_size,) = struct.unpack("<I", _exact(reader, 14, 4, "BMP"))
    if dib_size == 12:  # BITMAPCOREHEADER (OS/2): unsigned 16-bit size, no alpha
        width, height = struct.unpack("<HH", _exact(reader, 18, 4, "BMP"))
        return width, height, False
    if dib_size < 40:
        raise ProbeError(f"a BMP with an unknown {dib_size}-byte info header; re-export it")
    info = _exact(reader, 14, 40, "BMP")
    width, height, _planes, bpp, compression = struct.unpack("<iiHHI", info[4:20])
    alpha = False
    masks = bpp in (16, 32) and compression in (_BI_BITFIELDS, _BI_ALPHABITFIELDS)
    # The alpha mask follows the R, G, B masks: inside V3+ headers, or after a 40-byte header.
    if masks and (dib_size >= 56 or compression == _BI_ALPHABITFIELDS):
        (mask,) = struct.unpack("<I", _exact(reader, 14 + 52, 4, "BMP"))
        alpha = mask != 0
    return width, abs(height), alpha  # a negative height means rows stored top-down


def _webp(head: bytes) -> tuple[int, int, bool]:
    if len(head) < 30:
        raise ProbeError("the WEBP is truncated in its header; upload the complete file")
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        return width, height, bool(head[20] & 0x10)
    if chunk == b"VP8L":
        if head[20] != 0x2F:
            raise ProbeError("a corrupt lossless WEBP (bad VP8L signature); re-export it")
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if chunk == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise ProbeError("a corrupt lossy WEBP (bad VP8 start code); re-export it")
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF, False
    raise ProbeError(f"a WEBP with an unknown first chunk {chunk!r}; re-export it")
