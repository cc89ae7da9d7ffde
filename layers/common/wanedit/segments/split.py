"""Split a long clip into 2-10 s MP4 segments, one API task each.

Two passes over the source, both streaming (memory does not grow with the clip):

1. demux the video packets (no decode) for their timestamps and keyframes, then `plan_cuts`;
2. demux video and audio once more and write every segment as the packets go by. A segment whose
   boundaries are both clean keyframes gets the source's video packets as they are; any other is
   decoded from the clean keyframe before it and re-encoded with libx264 (its first frame becomes a
   keyframe). Audio packets are always copied, each into the one segment whose time span holds it.

A keyframe is *clean* when every packet before it in decode order is shown before it and every
packet after it is shown after it (no open-GOP leading pictures), so cutting there needs no decode.
Each segment's timestamps start at 0: video and audio are shifted by the same time, so they stay in
sync and concatenating the segments' audio packets gives back the source's audio packets.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from wanedit.segments.plan import MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS, Cut, plan_cuts

__all__ = ["SegmentFile", "split_clip"]

# What a re-encoded segment costs in quality: one more high-quality generation, at a fast preset.
X264_OPTIONS = {"crf": "18", "preset": "veryfast"}


def mp4_options(audio_rate: int | None) -> dict[str, str]:
    """Muxer options: faststart, and the movie time scale in audio samples when there is audio.

    MP4 edit lists count in the movie time scale (1000 by default): a segment's audio that starts a
    few samples after its first frame would be moved by up to half a millisecond at every cut.
    """
    options = {"movflags": "+faststart"}
    if audio_rate:
        options["movie_timescale"] = str(audio_rate)
    return options


@dataclass(frozen=True)
class SegmentFile:
    """One segment as written; ``start`` and ``duration`` are seconds of the source's video."""

    index: int
    path: Path
    start: float
    duration: float
    frames: int
    copied: bool
    size: int


@dataclass
class _Scan:
    """The video packets of the source, in decode order, and what the plan needs from them."""

    pts: list[int]  # decode order
    order: list[int]  # all pts, presentation order
    end_pts: int  # the end of the last frame
    clean: list[int]  # decode positions of clean keyframes (position 0 included)


def split_clip(
    source: Path,
    out_dir: Path,
    *,
    min_seconds: float = MIN_SEGMENT_SECONDS,
    max_seconds: float = MAX_SEGMENT_SECONDS,
) -> list[SegmentFile]:
    """Write ``out_dir/seg-000.mp4``, ``seg-001.mp4``, ... and describe them (see the module doc)."""
    with av.open(str(source)) as ic:
        if not ic.streams.video:
            raise ValueError(f"{source.name} has no video stream")
        vs = ic.streams.video[0]
        scan = _scan(ic, vs)
    tb = vs.time_base
    assert tb is not None
    origin = scan.order[0]
    rank = {p: i for i, p in enumerate(scan.order)}
    cuts = plan_cuts(
        [float((p - origin) * tb) for p in scan.order],
        [rank[scan.pts[k]] for k in scan.clean],
        float((scan.end_pts - origin) * tb),
        min_seconds=min_seconds,
        max_seconds=max_seconds,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"seg-{cut.index:03d}.mp4" for cut in cuts]
    rotation = 0 if all(cut.copy for cut in cuts) else _rotation(source)
    with av.open(str(source)) as ic:
        _Writer(ic, scan, rank, cuts, paths, rotation).run()
    return [
        SegmentFile(
            index=cut.index,
            path=path,
            start=cut.start,
            duration=cut.duration,
            frames=cut.end_frame - cut.first_frame,
            copied=cut.copy,
            size=path.stat().st_size,
        )
        for cut, path in zip(cuts, paths, strict=True)
    ]


def _scan(ic: Any, vs: Any) -> _Scan:
    pts, keys, end = _demux_times(ic, vs)
    order = sorted(pts)
    if len(set(order)) != len(order):
        raise ValueError("the video has frames with the same timestamp")
    if end is None or end <= order[-1]:  # no packet durations: the last frame lasts like the one before
        end = order[-1] + (order[-1] - order[-2] if len(order) > 1 else 1)
    return _Scan(pts, order, end, _clean_keyframes(pts, keys, end))


