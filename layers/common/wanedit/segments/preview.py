"""Before/after contact sheets: a row of the source's frames over the edited video's at the same instants.

The instants are evenly spaced over the shorter of the two durations (an output cut by ``duration``
is compared with the part of the source it came from), starting at 0; each cell shows the first frame
at or after its instant, scaled to fit a square box with the video's display aspect (sample aspect
ratio and display rotation applied, as a player shows it).

Only the frames needed are decoded: per instant, seek to the keyframe before it and decode forward,
unless the decoder is already past that keyframe (then decoding on is cheaper than seeking back);
on the way, frames that no other frame refers to (most B-frames) are skipped. At most a frame or two
are alive at once, whatever the video's length; each is scaled down as soon as it is decoded.

Inputs are paths or seekable binary files: `wanedit.media.reader.RangeFile` turns a `RangeReader`
(ranged GETs on S3) into one, so a sheet of a 100 MB result reads only the GOPs its cells are in.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import av
from PIL import Image, ImageDraw, ImageFont

__all__ = ["PreviewError", "PreviewRow", "PreviewSheet", "make_preview"]

VideoInput = str | os.PathLike[str] | IO[bytes] | io.RawIOBase

DEFAULT_FRAMES = 6
CELL = 256  # each thumbnail fits a CELL x CELL box: 256x144 for 16:9, 144x256 for 9:16
JPEG_QUALITY = 85
MARGIN = 12
GAP = 8
LEGEND_WIDTH = 88
LEGEND_HEIGHT = 52  # name, size and duration
TIME_STRIP = 24
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
DIM_TEXT = (160, 160, 160)

# Pillow's transposes that turn a stored frame upright, by the clockwise degrees a player turns it.
_UPRIGHT = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}

Box = tuple[int, int, int, int]


class PreviewError(Exception):
    """A sheet could not be made (a video that cannot be opened or decoded); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PreviewRow:
    """One video's row: its display size and duration, the time of the frame in each cell, the cells,
    and how many frames were decoded to make them."""

    width: int
    height: int
    duration: float
    frame_times: tuple[float, ...]
    cells: tuple[Box, ...]  # (left, top, right, bottom) in the sheet, right and bottom exclusive
    decoded: int


@dataclass(frozen=True)
class PreviewSheet:
    """The JPEG and what is in it: ``times`` are the instants in seconds from the start, ``labels`` their
    captions on the sheet."""

    jpeg: bytes
    width: int
    height: int
    times: tuple[float, ...]
    labels: tuple[str, ...]
    source: PreviewRow
    edited: PreviewRow


def make_preview(
    source: VideoInput,
    edited: VideoInput,
    *,
    frames: int = DEFAULT_FRAMES,
    cell: int = CELL,
    quality: int = JPEG_QUALITY,
) -> PreviewSheet:
    """The contact sheet of ``source`` over ``edited`` at ``frames`` instants (see the module doc)."""
    if frames < 1:
        raise ValueError(f"a sheet needs at least one frame, not {frames}")
    with ExitStack() as stack:
        inputs = (source, "source"), (edited, "edited")
        videos = [stack.enter_context(_Video(file, role)) for file, role in inputs]
        span = min(video.duration for video in videos)
        times = [span * i / frames for i in range(frames)]
        rows = []
        for video in videos:
            rows.append(video.thumbnails(times, cell))
            video.close()  # its decoder's buffers go before the next video's are made
    return _compose(rows, [float(t) for t in times], cell, quality)


# ---------------------------------------------------------------------------------------------- decoding
@dataclass
class _Row:
    display: tuple[int, int]
    duration: float
    thumbnails: list[Image.Image]
    frame_times: list[float]
    decoded: int


