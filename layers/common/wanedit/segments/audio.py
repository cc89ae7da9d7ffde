"""The stitched video's audio track: the originals' packets copied, or one AAC track encoded from
each segment's chosen audio (edited, original or silence), cut or padded to its video's length."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av

from wanedit.segments.media import open_input

AudioChoice = Literal["original", "edited", "none"]
Packets = Generator[Any, None, None]


def has_audio(path: Path) -> bool:
    with open_input(path) as ic:
        return bool(ic.streams.audio)


def same_audio(paths: list[Path]) -> bool:
    """Every original has an audio stream with the same parameters: its packets can follow each other."""
    seen = set()
    for path in paths:
        with open_input(path) as ic:
            if not ic.streams.audio:
                return False
            ctx = ic.streams.audio[0].codec_context
            seen.add((ctx.name, bytes(ctx.extradata or b""), ctx.sample_rate, ctx.channels))
    return len(seen) == 1


def audio_format(sources: list[Path], audio_from: list[AudioChoice]) -> tuple[int | None, str]:
    """Sample rate and layout of the first segment's audio that is used (the output's)."""
    for path, choice in zip(sources, audio_from, strict=True):
        if choice != "none":
            with open_input(path) as ic:
                ctx = ic.streams.audio[0].codec_context
                return ctx.sample_rate, "stereo" if ctx.channels >= 2 else "mono"
    return None, "mono"


def copy_audio(oc: Any, sources: list[Path], starts: list[Fraction]) -> Packets:
    """The originals' audio packets, each segment's from its output start, none past its video's end.

    Packets before a segment's start are dropped too, except in the first (the encoder's priming): a
    segment `split_clip` wrote has none, one encoded on its own would overlap the segment before it.
    """
    with open_input(sources[0]) as first:
        stream = oc.add_stream_from_template(first.streams.audio[0])

    def packets() -> Packets:
        for path, start, end in zip(sources, starts, starts[1:], strict=False):
            with open_input(path) as ic:
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


def encode_audio(
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
            yield from to_stream(stream, stream.encode(frame))
        if final:
            yield from to_stream(stream, stream.encode(None))

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


def to_stream(stream: Any, packets: list[Any]) -> Iterator[Any]:
    for packet in packets:
        packet.stream = stream
        yield packet


def _pcm(path: Path, rate: int, layout: str) -> Iterator[tuple[float | None, Any]]:
    """The file's audio as planar float frames at ``rate``/``layout``; the first comes with its start."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    start: float | None = None
    with open_input(path) as ic:
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
