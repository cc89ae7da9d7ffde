"""Real media for the probe and validation tests, made with PyAV and Pillow (small, cached per session).

Exact boundary sizes that encoders cannot make (odd widths, 4097 px) come from real files whose
``tkhd`` size is patched; big files (100 MB) are real files padded with a sparse ``free`` box.
"""

from __future__ import annotations

import io
import struct
import tempfile
from functools import cache
from pathlib import Path

import av
from PIL import Image


@cache
def video(
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    frames: int = 30,
    fmt: str = "mp4",
    faststart: bool = False,
    movflags: str | None = None,
    audio: bool = False,
) -> bytes:
    """H.264 yuv420p, ``frames / fps`` seconds; moov last unless ``faststart``; AAC track if ``audio``."""
    flags = movflags or ("+faststart" if faststart else None)
    with tempfile.TemporaryDirectory() as tmp:  # faststart rewrites the file: it needs a real path
        path = Path(tmp) / f"clip.{fmt}"
        _encode(path, width, height, fps, frames, fmt, flags, audio)
        return path.read_bytes()


def _encode(
    path: Path, width: int, height: int, fps: int, frames: int, fmt: str, flags: str | None, audio: bool
) -> None:
    with av.open(str(path), "w", format=fmt, options={"movflags": flags} if flags else {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 7) % 256]) * plane.buffer_size)
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if sound is not None:
            _encode_silence(container, sound, seconds=frames / fps)


@cache
def audio_only(seconds: float = 3.0) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        _encode_silence(container, container.add_stream("aac", rate=16000, layout="mono"), seconds=seconds)
    return out.getvalue()


def _encode_silence(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    for i in range(int(seconds * 16000 / 1024)):
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        frame.planes[0].update(bytes(4096))
        frame.sample_rate, frame.pts = 16000, i * 1024
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def find_box(data: bytes, kind: bytes) -> int:
    """Offset of the first box of ``kind`` (its size field), by search: fine for our own small files."""
    at = data.find(kind)
    assert at >= 4, kind
    return at - 4


def patch_tkhd(data: bytes, *, width: int | None = None, height: int | None = None, rotate: int = 0) -> bytes:
    """Rewrite the (first) tkhd's display size and/or rotation matrix, as other tools would write them."""
    out = bytearray(data)
    tkhd = find_box(data, b"tkhd")
    version = out[tkhd + 8]
    matrix = tkhd + 8 + (36 if version == 1 else 24) + 16
    if rotate:
        one, zero, minus = 0x10000, 0, -0x10000
        matrices = {
            90: (zero, one, minus, zero),
            180: (minus, zero, zero, minus),
            270: (zero, minus, one, zero),
        }
        a, b, c, d = matrices[rotate]
        struct.pack_into(">iiiii", out, matrix, a, b, 0, c, d)
    old_w, old_h = struct.unpack_from(">II", out, matrix + 36)
    new_w = old_w if width is None else width << 16
    new_h = old_h if height is None else height << 16
    struct.pack_into(">II", out, matrix + 36, new_w, new_h)
    return bytes(out)


def insert_mehd(data: bytes, duration: int) -> bytes:
    """Add ``mvex/mehd`` (fragment duration, in mvhd's timescale) to a fragmented file with empty moov."""
    mehd = struct.pack(">I4sI I", 16, b"mehd", 0, duration)
    moov, mvex = find_box(data, b"moov"), find_box(data, b"mvex")
    out = bytearray(data[: mvex + 8] + mehd + data[mvex + 8 :])
    for box in (moov, mvex):
        struct.pack_into(">I", out, box, struct.unpack_from(">I", out, box)[0] + len(mehd))
    return bytes(out)


def padded_file(path: Path, data: bytes, total: int) -> Path:
    """``data``, then a sparse ``free`` box up to exactly ``total`` bytes (no disk blocks written)."""
    pad = total - len(data)
    assert 8 <= pad < 2**32
    with open(path, "wb") as f:
        f.write(data + struct.pack(">I4s", pad, b"free"))
        f.truncate(total)
    return path


def sparse_moov_last(path: Path, data: bytes, total: int) -> Path:
    """A moov-last file of ``total`` bytes: ftyp + mdat, then a sparse ``free`` box, then moov."""
    moov = find_box(data, b"moov")
    head, tail = data[:moov], data[moov:]
    pad = total - len(head) - len(tail)
    with open(path, "wb") as f:
        f.write(head + struct.pack(">I4s", pad, b"free"))
        f.seek(len(head) + pad)
        f.write(tail)
    return path


@cache
def image(fmt: str, mode: str = "RGB", width: int = 320, height: int = 240, **save: object) -> bytes:
    """A real image file; ``save`` goes to Pillow (``lossless=True`` for WEBP, ``icc_profile=...``)."""
    out = io.BytesIO()
    picture = Image.new(mode, (width, height), _color(mode))
    if mode == "P":
        picture.info["transparency"] = 0
    picture.save(out, fmt, **save)
    return out.getvalue()


COLORS: dict[str, int | tuple[int, ...]] = {
    "RGB": (200, 80, 40),
    "RGBA": (200, 80, 40, 128),
    "LA": (90, 128),
    "L": 90,
    "P": 1,
}


def _color(mode: str) -> int | tuple[int, ...]:
    return COLORS[mode]