class _Video:
    """One input: its timing, and its frames at given instants, decoded from the keyframes before them."""

    def __init__(self, file: VideoInput, role: str) -> None:
        self.role = role
        self._frames: Iterator[Any] | None = None
        self._fed_dts: int | None = None  # the last packet given to the decoder
        self._target = 0  # the pts wanted now: frames before it that nothing refers to are skipped
        self.decoded = 0
        try:
            self._ic: Any = av.open(os.fspath(file) if isinstance(file, str | os.PathLike) else file)
        except av.FFmpegError as error:
            raise PreviewError(f"the {role} video cannot be opened: {_words(error)}") from error
        try:
            self._stream = self._video_stream()
        except BaseException:
            self._ic.close()
            raise

    def __enter__(self) -> _Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._frames = None
        self._ic.close()

    def _video_stream(self) -> Any:
        if not self._ic.streams.video:
            raise PreviewError(f"the {self.role} file has no video stream")
        stream = self._ic.streams.video[0]
        self._tb = Fraction(stream.time_base)
        self._start = stream.start_time or 0
        if stream.duration:
            self.duration = stream.duration * self._tb
        elif self._ic.duration:
            self.duration = Fraction(self._ic.duration, av.time_base)
        else:
            raise PreviewError(f"the {self.role} video does not say how long it is")
        # The last frame starts no earlier than one frame before the end: an instant up to there has a
        # frame at or after it, so what comes before may be skipped; past it, the last frame is wanted.
        rate = stream.average_rate or stream.guessed_rate
        self._skippable_until = (
            self._start + math.floor((self.duration - 1 / Fraction(rate)) / self._tb) if rate else None
        )
        return stream

    def thumbnails(self, times: list[Fraction], cell: int) -> _Row:
        """A thumbnail per instant; the same one again while no later frame is due."""
        thumbnails: list[Image.Image] = []
        frame_times: list[float] = []
        display: tuple[int, int] | None = None
        shown: int | None = None  # pts of the newest thumbnail's frame
        try:
            for t in times:
                target = self._start + math.ceil(t / self._tb)
                frame = None if shown is not None and shown >= target else self._frame_at(target)
                if frame is not None:
                    display = display or self._display_size(frame)
                    thumbnails.append(_thumbnail(frame, _fit(display, cell)))
                    shown = frame.pts
                    del frame
                elif shown is None:
                    raise PreviewError(f"the {self.role} video has no frame to show")
                else:
                    thumbnails.append(thumbnails[-1])
                frame_times.append(float(self._at(shown)))
        except av.FFmpegError as error:
            at = _seconds(times[len(thumbnails)])
            raise PreviewError(f"the {self.role} video cannot be decoded at {at}: {_words(error)}") from error
        assert display is not None
        return _Row(display, float(self.duration), thumbnails, frame_times, self.decoded)

    def _frame_at(self, target: int) -> Any:
        """The first frame shown at or after ``target`` (pts); else the last frame of the video, or None
        when that is the frame returned before."""
        if not self._can_decode_on(target):
            self._seek(target)
        skippable = self._skippable_until is not None and target <= self._skippable_until
        self._target = target if skippable else self._start
        assert self._frames is not None
        previous = None
        for frame in self._frames:
            if frame.pts >= target:
                return frame
            previous = frame
        self._frames = None  # the end: a later instant seeks again
        return previous

    def _can_decode_on(self, target: int) -> bool:
        """Whether the decoder has already passed the keyframe a seek to ``target`` would land on."""
        if self._frames is None or self._fed_dts is None:
            return False
        index = self._stream.index_entries
        found = index.search_timestamp(target, backward=True)
        return found >= 0 and self._fed_dts >= index[found].timestamp

    def _seek(self, target: int) -> None:
        # FFmpeg's MP4/MOV demuxer seeks by presentation time (it applies the B-frame delay): the
        # keyframe it lands on is shown at or before ``target``.
        self._ic.seek(target, stream=self._stream, backward=True)
        self._fed_dts = None
        self._frames = self._decode()

    def _decode(self) -> Iterator[Any]:
        context = self._stream.codec_context
        for packet in self._ic.demux(self._stream):
            if packet.dts is not None:
                self._fed_dts = packet.dts
            # A frame shown before the one wanted that no other frame refers to (most B-frames) is
            # not needed: the decoder only parses its header.
            wanted = packet.pts is None or packet.pts >= self._target
            context.skip_frame = "DEFAULT" if wanted else "NONREF"
            for frame in packet.decode():
                if frame.pts is not None:
                    self.decoded += 1
                    yield frame

    def _display_size(self, frame: Any) -> tuple[int, int]:
        """Width and height as a player shows the frame: sample aspect ratio, then rotation."""
        sar = self._stream.sample_aspect_ratio or self._stream.codec_context.sample_aspect_ratio
        width = round(frame.width * sar) if sar and sar > 0 else frame.width
        return (frame.height, width) if _clockwise(frame) in (90, 270) else (width, frame.height)

    def _at(self, pts: int) -> Fraction:
        return (pts - self._start) * self._tb


