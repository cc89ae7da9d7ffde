"""What an MP4/MOV file is, from its boxes alone: container, duration, size, tracks, codec.

Pure Python, because the Lambda layer carries no FFmpeg: the API's limits (2-10 s, 240-4096 px,
1:8..8:1, 100 MB) need only the ``moov`` box. The top level is walked by box headers, skipping
``mdat`` by its size, through a 64 KB look-ahead window: a 100 MB file costs 2-4 reads and about
``moov`` + 200 KB, whether ``moov`` comes first (faststart) or last.

Numbers: duration prefers the first video track's ``mdhd`` (what is edited), else ``mvhd``; a
fragmented file (``moof`` boxes) needs ``mvex/mehd``, as its ``moov`` describes only the first part.
Width and height are as displayed: ``tkhd``'s 16.16 size with its
matrix applied (90/270 degrees swap them), else the sample entry's coded size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from wanedit.media.reader import ProbeError, RangeReader

__all__ = ["ProbeError", "VideoInfo", "probe_video"]

MAX_MOOV_BYTES = 16 * 1024 * 1024
MAX_TOP_LEVEL_BOXES = 4096
_FIRST_BOXES = {b"ftyp", b"moov", b"wide", b"free", b"skip", b"mdat", b"pnot", b"junk", b"styp"}


@dataclass(frozen=True)
class VideoInfo:
    container: Literal["mp4", "mov"]
    brand: str | None
    duration_s: float
    width: int
    height: int
    has_video: bool
    has_audio: bool
    video_codec: str | None
    size_bytes: int


@dataclass
class _Track:
    handler: bytes = b""
    width: float = 0.0
    height: float = 0.0
    rotated: bool = False
    duration_s: float = 0.0
    codec: str | None = None
    coded_width: int = 0
    coded_height: int = 0


def probe_video(reader: RangeReader) -> VideoInfo:
    """Probe an MP4/MOV through ranged reads; `ProbeError` if it is not a complete, usable movie."""
    size = reader.size
    if size == 0:
        raise ProbeError("the file is empty (0 bytes)")
    window = _Window(reader)
    ftyp = moov = None
    has_mdat = fragmented = False
    for offset, box_size, kind, header_len in _top_level_boxes(window, size):
        if kind == b"ftyp":
            ftyp = window.read(offset + header_len, min(box_size - header_len, 4096))
        elif kind == b"moov":
            moov = _read_moov(window, offset, box_size, header_len)
        elif kind == b"mdat":
            has_mdat = True
        elif kind == b"moof":
            fragmented = True
            if moov is not None:
                break  # fragments follow to the end; walking them all would cost a read each
    if moov is None:
        raise ProbeError("no moov box: not a playable MP4/MOV (or an upload that was cut short)")
    if not has_mdat and not fragmented:
        raise ProbeError("no mdat box: the file holds no media data")
    return _describe(ftyp, moov, size, fragmented)


def _top_level_boxes(window: _Window, size: int) -> Iterator[tuple[int, int, bytes, int]]:
    """(offset, size, type, header length) of each top-level box, checked to be whole and plausible."""
    offset = count = 0
    while offset < size:
        count += 1
        if count > MAX_TOP_LEVEL_BOXES:
            raise ProbeError(f"more than {MAX_TOP_LEVEL_BOXES} top-level boxes; re-export the video as MP4")
        header = window.read(offset, 16)
        box_size, kind, header_len = _box_header(header, offset, size - offset)
        if count == 1 and kind not in _FIRST_BOXES:
            raise ProbeError(f"not an MP4 or MOV file (it starts with {header[:8]!r})")
        if offset + box_size > size:
            raise ProbeError(
                f"the file is truncated: box '{_name(kind)}' at byte {offset:,} needs {box_size:,} bytes "
                f"but the file ends at {size:,}; upload the complete file"
            )
        yield offset, box_size, kind, header_len
        offset += box_size


def _read_moov(window: _Window, offset: int, box_size: int, header_len: int) -> bytes:
    if box_size > MAX_MOOV_BYTES:
        raise ProbeError(f"the moov box is {box_size:,} bytes (more than 16 MB); re-export the video")
    moov = window.read(offset + header_len, box_size - header_len)
    if len(moov) != box_size - header_len:
        raise ProbeError("the file ended inside its moov box; upload the complete file")
    return moov


class _Window:
    """Reads through a 64 KB look-ahead: the small boxes at a file's start (and a small moov) cost one GET."""

    SIZE = 65536

    def __init__(self, reader: RangeReader) -> None:
        self._reader = reader
        self._start = 0
        self._data = b""

    def read(self, offset: int, length: int) -> bytes:
        start = offset - self._start
        if start >= 0 and start + length <= len(self._data):
            return self._data[start : start + length]
        if length > self.SIZE:
            return self._reader.read(offset, length)
        self._start, self._data = offset, self._reader.read(offset, self.SIZE)
        return self._data[:length]


def _box_header(header: bytes, offset: int, remaining: int) -> tuple[int, bytes, int]:
    """(box size, type, header length) of the box starting ``header``; size 0 means to the end."""
    if len(header) < 8:
        raise ProbeError(f"the file is truncated: {len(header)} stray bytes at byte {offset:,}")
    box_size, kind = struct.unpack(">I4s", header[:8])
    header_len = 8
    if box_size == 1:
        if len(header) < 16:
            raise ProbeError(f"the file is truncated in a box header at byte {offset:,}")
        box_size, header_len = struct.unpack(">Q", header[8:16])[0], 16
    elif box_size == 0:
        box_size = remaining
    if box_size < header_len:
        raise ProbeError(f"corrupt box '{_name(kind)}' at byte {offset:,} (size {box_size})")
    return box_size, kind, header_len


