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
import math
from array import array
from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from operator import mul, sub
from pathlib import Path
from typing import Any, Literal

import av

from wanedit.segments.split import X264_OPTIONS, mp4_options

__all__ = ["AudioChoice", "StitchPart", "StitchResult", "audio_changed", "stitch"]

AudioChoice = Literal["original", "edited", "none"]
Packets = Generator[Any, None, None]

# audio_changed: mono 16 kHz PCM in 20 ms windows, each described by its level (dB of full scale) and
# its RMS frequency (the square root of the spectrum's second moment, from the energy of the first
# difference: a pure tone of f Hz gives f). Lossy re-encoding, resampling and a few ms of encoder delay
# move neither much; a different sound moves the level where one is silent and the other not, or the
# frequency where both sound.
COMPARE_RATE = 16000
WINDOW = 320
MAX_LAG_WINDOWS = 3  # alignment searched within +-60 ms
SILENT_DB = -60.0
LOUD_DB = -40.0
LEVEL_CHANGED_DB = 4.0  # mean level difference
FREQUENCY_CHANGED_OCTAVES = 0.2  # median difference where both are loud...
LOUD_SHARE = 0.25  # ...over at least this share of the windows


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
    originals = [_has_audio(part.original) for part in parts]
    changed = [audio_setting == "auto" and audio_changed(p.edited, p.original) for p in parts]
    if any(changed):
        audio_from: list[AudioChoice] = [
            "edited" if c else ("original" if o else "none") for c, o in zip(changed, originals, strict=True)
        ]
        audio: AudioChoice = "edited"
    else:
        audio_from = ["original" if o else "none" for o in originals]
        audio = "original" if any(originals) else "none"
    sources = [p.edited if a == "edited" else p.original for p, a in zip(parts, audio_from, strict=True)]
    rate, layout = _audio_format(sources, audio_from)
    copy_video = _can_copy_video(videos)
    copy_audio = audio == "original" and _same_audio([p.original for p in parts])
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            oc = stack.enter_context(av.open(str(out), "w", format="mp4", options=mp4_options(rate)))
            counted: list[int] = []
            if copy_video:
                vstream, vpackets = _copy_video(oc, parts, videos, starts)
            else:
                vstream, vpackets = _encode_video(oc, parts, videos, starts, counted)
            streams: list[Packets] = [vpackets]
            if copy_audio:
                streams.append(_copy_audio(oc, sources, starts))
            elif audio != "none":
                streams.append(_encode_audio(oc, sources, audio_from, starts, rate or 48000, layout))
            for stream in streams:
                stack.callback(stream.close)
            for packet in heapq.merge(*streams, key=_time):
                oc.mux(packet)
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


def _open(path: Path) -> Any:
    """A PyAV input container (typed loosely: PyAV's stubs make every timestamp optional)."""
    return av.open(str(path))


def _time(packet: Any) -> Fraction:
    """Where a packet goes in the interleaved output: its decode time, in seconds."""
    return Fraction((packet.dts if packet.dts is not None else packet.pts) * packet.time_base)


# ----------------------------------------------------------------------------------------------- video
def _scan_video(path: Path) -> _Video:
    with _open(path) as ic:
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
    with _open(parts[0].edited) as first:
        stream = oc.add_stream_from_template(first.streams.video[0])
    stream.time_base = videos[0].time_base

    def packets() -> Packets:
        for part, video, start in zip(parts, videos, starts, strict=False):
            shift = round(start / video.time_base) - video.start
            with _open(part.edited) as ic:
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
        return _to(stream, packets)

    def packets() -> Packets:
        for part, video, start in zip(parts, videos, starts, strict=False):
            scale = video.time_base / tb
            offset = round(start / tb)
            count = 0
            pending = None
            with _open(part.edited) as ic:
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


# ----------------------------------------------------------------------------------------------- audio
def _has_audio(path: Path) -> bool:
    with _open(path) as ic:
        return bool(ic.streams.audio)