def _demux_times(ic: Any, vs: Any) -> tuple[list[int], set[int], int | None]:
    """Every video packet's pts in decode order, the positions of keyframes, and where the last ends."""
    pts: list[int] = []
    keys: set[int] = set()
    end = None
    for packet in ic.demux(vs):
        if packet.size == 0:
            continue
        if packet.pts is None:
            raise ValueError("the video has packets without timestamps; remux it to MP4 first")
        if packet.is_keyframe:
            keys.add(len(pts))
        pts.append(packet.pts)
        if packet.duration:
            end = packet.pts + packet.duration if end is None else max(end, packet.pts + packet.duration)
    if not pts:
        raise ValueError("the video stream has no frames")
    return pts, keys, end


def _clean_keyframes(pts: list[int], keys: set[int], end: int) -> list[int]:
    """Decode positions of keyframes nothing after which is shown before them (position 0 included)."""
    later = [0] * len(pts)  # suffix minimum of pts
    low = end
    for k in range(len(pts) - 1, -1, -1):
        later[k] = low
        low = min(low, pts[k])
    clean = [0]
    shown = pts[0]
    for k in range(1, len(pts)):
        if k in keys and shown < pts[k] < later[k]:
            clean.append(k)
        shown = max(shown, pts[k])
    return clean


def _rotation(source: Path) -> int:
    """The video's display rotation (a phone's portrait clip), from its first frame: PyAV has no getter
    on the stream."""
    with av.open(str(source)) as ic:
        for frame in ic.decode(video=0):
            return int(frame.rotation)
    return 0


class _Writer:
    """The second pass: one demux of video and audio, routed to the segments' muxers."""

    def __init__(
        self, ic: Any, scan: _Scan, rank: dict[int, int], cuts: list[Cut], paths: list[Path], rotation: int
    ) -> None:
        self.ic = ic
        self.vs = ic.streams.video[0]
        self.aus = ic.streams.audio[0] if ic.streams.audio else None
        self.scan = scan
        self.rank = rank
        self.cuts = cuts
        self.paths = paths
        self.firsts = [cut.first_frame for cut in cuts]
        # each segment's first frame pts, in video time base: what its timestamps are shifted by
        self.bases = [scan.order[cut.first_frame] for cut in cuts]
        self.outputs: dict[int, _Output] = {}
        self.closed: set[int] = set()
        self.rotation = rotation
        self.decode_spans = self._decode_spans()
        # audio in its own time base: shifted like the video; a packet belongs to the segment whose
        # [start, end) holds its pts
        ratio = self.vs.time_base / self.aus.time_base if self.aus is not None else Fraction(1)
        self.audio_bases = [round(base * ratio) for base in self.bases]
        self.audio_bounds = [base * ratio for base in self.bases[1:]]
        self.audio_segment = 0

    def _decode_spans(self) -> list[tuple[int, int]]:
        """Decode-order ranges to decode: each re-encoded segment from the clean keyframe before it."""
        position = {p: k for k, p in enumerate(self.scan.pts)}
        spans: list[tuple[int, int]] = []
        for cut in self.cuts:
            if cut.copy:
                continue
            places = [position[self.scan.order[r]] for r in range(cut.first_frame, cut.end_frame)]
            first, last = min(places), max(places)
            start = self.scan.clean[bisect.bisect_right(self.scan.clean, first) - 1]
            if spans and start <= spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], max(spans[-1][1], last))
            else:
                spans.append((start, last))
        return spans

    def run(self) -> None:
        streams = [self.vs] + ([self.aus] if self.aus is not None else [])
        self.vs.codec_context.thread_type = "AUTO"
        position = 0
        span = 0
        for packet in self.ic.demux(*streams):
            if packet.size == 0:
                continue
            if packet.stream is self.vs:
                segment = self._segment_of(self.rank[packet.pts])
                while span < len(self.decode_spans) and position > self.decode_spans[span][1]:
                    span += 1
                if span < len(self.decode_spans) and position >= self.decode_spans[span][0]:
                    for frame in self.vs.codec_context.decode(packet):
                        self._reencode(frame)
                    if position == self.decode_spans[span][1]:
                        self._drain_decoder()
                if self.cuts[segment].copy:  # after decoding: muxing takes the packet's data
                    self._output(segment).copy_video(packet, self.bases[segment])
                position += 1
            else:
                self._copy_audio(packet)
            self._close_finished()
        for output in self.outputs.values():
            output.close()

    def _segment_of(self, frame: int) -> int:
        return bisect.bisect_right(self.firsts, frame) - 1

    def _output(self, segment: int) -> _Output:
        if segment in self.closed:
            raise ValueError(f"the source's packets are out of order: one for segment {segment} came late")
        if segment not in self.outputs:
            self.outputs[segment] = _Output(self, segment)
        return self.outputs[segment]

    def _reencode(self, frame: Any) -> None:
        index = self.rank[frame.pts]
        segment = self._segment_of(index)
        if not self.cuts[segment].copy:
            after = self.scan.order[index + 1] if index + 1 < len(self.scan.order) else self.scan.end_pts
            self._output(segment).encode_video(frame, after - frame.pts)

    def _drain_decoder(self) -> None:
        """End a decode span; the next one starts at a clean keyframe with an empty decoder."""
        for frame in self.vs.codec_context.decode(None):
            self._reencode(frame)
        self.vs.codec_context.flush_buffers()

    def _copy_audio(self, packet: Any) -> None:
        if packet.pts is None:
            return
        segment = bisect.bisect_right(self.audio_bounds, packet.pts)
        self.audio_segment = max(self.audio_segment, segment)
        output = self._output(segment)
        shift = self.audio_bases[segment]
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        output.mux(packet, output.audio)

    def _close_finished(self) -> None:
        """Close segments whose video is written and whose audio is over (the audio is in pts order)."""
        for segment in [s for s, out in self.outputs.items() if out.video_done]:
            if self.aus is None or self.audio_segment > segment:
                self.outputs.pop(segment).close()
                self.closed.add(segment)