def _clockwise(frame: Any) -> int:
    """How far a player turns the frame clockwise (PyAV gives the display matrix's counterclockwise
    angle), to the nearest quarter turn."""
    return round(-frame.rotation / 90) % 4 * 90


def _fit(display: tuple[int, int], cell: int) -> tuple[int, int]:
    width, height = display
    scale = cell / max(width, height)
    return max(2, round(width * scale)), max(2, round(height * scale))


def _thumbnail(frame: Any, size: tuple[int, int]) -> Image.Image:
    """The frame scaled to ``size`` (display orientation) and turned upright: scaled first, so the full
    size RGB picture is never made."""
    turn = _clockwise(frame)
    width, height = (size[1], size[0]) if turn in (90, 270) else size
    picture: Image.Image = frame.to_image(width=width, height=height, interpolation="AREA")
    return picture.transpose(_UPRIGHT[turn]) if turn else picture


def _words(error: av.FFmpegError) -> str:
    return error.strerror or str(error)


# ------------------------------------------------------------------------------------------- composition
def _seconds(t: Fraction | float, *, minutes: bool = False) -> str:
    tenths = round(float(t) * 10)
    if minutes:
        whole, rest = divmod(tenths, 600)
        return f"{whole}:{rest / 10:04.1f}"
    return f"{tenths / 10:.1f} s"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow built without FreeType: its small bitmap font
        return ImageFont.load_default()


def _compose(rows: list[_Row], times: list[float], cell: int, quality: int) -> PreviewSheet:
    """Legend column, the source row, a strip of time labels, the edited row; JPEG-encoded."""
    sizes = [_fit(row.display, cell) for row in rows]
    column = max(size[0] for size in sizes)
    heights = [max(size[1], LEGEND_HEIGHT) for size in sizes]  # a 8:1 row still has room for its legend
    count = len(times)
    width = MARGIN + LEGEND_WIDTH + count * column + (count - 1) * GAP + MARGIN
    tops = [MARGIN, MARGIN + heights[0] + TIME_STRIP]
    height = tops[1] + heights[1] + MARGIN
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    label, small = _font(15), _font(12)
    minutes = max(row.duration for row in rows) >= 60
    labels = tuple(_seconds(t, minutes=minutes) for t in times)

    def column_left(i: int) -> int:
        return MARGIN + LEGEND_WIDTH + i * (column + GAP)

    def centred(text: str, font: Any, x: int, y: int, fill: tuple[int, int, int]) -> None:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        draw.text((x - (right - left) // 2 - left, y - (bottom - top) // 2 - top), text, font=font, fill=fill)

    placed: list[tuple[Box, ...]] = []
    for name, row, (thumb_w, thumb_h), top, row_h in zip(
        ("source", "edited"), rows, sizes, tops, heights, strict=True
    ):
        cells = []
        for i, thumbnail in enumerate(row.thumbnails):
            left, cell_top = column_left(i) + (column - thumb_w) // 2, top + (row_h - thumb_h) // 2
            sheet.paste(thumbnail, (left, cell_top))
            cells.append((left, cell_top, left + thumb_w, cell_top + thumb_h))
        placed.append(tuple(cells))
        middle = top + row_h // 2
        draw.text((MARGIN, middle - 25), name, font=label, fill=TEXT)
        draw.text((MARGIN, middle - 5), f"{row.display[0]}x{row.display[1]}", font=small, fill=DIM_TEXT)
        draw.text((MARGIN, middle + 10), _seconds(row.duration, minutes=minutes), font=small, fill=DIM_TEXT)
    for i, text in enumerate(labels):
        centred(text, label, column_left(i) + column // 2, tops[0] + heights[0] + TIME_STRIP // 2, TEXT)
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=quality, optimize=True)
    return PreviewSheet(
        jpeg=out.getvalue(),
        width=width,
        height=height,
        times=tuple(times),
        labels=labels,
        source=_row(rows[0], placed[0]),
        edited=_row(rows[1], placed[1]),
    )


def _row(row: _Row, cells: tuple[Box, ...]) -> PreviewRow:
    return PreviewRow(
        row.display[0], row.display[1], row.duration, tuple(row.frame_times), cells, row.decoded
    )


# ------------------------------------------------------------------------------------------ ranged input