def _same_audio(paths: list[Path]) -> bool:
    """Every original has an audio stream with the same parameters: its packets can follow each other."""
    seen = set()
    for path in paths:
        with _open(path) as ic:
            if not ic.streams.audio:
                return False
            ctx = ic.streams.audio[0].codec_context
            seen.add((ctx.name, bytes(ctx.extradata or b""), ctx.sample_rate, ctx.channels))
    return len(seen) == 1


def _audio_format(sources: list[Path], audio_from: list[AudioChoice]) -> tuple[int | None, str]:
    """Sample rate and layout of the first segment's audio that is used (the output's)."""
    for path, choice in zip(sources, audio_from, strict=True):
        if choice != "none":
            with _open(path) as ic:
                ctx = ic.streams.audio[0].codec_context
                return ctx.sample_rate, "stereo" if ctx.channels >= 2 else "mono"
    return None, "mono"


def _copy_audio(oc: Any, sources: list[Path], starts: list[Fraction]) -> Packets:
    """The originals' audio packets, each segment's from its output start, none past its video's end.

    Packets before a segment's start are dropped too, except in the first (the encoder's priming): a
    segment `split_clip` wrote has none, one encoded on its own would overlap the segment before it.
    """
    with _open(sources[0]) as first:
        stream = oc.add_stream_from_template(first.streams.audio[0])

    def packets() -> Packets:
        for path, start, end in zip(sources, starts, starts[1:], strict=False):
            with _open(path) as ic:
                source = ic.streams.audio[0]
                shift = round(start / source.time_base)
                for packet in ic.demux(source):
                    if packet.size == 0 or packet.pts is None:
                        continue
                    at = packet.pts * source.time_base
                    if at >= end - start or (at < 0 and start > 0):
                        continue
                    packet.pts += shift
                    packet.dts = packet.pts if packet.dts is None else packet.dts + shift
                    packet.stream = stream
                    yield packet

    return packets()


def _encode_audio(
    oc: Any,
    sources: list[Path],
    audio_from: list[AudioChoice],
    starts: list[Fraction],
    rate: int,
    layout: str,
) -> Packets:
    """One AAC track: each segment's chosen audio (or silence) at its start, cut to its video's length."""
    stream = oc.add_stream("aac", rate=rate, layout=layout)
    stream.time_base = Fraction(1, rate)
    fifo = av.AudioFifo()
    written = 0

    def drain(final: bool) -> Iterator[Any]:
        nonlocal written
        size = stream.codec_context.frame_size or 1024
        while fifo.samples >= size or (final and fifo.samples):
            frame: Any = fifo.read(min(size, fifo.samples))
            frame.pts, frame.time_base = written, stream.time_base
            written += frame.samples
            yield from _to(stream, stream.encode(frame))
        if final:
            yield from _to(stream, stream.encode(None))

    def packets() -> Packets:
        for path, choice, start, end in zip(sources, audio_from, starts, starts[1:], strict=False):
            wanted = round(end * rate) - round(start * rate)
            pcm = _pcm(path, rate, layout) if choice != "none" else iter(())
            for frame in _fit(pcm, wanted, rate, layout):
                frame.pts = None
                fifo.write(frame)
                yield from drain(final=False)
        yield from drain(final=True)

    return packets()


def _to(stream: Any, packets: list[Any]) -> Iterator[Any]:
    for packet in packets:
        packet.stream = stream
        yield packet