class _Output:
    """One segment's MP4: its video (copied or encoded) and audio streams."""

    def __init__(self, writer: _Writer, segment: int) -> None:
        cut = writer.cuts[segment]
        self.expected = cut.end_frame - cut.first_frame
        self.written = 0
        self.base = writer.bases[segment]
        rate = writer.aus.codec_context.sample_rate if writer.aus is not None else None
        self.container = av.open(str(writer.paths[segment]), "w", format="mp4", options=mp4_options(rate))
        source = writer.vs
        if cut.copy:
            self.video = self.container.add_stream_from_template(source)
            self.encoder = None
        else:
            rate = source.average_rate or source.guessed_rate or Fraction(25)
            self.video = self.container.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
            self.video.width = source.codec_context.width
            self.video.height = source.codec_context.height
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = source.time_base
            self.video.codec_context.time_base = source.time_base
            self.encoder = self.video
            if writer.rotation:  # copied streams keep the display matrix; a new one needs it set
                self.video.set_display_rotation(writer.rotation)
        self.durations: dict[int, int] = {}
        self.audio = self.container.add_stream_from_template(writer.aus) if writer.aus is not None else None
        self.video_done = False

    def mux(self, packet: Any, stream: Any) -> None:
        packet.stream = stream
        self.container.mux(packet)

    def copy_video(self, packet: Any, base: int) -> None:
        packet.pts -= base
        if packet.dts is not None:
            packet.dts -= base
        self.mux(packet, self.video)
        self.written += 1
        self.video_done = self.written == self.expected

    def encode_video(self, frame: Any, duration: int) -> None:
        """Encode one source frame; the packet durations set here make the segment's duration exact."""
        assert self.encoder is not None
        pts = frame.pts - self.base
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        frame.pts = pts
        frame.pict_type = av.video.frame.PictureType.NONE  # the source's frame types are not forced
        self.durations[pts] = duration
        self._mux_encoded(self.encoder.encode(frame))
        self.written += 1
        if self.written == self.expected:
            self._mux_encoded(self.encoder.encode(None))
            self.video_done = True

    def _mux_encoded(self, packets: list[Any]) -> None:
        for packet in packets:
            packet.duration = self.durations.pop(packet.pts, packet.duration)
            self.mux(packet, self.video)

    def close(self) -> None:
        if not self.video_done:
            raise RuntimeError(f"segment {self.container.name} got {self.written} of {self.expected} frames")
        self.container.close()