def _name(kind: bytes) -> str:
    return kind.decode("latin-1")


def _children(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``buf[start:end]``; stops at a broken box."""
    end = len(buf) if end is None else end
    while start + 8 <= end:
        box_size, kind = struct.unpack_from(">I4s", buf, start)
        header_len = 8
        if box_size == 1 and start + 16 <= end:
            box_size, header_len = struct.unpack_from(">Q", buf, start + 8)[0], 16
        elif box_size == 0:
            box_size = end - start
        if box_size < header_len or start + box_size > end:
            raise ProbeError(f"corrupt '{_name(kind)}' box inside moov; re-export the video")
        yield kind, start + header_len, start + box_size
        start += box_size


def _find(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for child, lo, hi in _children(buf, start, end):
        if child == kind:
            return lo, hi
    return None


def _describe(ftyp: bytes | None, moov: bytes, size: int, fragmented: bool) -> VideoInfo:
    brand = None
    container: Literal["mp4", "mov"] = "mov"
    if ftyp is not None and len(ftyp) >= 4:
        brand = _name(ftyp[:4])
        container = "mov" if brand == "qt  " else "mp4"
    movie_s = fragments_s = 0.0
    tracks: list[_Track] = []
    try:
        for kind, lo, hi in _children(moov):
            if kind == b"mvhd":
                movie_s = _duration(moov, lo, hi)
            elif kind == b"trak":
                tracks.append(_track(moov, lo, hi))
            elif kind == b"mvex" and (mehd := _find(moov, lo, hi, b"mehd")):
                fragments_s = _mehd_seconds(moov, mehd[0], timescale=_mvhd_timescale(moov))
    except struct.error:
        raise ProbeError("a box inside moov is cut short; re-export the video") from None
    video = next((t for t in tracks if t.handler == b"vide"), None)
    if fragmented:  # moov describes only what precedes the first moof; mehd is the whole
        duration = fragments_s
        if duration <= 0:
            raise ProbeError(
                "a fragmented MP4 without a total duration (no mvex/mehd box); "
                "re-export it as a regular (non-fragmented) MP4"
            )
    else:
        duration = video.duration_s if video and video.duration_s > 0 else movie_s
        if duration <= 0:
            raise ProbeError("the movie declares no duration; re-export the video")
    width, height = _display_size(video) if video else (0, 0)
    return VideoInfo(
        container=container,
        brand=brand,
        duration_s=duration,
        width=width,
        height=height,
        has_video=video is not None,
        has_audio=any(t.handler == b"soun" for t in tracks),
        video_codec=video.codec if video else None,
        size_bytes=size,
    )


def _display_size(track: _Track) -> tuple[int, int]:
    width, height = round(track.width), round(track.height)
    if not (width and height):
        width, height = track.coded_width, track.coded_height
    return (height, width) if track.rotated else (width, height)


def _duration(buf: bytes, lo: int, hi: int) -> float:
    """Seconds from an ``mvhd`` or ``mdhd`` payload (v0: 32-bit times, v1: 64-bit)."""
    if buf[lo] == 1:
        timescale, duration = struct.unpack_from(">IQ", buf, lo + 20)
        unknown = duration == 0xFFFFFFFFFFFFFFFF
    else:
        timescale, duration = struct.unpack_from(">II", buf, lo + 12)
        unknown = duration == 0xFFFFFFFF
    return 0.0 if unknown or timescale == 0 else duration / timescale


def _mvhd_timescale(moov: bytes) -> int:
    found = _find(moov, 0, len(moov), b"mvhd")
    if found is None:
        return 0
    lo = found[0]
    return int(struct.unpack_from(">I", moov, lo + (20 if moov[lo] == 1 else 12))[0])


def _mehd_seconds(buf: bytes, lo: int, *, timescale: int) -> float:
    fmt = ">Q" if buf[lo] == 1 else ">I"
    duration = struct.unpack_from(fmt, buf, lo + 4)[0]
    return duration / timescale if timescale else 0.0


def _track(buf: bytes, lo: int, hi: int) -> _Track:
    track = _Track()
    for kind, clo, chi in _children(buf, lo, hi):
        if kind == b"tkhd":
            _tkhd(buf, clo, track)
        elif kind == b"mdia":
            for mkind, mlo, mhi in _children(buf, clo, chi):
                if mkind == b"mdhd":
                    track.duration_s = _duration(buf, mlo, mhi)
                elif mkind == b"hdlr":
                    track.handler = buf[mlo + 8 : mlo + 12]
                elif mkind == b"minf":
                    _stsd(buf, mlo, mhi, track)
    return track


def _tkhd(buf: bytes, lo: int, track: _Track) -> None:
    # After version/flags and times: reserved(8) layer(2) group(2) volume(2) reserved(2) matrix(36) w h
    matrix_at = lo + (4 + 32 if buf[lo] == 1 else 4 + 20) + 16
    a, b = struct.unpack_from(">ii", buf, matrix_at)
    width, height = struct.unpack_from(">II", buf, matrix_at + 36)
    track.width, track.height = width / 65536, height / 65536
    track.rotated = abs(b) > abs(a)


def _stsd(buf: bytes, lo: int, hi: int, track: _Track) -> None:
    stbl = _find(buf, lo, hi, b"stbl")
    stsd = _find(buf, *stbl, b"stsd") if stbl else None
    if stsd is None:
        return
    entries = list(_children(buf, stsd[0] + 8, stsd[1]))
    if not entries:
        return
    kind, elo, ehi = entries[0]
    track.codec = _name(kind)
    if ehi - elo >= 28:
        # VisualSampleEntry: reserved(6) data_reference_index(2) pre_defined/reserved(16) width height
        track.coded_width, track.coded_height = struct.unpack_from(">HH", buf, elo + 24)
