"""probe_image / probe_image_reader on real files written by Pillow."""

from __future__ import annotations

import struct

import pytest

from tests.unit import mediafiles as mf
from wanedit.media import (
    BytesRangeReader,
    CountingReader,
    ImageInfo,
    ProbeError,
    probe_image,
    probe_image_reader,
)
from wanedit.media.imageprobe import HEADER_BYTES


def probe(data: bytes) -> ImageInfo:
    return probe_image(data[:HEADER_BYTES], len(data))


@pytest.mark.parametrize(
    "fmt, mode, save, expected",
    [
        pytest.param("PNG", "RGB", {}, ("PNG", "image/png", False), id="png-rgb"),
        pytest.param("PNG", "L", {}, ("PNG", "image/png", False), id="png-gray"),
        pytest.param("PNG", "RGBA", {}, ("PNG", "image/png", True), id="png-rgba"),
        pytest.param("PNG", "LA", {}, ("PNG", "image/png", True), id="png-gray-alpha"),
        pytest.param("PNG", "P", {}, ("PNG", "image/png", True), id="png-palette-trns"),
        pytest.param("JPEG", "RGB", {}, ("JPEG", "image/jpeg", False), id="jpeg"),
        pytest.param(
            "JPEG", "RGB", {"progressive": True}, ("JPEG", "image/jpeg", False), id="jpeg-progressive"
        ),
        pytest.param("BMP", "RGB", {}, ("BMP", "image/bmp", False), id="bmp-24"),
        pytest.param("BMP", "RGBA", {}, ("BMP", "image/bmp", None), id="bmp-32"),
        pytest.param("WEBP", "RGB", {}, ("WEBP", "image/webp", False), id="webp-lossy"),
        pytest.param("WEBP", "RGB", {"lossless": True}, ("WEBP", "image/webp", False), id="webp-lossless"),
        pytest.param(
            "WEBP", "RGBA", {"lossless": True}, ("WEBP", "image/webp", True), id="webp-lossless-alpha"
        ),
        pytest.param("WEBP", "RGBA", {}, ("WEBP", "image/webp", True), id="webp-lossy-alpha"),
    ],
)
def test_formats(
    fmt: str, mode: str, save: dict[str, object], expected: tuple[str, str, bool | None]
) -> None:
    data = mf.image(fmt, mode, 321, 243, **save)
    info = probe(data)
    assert (info.format, info.mime, info.width, info.height, info.size_bytes) == (
        expected[0],
        expected[1],
        321,
        243,
        len(data),
    )
    if expected[2] is not None:
        assert info.has_alpha is expected[2]


def test_bmp_32_bit_alpha_follows_its_alpha_mask() -> None:
    data = mf.image("BMP", "RGBA")
    dib_size, bpp, compression = struct.unpack_from("<I", data, 14)[0], *struct.unpack_from("<HI", data, 28)
    declares_alpha = bpp == 32 and compression in (3, 6) and (dib_size >= 56 or compression == 6)
    assert probe(data).has_alpha is (declares_alpha and struct.unpack_from("<I", data, 66)[0] != 0)


def _bmp_v5_with_alpha(width: int, height: int, alpha_mask: int) -> bytes:
    header = struct.pack("<IiiHHIIiiII", 124, width, height, 1, 32, 3, 0, 2835, 2835, 0, 0)
    masks = struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, alpha_mask)
    dib = header + masks + bytes(124 - len(header) - len(masks))
    pixels = bytes(width * abs(height) * 4)
    return b"BM" + struct.pack("<IHHI", 14 + len(dib) + len(pixels), 0, 0, 14 + len(dib)) + dib + pixels


@pytest.mark.parametrize("mask, alpha", [(0xFF000000, True), (0, False)], ids=["alpha-mask", "no-alpha-mask"])
def test_bmp_v5_alpha_mask(mask: int, alpha: bool) -> None:
    assert probe(_bmp_v5_with_alpha(300, 250, mask)).has_alpha is alpha


def test_bmp_top_down_negative_height() -> None:
    info = probe(_bmp_v5_with_alpha(300, -250, 0))
    assert (info.width, info.height) == (300, 250)


def test_jpeg_with_sof_after_64_kb_needs_the_reader() -> None:
    data = mf.image("JPEG", "RGB", 320, 240, icc_profile=bytes(200_000))
    with pytest.raises(ProbeError, match="goes past the first 65,536 bytes"):
        probe(data)
    reader = CountingReader(BytesRangeReader(data))
    info = probe_image_reader(reader)
    assert (info.format, info.width, info.height) == ("JPEG", 320, 240)
    assert reader.bytes_read <= 4 * HEADER_BYTES


def test_reader_variant_reads_one_block_for_ordinary_files() -> None:
    data = mf.image("PNG", "RGB", 4000, 3000)
    reader = CountingReader(BytesRangeReader(data, size=25_000_000))
    info = probe_image_reader(reader)
    assert (info.width, info.height, info.size_bytes, reader.calls) == (4000, 3000, 25_000_000, 1)


def test_reader_variant_is_capped() -> None:
    data = mf.image("JPEG", "RGB", 320, 240, icc_profile=bytes(2_000_000))
    with pytest.raises(ProbeError, match="first 1,048,576 bytes"):
        probe_image_reader(BytesRangeReader(data))


def test_png_alpha_found_after_a_large_ancillary_chunk() -> None:
    data = mf.image("PNG", "P", 300, 300)
    chunk = struct.pack(">I4s", 300_000, b"zTXt") + bytes(300_000) + b"\0\0\0\0"
    padded = data[:33] + chunk + data[33:]  # a big chunk between IHDR and tRNS
    assert probe_image_reader(BytesRangeReader(padded)).has_alpha is True


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(b"", "empty", id="0-bytes"),
        pytest.param(b"GIF89a" + bytes(30), "a GIF image", id="gif"),
        pytest.param(b"II*\x00" + bytes(30), "a TIFF image", id="tiff"),
        pytest.param(b"\x00\x00\x00\x18ftypheic" + bytes(30), "HEIC/AVIF", id="heic"),
        pytest.param(b"just some text, not an image at all", "not a supported image", id="text"),
        pytest.param(mf.image("PNG")[:20], "truncated", id="png-truncated"),
        pytest.param(mf.image("JPEG")[:100], "truncated", id="jpeg-truncated"),
        pytest.param(b"\xff\xd8\xff\xda\x00\x08" + bytes(30), "without a frame header", id="jpeg-no-sof"),
        pytest.param(b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(20), "bad VP8 start code", id="webp-corrupt"),
    ],
)
def test_not_a_usable_image(data: bytes, message: str) -> None:
    with pytest.raises(ProbeError, match=message):
        probe(data)


def test_extension_does_not_matter_magic_bytes_do() -> None:
    assert probe(mf.image("WEBP")).format == "WEBP"  # whatever the key's extension says
