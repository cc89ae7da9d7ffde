"""Stitch edited segments back into one H.264 MP4, with the clip's audio or the model's.

Video: segment i starts where the previous edited segments end (the sum of their durations), so the
result has no gap, overlap, repeated or dropped frame at a boundary. The packets are copied when every
segment is H.264 with the same parameters (extradata, size, pixel format, frame rate, time base) and
their decode timestamps stay increasing across boundaries; otherwise every frame is decoded and
re-encoded with libx264 at the first segment's size.

Audio: ``origin`` copies the original segments' packets (the source's own audio), each segment's at
its start in the output. ``auto`` does the same unless the model changed some segment's sound
(`audio_changed`); then one AAC track is encoded in which every segment has its edited audio if
changed, else its original audio, trimmed or padded with silence to the segment's video duration.

Everything streams packet by packet or frame by frame: video and audio are interleaved by time as
they are written, so memory does not grow with the result.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av

from wanedit.segments.audio import (
    AudioChoice,
    Packets,
    audio_format,
    copy_audio,
    encode_audio,
    has_audio,
    same_audio,
    to_stream,
)
from wanedit.segments.media import open_input
from wanedit.segments.soundcheck import audio_changed
from wanedit.segments.split import X264_OPTIONS, mp4_options

__all__ = ["StitchPart", "StitchResult", "stitch"]


@dataclass(frozen=True)
class StitchPart:
    """One segment: as the API returned it (``edited``) and as `split_clip` wrote it (``original``)."""

    edited: Path
    original: Path


@dataclass(frozen=True)
class StitchResult:
    path: Path
    width: int
    height: int
    frames: int
    duration: float
    video_copied: bool
    audio: AudioChoice
    segment_frames: list[int]
    audio_from: list[AudioChoice]


@dataclass(frozen=True)
class _Video:
    """An edited segment's video stream, from a demux of its packets (no decode)."""

    codec: str
    extradata: bytes
    width: int
    height: int
    pix_fmt: str | None
    rate: Fraction | None
    time_base: Fraction
    start: int  # first pts
    end: int  # end of the last frame
    first_dts: int
    last_dts: int
    frames: int

    @property
    def seconds(self) -> Fraction:
        return (self.end - self.start) * self.time_base


def stitch(
    parts: Sequence[StitchPart], out: Path, *, audio_setting: Literal["auto", "origin"]
) -> StitchResult:
    """Write ``out`` from the edited segments in order (see the module doc)."""
    if not parts:
        raise ValueError("nothing to stitch")
    videos = [_scan_video(part.edited) for part in parts]
    starts = [Fraction(0)]
    for video in videos:
        starts.append(starts[-1] + video.seconds)
    audio, audio_from = _choose_audio(parts, audio_setting)
    copy_video = _can_copy_video(videos)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        vstream, counted = _write(out, parts, videos, starts, audio, audio_from, copy_video)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    segment_frames = [v.frames for v in videos] if copy_video else counted
    return StitchResult(
        path=out,
        width=vstream.width,
        height=vstream.height,
        frames=sum(segment_frames),
        duration=float(starts[-1]),
        video_copied=copy_video,
        audio=audio,
        segment_frames=segment_frames,
        audio_from=audio_from,
    )


def _choose_audio(
    parts: Sequence[StitchPart], audio_setting: Literal["auto", "origin"]
) -> tuple[AudioChoice, list[AudioChoice]]:
    """The track's source overall, and each segment's: the model's sound where it made new sound."""
    originals = [has_audio(part.original) for part in parts]
    changed = [audio_setting == "auto" and audio_changed(p.edited, p.original) for p in parts]
    if any(changed):
        return "edited", [
            "edited" if c else ("original" if o else "none") for c, o in zip(changed, originals, strict=True)
        ]
    return ("original" if any(originals) else "none"), ["original" if o else "none" for o in originals]


def _write(
    out: Path,
    parts: Sequence[StitchPart],
    videos: list[_Video],
    starts: list[Fraction],
    audio: AudioChoice,
    audio_from: list[AudioChoice],
    copy_video: bool,
) -> tuple[Any, list[int]]:
    """Mux video and audio packets interleaved by time; (the video stream, frames per segment if encoded)."""
    sources = [p.edited if a == "edited" else p.original for p, a in zip(parts, audio_from, strict=True)]
    rate, layout = audio_format(sources, audio_from)
    with ExitStack() as stack:
        oc = stack.enter_context(av.open(str(out), "w", format="mp4", options=mp4_options(rate)))
        counted: list[int] = []
        if copy_video:
            vstream, vpackets = _copy_video(oc, parts, videos, starts)
        else:
            vstream, vpackets = _encode_video(oc, parts, videos, starts, counted)
        streams: list[Packets] = [vpackets]
        if audio == "original" and same_audio([p.original for p in parts]):
            streams.append(copy_audio(oc, sources, starts))
        elif audio != "none":
            streams.append(encode_audio(oc, sources, audio_from, starts, rate or 48000, layout))
        for stream in streams:
            stack.callback(stream.close)
        for packet in heapq.merge(*streams, key=_time):
            oc.mux(packet)
    return vstream, counted