def _pcm(path: Path, rate: int, layout: str) -> Iterator[tuple[float | None, Any]]:
    """The file's audio as planar float frames at ``rate``/``layout``; the first comes with its start."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    start: float | None = None
    with _open(path) as ic:
        for frame in ic.decode(ic.streams.audio[0]):
            if start is None:
                start = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                first: float | None = start
            for out in resampler.resample(frame):
                yield first, out
                first = None
        for out in resampler.resample(None):
            yield None, out


def _fit(frames: Iterator[tuple[float | None, Any]], wanted: int, rate: int, layout: str) -> Iterator[Any]:
    """Exactly ``wanted`` samples: silence before audio that starts late, the part before 0 of audio
    that starts early dropped, cut at the end, silence after audio that ends early."""
    stage = av.AudioFifo()
    done = skip = 0
    for start, frame in frames:
        if start is not None:
            lead = round(start * rate)
            done = max(0, min(lead, wanted))
            skip = max(0, -lead)
            yield from _silence(done, rate, layout)
        frame.pts = None
        stage.write(frame)
        if skip:
            dropped = min(skip, stage.samples)
            stage.read(dropped)
            skip -= dropped
        take = min(stage.samples, wanted - done)
        if take > 0:
            yield stage.read(take)
            done += take
        if done >= wanted:
            return
    yield from _silence(wanted - done, rate, layout)


def _silence(samples: int, rate: int, layout: str) -> Iterator[Any]:
    for at in range(0, samples, 4096):
        frame = av.AudioFrame(format="fltp", layout=layout, samples=min(4096, samples - at))
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = rate
        yield frame


# -------------------------------------------------------------------------------------- audio_changed
def audio_changed(edited: Path, original: Path) -> bool:
    """Whether the edited segment's sound differs from the original's (see the measure above).

    An edited segment without audio did not change it (there is nothing to use instead); an original
    without audio compares as silence, so sound generated for a silent clip counts as changed.
    """
    new = _features(edited)
    if new is None:
        return False
    old = _features(original) or [(SILENT_DB, 0.0)] * len(new)
    count = min(len(new), len(old))
    if count == 0:
        return False
    best: tuple[float, int] = (math.inf, 0)
    for lag in range(-MAX_LAG_WINDOWS, MAX_LAG_WINDOWS + 1):
        pairs = [(new[i], old[i + lag]) for i in range(count) if 0 <= i + lag < len(old)]
        if pairs:
            level = sum(min(abs(a[0] - b[0]), 40.0) for a, b in pairs) / len(pairs)
            best = min(best, (level, lag))
    level, lag = best
    if level > LEVEL_CHANGED_DB:
        return True
    octaves = sorted(
        abs(math.log2(a[1] / b[1]))
        for i, a in enumerate(new[:count])
        if 0 <= i + lag < len(old)
        for b in [old[i + lag]]
        if a[0] > LOUD_DB and b[0] > LOUD_DB and a[1] > 0 and b[1] > 0
    )
    return len(octaves) >= LOUD_SHARE * count and octaves[len(octaves) // 2] > FREQUENCY_CHANGED_OCTAVES


def _features(path: Path) -> list[tuple[float, float]] | None:
    """(level dB, RMS frequency Hz) per 20 ms window of the file's audio as mono 16 kHz, or None."""
    with _open(path) as ic:
        if not ic.streams.audio:
            return None
        resampler = av.AudioResampler(format="s16", layout="mono", rate=COMPARE_RATE)
        features: list[tuple[float, float]] = []
        pending = array("h")
        for frame in ic.decode(ic.streams.audio[0]):
            for out in resampler.resample(frame):
                pending.frombytes(bytes(out.planes[0])[: 2 * out.samples])
                while len(pending) >= WINDOW:
                    features.append(_window(pending[:WINDOW]))
                    del pending[:WINDOW]
        return features


def _window(samples: array[int]) -> tuple[float, float]:
    energy = sum(map(mul, samples, samples))
    if energy == 0:
        return SILENT_DB, 0.0
    steps = list(map(sub, samples[1:], samples[:-1]))
    level = max(SILENT_DB, 10 * math.log10(energy / len(samples) / 32768**2))
    frequency = COMPARE_RATE / (2 * math.pi) * math.sqrt(sum(map(mul, steps, steps)) / energy)
    return level, frequency