def _time(packet: Any) -> Fraction:
    """Where a packet goes in the interleaved output: its decode time, in seconds."""
    return Fraction((packet.dts if packet.dts is not None else packet.pts) * packet.time_base)


# ----------------------------------------------------------------------------------------------- video
def _scan_video(path: Path) -> _Video:
    with open_input(path) as ic:
        if not ic.streams.video:
            raise ValueError(f"{path.name} has no video stream")
        vs = ic.streams.video[0]
        ctx = vs.codec_context
        pts: list[int] = []
        dts: list[int] = []
        end = None
        for packet in ic.demux(vs):
            if packet.size == 0 or packet.pts is None:
                continue
            pts.append(packet.pts)
            dts.append(packet.dts if packet.dts is not None else packet.pts)
            end = max(end or packet.pts, packet.pts + (packet.duration or 0))
        if not pts:
            raise ValueError(f"{path.name} has no video frames")
        assert end is not None and vs.time_base is not None
        if end == max(pts):  # no packet durations: the last frame lasts like the one before
            ordered = sorted(pts)
            end += ordered[-1] - ordered[-2] if len(ordered) > 1 else 1
        return _Video(
            codec=ctx.name,
            extradata=bytes(ctx.extradata or b""),
            width=ctx.width,
            height=ctx.height,
            pix_fmt=ctx.pix_fmt,
            rate=vs.average_rate or vs.guessed_rate,
            time_base=vs.time_base,
            start=min(pts),
            end=end,
            first_dts=dts[0],
            last_dts=dts[-1],
            frames=len(pts),
        )


def _can_copy_video(videos: list[_Video]) -> bool:
    first = videos[0]
    same = ("h264", first.extradata, first.width, first.height, first.pix_fmt, first.rate, first.time_base)
    if any((v.codec, v.extradata, v.width, v.height, v.pix_fmt, v.rate, v.time_base) != same for v in videos):
        return False
    # A segment that starts with more B-frame delay than the previous one ends with would need decode
    # timestamps to go back: the muxer refuses that, so such segments are re-encoded instead.
    offset = 0
    last_dts = None
    for v in videos:
        if last_dts is not None and v.first_dts - v.start + offset <= last_dts:
            return False
        last_dts = v.last_dts - v.start + offset
        offset += v.end - v.start
    return True


def _copy_video(
    oc: Any, parts: Sequence[StitchPart], videos: list[_Video], starts: list[Fraction]
) -> tuple[Any, Packets]:
    with open_input(parts[0].edited) as first:
        stream = oc.add_stream_from_template(first.streams.video[0])
    stream.time_base = videos[0].time_base

    def packets() -> Packets:
        for part, video, start in zip(parts, videos, starts, strict=False):
            shift = round(start / video.time_base) - video.start
            with open_input(part.edited) as ic:
                for packet in ic.demux(ic.streams.video[0]):
                    if packet.size == 0 or packet.pts is None:
                        continue
                    packet.pts += shift
                    packet.dts = packet.pts if packet.dts is None else packet.dts + shift
                    packet.stream = stream
                    yield packet

    return stream, packets()


def _encode_video(
    oc: Any, parts: Sequence[StitchPart], videos: list[_Video], starts: list[Fraction], counted: list[int]
) -> tuple[Any, Packets]:
    """Decode every segment and encode one stream at the first segment's size and time base."""
    first = videos[0]
    tb = first.time_base
    stream = oc.add_stream("libx264", rate=first.rate or Fraction(25), options=dict(X264_OPTIONS))
    stream.width, stream.height, stream.pix_fmt = first.width, first.height, "yuv420p"
    stream.time_base = tb
    stream.codec_context.time_base = tb
    durations: dict[int, int] = {}

    def encode(frame: Any, pts: int, duration: int) -> Iterator[Any]:
        if (frame.width, frame.height, frame.format.name) != (first.width, first.height, "yuv420p"):
            frame = frame.reformat(width=first.width, height=first.height, format="yuv420p")
        frame.pts, frame.time_base = pts, tb
        frame.pict_type = av.video.frame.PictureType.NONE
        durations[pts] = duration
        yield from stamped(stream.encode(frame))

    def stamped(packets: list[Any]) -> Iterator[Any]:
        for packet in packets:
            packet.duration = durations.pop(packet.pts, packet.duration)
        return to_stream(stream, packets)

    def packets() -> Packets:
        for part, video, start in zip(parts, videos, starts, strict=False):
            scale = video.time_base / tb
            offset = round(start / tb)
            count = 0
            pending = None
            with open_input(part.edited) as ic:
                vs = ic.streams.video[0]
                vs.codec_context.thread_type = "AUTO"
                for frame in ic.decode(vs):
                    if pending is not None:
                        yield from encode(
                            pending, *_place(pending.pts, frame.pts, video.start, offset, scale)
                        )
                    pending = frame
                    count += 1
                if pending is not None:
                    yield from encode(pending, *_place(pending.pts, video.end, video.start, offset, scale))
            counted.append(count)
        yield from stamped(stream.encode(None))

    return stream, packets()


def _place(pts: int, following: int, start: int, offset: int, scale: Fraction) -> tuple[int, int]:
    """A segment frame's pts and duration in the output's time base."""
    at = offset + round((pts - start) * scale)
    return at, offset + round((following - start) * scale) - at
