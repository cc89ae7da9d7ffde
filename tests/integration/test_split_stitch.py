"""Long clips on real files: split into 2-10 s segments, edit each with the emulator's model, stitch back.

Every frame carries its index (``frame_marks``) and the sound is a beep at every whole second
(``beeps``), so the checks are exact: no frame dropped, repeated or reordered at a boundary, and the
sound where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av
import pytest

from local.emulator.render import SOUND_WORDS, inspect_video, pick_size, render
from local.samplemedia import beep_onsets, make_clip, probe, read_frame_marks
from wanedit.segments.soundcheck import audio_changed
from wanedit.segments.split import SegmentFile, _scan, split_clip
from wanedit.segments.stitch import StitchPart, stitch

FPS = 12


# ----------------------------------------------------------------------------------------------- helpers
def media(path: Path, mode: Literal["r", "w"] = "r") -> Any:
    """A PyAV container, typed loosely (the stubs make every stream, frame and timestamp a union)."""
    return av.open(str(path), mode, format="mp4" if mode == "w" else None)


def audio_packets(path: Path) -> list[tuple[int, bytes]]:
    with media(path) as ic:
        return [(p.pts, bytes(p)) for p in ic.demux(ic.streams.audio[0]) if p.size]


def starts_with_keyframe(path: Path) -> bool:
    with media(path) as ic:
        return next(p for p in ic.demux(video=0) if p.size).is_keyframe


def transcode(
    src: Path,
    dst: Path,
    *,
    x264: dict[str, str],
    size: tuple[int, int] | None = None,
    audio: Any = "copy",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Re-encode the video with other encoder settings (and size); audio "copy", None (dropped) or
    re-encoded as (rate, layout)."""
    with media(src) as ic, media(dst, "w") as oc:
        vin = ic.streams.video[0]
        width, height = size or (vin.codec_context.width, vin.codec_context.height)
        vout = oc.add_stream(codec, rate=vin.average_rate, options=x264)
        vout.width, vout.height, vout.pix_fmt = width, height, pix_fmt
        vout.codec_context.time_base = vin.time_base
        ain = ic.streams.audio[0] if ic.streams.audio and audio is not None else None
        aout: Any = None
        resampler = None
        if ain is not None and audio == "copy":
            aout = oc.add_stream_from_template(ain)
        elif ain is not None:
            rate, layout = audio
            aout = oc.add_stream("aac", rate=rate, layout=layout)
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        for packet in ic.demux(*[s for s in (vin, ain) if s is not None]):
            if packet.stream is vin:
                for frame in packet.decode():
                    scaled = frame.reformat(width=width, height=height, format=pix_fmt)
                    scaled.pts, scaled.time_base = frame.pts, frame.time_base
                    oc.mux(vout.encode(scaled))
            elif resampler is None and packet.size:
                packet.stream = aout
                oc.mux(packet)
            elif resampler is not None:
                for frame in packet.decode():
                    frame.pts = None
                    for out in resampler.resample(frame):
                        oc.mux(aout.encode(out))
        oc.mux(vout.encode(None))
        if resampler is not None:
            oc.mux(aout.encode(None))
    return dst


def edit(segment: Path, dest: Path, prompt: str, audio_setting: str = "auto") -> Path:
    """The emulator's model on one segment, as a 720P 16:9 task with this prompt would run it."""
    info = inspect_video(segment)
    width, height = pick_size("720P", "16:9", info["width"], info["height"])
    wants_sound = audio_setting == "auto" and bool(SOUND_WORDS.search(prompt))
    result = render(
        segment,
        dest,
        out_w=width,
        out_h=height,
        duration=0,
        watermark=True,
        keep_audio=not wants_sound,
        generate_audio=wants_sound,
    )
    return result.path


def check_segments(source: Path, segments: list[SegmentFile]) -> None:
    """What every split keeps: 2-10 s each, all frames once in order, the source's audio packets."""
    assert [s.index for s in segments] == list(range(len(segments)))
    frames = sum(s.frames for s in segments)
    assert read_frame_marks(source) == list(range(frames))
    marks: list[int] = []
    for seg in segments:
        info = probe(seg.path)
        assert info["frame_count"] == seg.frames and info["fps"] == FPS
        assert info["duration_s"] == pytest.approx(seg.duration, abs=1e-6)
        assert seg.size == seg.path.stat().st_size
        assert starts_with_keyframe(seg.path)
        if len(segments) > 1:
            assert 2.0 <= seg.duration <= 10.0
        marks += read_frame_marks(seg.path)
    assert marks == list(range(frames))
    assert [s.start for s in segments] == pytest.approx(
        [sum(s.duration for s in segments[:i]) for i in range(len(segments))]
    )
    original = audio_packets(source)
    with media(source) as ic:
        rate = ic.streams.audio[0].codec_context.sample_rate
    pieces = [
        (pts + round(seg.start * rate), data) for seg in segments for pts, data in audio_packets(seg.path)
    ]
    assert pieces == original  # every packet once, in order, at its own time


def near_whole_seconds(onsets: list[float], fps: int) -> bool:
    return all(abs(t - round(t)) <= 1 / fps for t in onsets)


# ------------------------------------------------------------------------------------------------- split
@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


def test_keyframes_every_second_split_by_stream_copy(clips: Path) -> None:
    source = make_clip(
        clips / "gop12.mp4", seconds=27, width=320, height=240, gop=FPS, frame_marks=True, beeps=True
    )
    segments = split_clip(source, clips / "gop12")
    assert len(segments) >= 3 and all(s.copied for s in segments)
    check_segments(source, segments)
    assert [p.name for p in sorted((clips / "gop12").iterdir())] == [
        f"seg-00{i}.mp4" for i in range(len(segments))
    ]


def test_keyframe_only_at_the_start_re_encodes_exactly(clips: Path) -> None:
    source = make_clip(clips / "gop250.mp4", seconds=27, width=320, height=240, frame_marks=True, beeps=True)
    segments = split_clip(source, clips / "gop250")
    assert len(segments) == 3 and not any(s.copied for s in segments)
    check_segments(source, segments)
    # stitched back as they are: the same x264 settings everywhere, so the packets (B-frames and all)
    # are copied, and so is the source's audio
    parts = [StitchPart(s.path, s.path) for s in segments]
    result = stitch(parts, clips / "gop250-stitched.mp4", audio_setting="origin")
    assert result.video_copied and result.audio == "original"
    assert read_frame_marks(result.path) == list(range(27 * FPS))
    assert audio_packets(result.path) == audio_packets(source)


def test_b_frames_and_sparse_keyframes_copy_where_they_can(clips: Path) -> None:
    """keyint 50 with B-frames: keyframe-only cuts cannot make 2-10 s segments here, so some are copied
    (negative decode timestamps kept) and some decoded from the keyframe before them."""
    plain = make_clip(clips / "plain.mp4", seconds=27, width=320, height=240, frame_marks=True, beeps=True)
    source = transcode(
        plain,
        clips / "bframes.mp4",
        x264={"preset": "veryfast", "x264-params": "keyint=50:min-keyint=50:scenecut=0:bframes=3"},
    )
    segments = split_clip(source, clips / "bframes")
    assert {s.copied for s in segments} == {True, False}
    check_segments(source, segments)


def test_hevc_10_bit_source_is_copied_and_stitches_to_h264(clips: Path) -> None:
    plain = make_clip(clips / "for-hevc.mp4", seconds=21, width=320, height=240, frame_marks=True, beeps=True)
    source = transcode(
        plain,
        clips / "hevc.mp4",
        codec="libx265",
        pix_fmt="yuv420p10le",
        x264={"preset": "ultrafast", "x265-params": "keyint=36:min-keyint=36:bframes=3:log-level=error"},
    )
    segments = split_clip(source, clips / "hevc")
    assert all(s.copied for s in segments) and probe(segments[0].path)["codec"] == "hevc"
    check_segments(source, segments)
    result = stitch(
        [StitchPart(s.path, s.path) for s in segments], clips / "hevc.h264.mp4", audio_setting="auto"
    )
    assert not result.video_copied and probe(result.path)["codec"] == "h264"
    assert read_frame_marks(result.path) == list(range(21 * FPS))
    assert audio_packets(result.path) == audio_packets(source)


@pytest.mark.parametrize(("seconds", "count"), [(10.5, 2), (9, 1)])
def test_short_clips(clips: Path, seconds: float, count: int) -> None:
    source = make_clip(clips / f"{seconds}.mp4", seconds=seconds, width=320, height=240, frame_marks=True)
    segments = split_clip(source, clips / f"{seconds}-segments")
    assert len(segments) == count
    assert all(s.duration >= 2.0 for s in segments)
    assert sum(s.frames for s in segments) == round(seconds * FPS)
    assert [m for s in segments for m in read_frame_marks(s.path)] == list(range(round(seconds * FPS)))
    assert count > 1 or segments[0].copied


def test_a_clip_without_audio_splits_and_stitches_without_audio(clips: Path) -> None:
    source = make_clip(
        clips / "mute.mp4", seconds=12, width=320, height=240, audio=False, gop=6, frame_marks=True
    )
    segments = split_clip(source, clips / "mute")
    parts = [StitchPart(s.path, s.path) for s in segments]
    result = stitch(parts, clips / "mute-stitched.mp4", audio_setting="auto")
    assert result.audio == "none" and result.audio_from == ["none"] * len(segments)
    assert not probe(result.path)["has_audio"]
    assert read_frame_marks(result.path) == list(range(12 * FPS))


def test_only_clean_keyframes_are_cut_points() -> None:
    """Open GOP: a keyframe followed (in decode order) by frames shown before it cannot start a copied
    segment; a closed one can."""

    @dataclass
    class Packet:
        pts: int
        is_keyframe: bool
        duration: int = 1
        size: int = 1

    decode_order = [0, 4, 2, 1, 3, 8, 6, 5, 7, 12, 10, 9, 11, 16, 20, 18, 17, 19]
    packets = [Packet(p, p in (0, 8, 16)) for p in decode_order]

    class Container:
        def demux(self, _stream: Any) -> list[Packet]:
            return packets

    scan = _scan(Container(), None)
    assert scan.clean == [0, decode_order.index(16)]
    assert scan.order == sorted(decode_order) and scan.end_pts == 21


def test_a_portrait_phone_clip_keeps_its_rotation_copied_or_re_encoded(clips: Path) -> None:
    plain = make_clip(clips / "landscape.mp4", seconds=12, width=320, height=240, frame_marks=True)
    source = clips / "rotated.mp4"
    with media(plain) as ic, media(source, "w") as oc:
        stream = oc.add_stream_from_template(ic.streams.video[0])
        stream.set_display_rotation(90)
        for packet in ic.demux(ic.streams.video[0]):
            if packet.size:
                packet.stream = stream
                oc.mux(packet)
    segments = split_clip(source, clips / "rotated")
    assert len(segments) == 2 and not any(s.copied for s in segments)
    for seg in segments:
        with media(seg.path) as ic:
            assert next(ic.decode(video=0)).rotation == 90


# -------------------------------------------------------------------------------------------- round trip
RT_FPS = 6
RT_SECONDS = 21


@dataclass
class RoundTrip:
    source: Path
    segments: list[SegmentFile]
    kept: list[StitchPart]  # edited with a prompt that does not talk about sound
    sound: list[StitchPart]  # edited with a prompt that asks for sound, audio_setting auto
    work: Path

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)


@pytest.fixture(scope="module")
def trip(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    """A 21 s 640x360 clip split into three copied segments, each edited by the emulator's model to
    1280x720 twice: with a plain prompt (the same file serves audio_setting origin, where the model
    keeps the audio whatever the prompt) and with a prompt about sound under auto."""
    work = tmp_path_factory.mktemp("trip")
    source = make_clip(
        work / "source.mp4",
        seconds=RT_SECONDS,
        width=640,
        height=360,
        fps=RT_FPS,
        gop=RT_FPS,
        frame_marks=True,
        beeps=True,
    )
    segments = split_clip(source, work / "segments")
    kept = [
        StitchPart(edit(s.path, work / f"kept-{s.index}.mp4", "Invert the colours"), s.path) for s in segments
    ]
    sound = [
        StitchPart(edit(s.path, work / f"sound-{s.index}.mp4", "Invert it and add music"), s.path)
        for s in segments
    ]
    return RoundTrip(source, segments, kept, sound, work)


def check_stitched(trip: RoundTrip, path: Path, *, beeps: bool) -> None:
    info = probe(path)
    assert (info["width"], info["height"]) == (1280, 720)
    assert read_frame_marks(path) == list(range(trip.frames))  # strictly 0..N-1
    assert abs(info["duration_s"] - RT_SECONDS) <= len(trip.segments) / RT_FPS
    assert info["has_audio"]
    assert abs(info["audio_duration_s"] - info["duration_s"]) <= 0.1
    if beeps:
        onsets = beep_onsets(path)
        assert [round(t) for t in onsets] == list(range(RT_SECONDS))
        assert near_whole_seconds(onsets, RT_FPS)


@pytest.mark.parametrize("setting", ["origin", "auto"])
def test_round_trip_keeps_every_frame_and_the_original_sound_in_sync(trip: RoundTrip, setting: Any) -> None:
    assert len(trip.segments) == 3 and all(s.copied for s in trip.segments)
    result = stitch(trip.kept, trip.work / f"stitched-{setting}.mp4", audio_setting=setting)
    assert result.video_copied
    assert (result.audio, result.audio_from) == ("original", ["original"] * 3)
    assert result.frames == trip.frames and result.segment_frames == [s.frames for s in trip.segments]
    assert (result.width, result.height) == (1280, 720)
    assert result.duration == pytest.approx(RT_SECONDS, abs=3 / RT_FPS)
    check_stitched(trip, result.path, beeps=True)
    # origin audio is the source's own packets, each at its place
    assert audio_packets(result.path) == audio_packets(trip.source)


def test_round_trip_with_a_sound_prompt_uses_the_generated_sound(trip: RoundTrip) -> None:
    result = stitch(trip.sound, trip.work / "stitched-sound.mp4", audio_setting="auto")
    assert (result.audio, result.audio_from) == ("edited", ["edited"] * 3)
    check_stitched(trip, result.path, beeps=False)
    assert len(beep_onsets(result.path)) == 1  # one continuous tone: no beeps


def test_origin_ignores_generated_sound(trip: RoundTrip) -> None:
    result = stitch(trip.sound, trip.work / "stitched-sound-origin.mp4", audio_setting="origin")
    assert (result.audio, result.audio_from) == ("original", ["original"] * 3)
    check_stitched(trip, result.path, beeps=True)


def test_one_changed_segment_mixes_edited_and_original_sound_in_sync(trip: RoundTrip) -> None:
    parts = [trip.kept[0], trip.sound[1], trip.kept[2]]
    result = stitch(parts, trip.work / "stitched-mixed.mp4", audio_setting="auto")
    assert (result.audio, result.audio_from) == ("edited", ["original", "edited", "original"])
    check_stitched(trip, result.path, beeps=False)
    onsets = beep_onsets(result.path)
    # the beeps of segments 0 and 2 where they were, the tone from 7 s, which runs into the beep at 14 s
    assert [round(t) for t in onsets] == [*range(8), *range(15, RT_SECONDS)]
    assert near_whole_seconds(onsets, RT_FPS)


def test_segments_that_differ_are_re_encoded_with_every_frame(trip: RoundTrip) -> None:
    """One segment at another size and x264 setting (other extradata): decode and re-encode all."""
    odd = transcode(trip.kept[1].edited, trip.work / "odd.mp4", x264={"preset": "fast"}, size=(960, 540))
    parts = [trip.kept[0], StitchPart(odd, trip.kept[1].original), trip.kept[2]]
    result = stitch(parts, trip.work / "stitched-reencoded.mp4", audio_setting="origin")
    assert not result.video_copied
    assert result.segment_frames == [s.frames for s in trip.segments]
    check_stitched(trip, result.path, beeps=True)


def test_audio_changed_measure(trip: RoundTrip, clips: Path) -> None:
    assert not any(audio_changed(p.edited, p.original) for p in trip.kept)  # AAC re-encoded by the model
    assert all(audio_changed(p.edited, p.original) for p in trip.sound)  # 330 Hz tone instead of beeps
    tone = make_clip(clips / "tone.mp4", seconds=3, width=320, height=240, fps=RT_FPS)
    resampled = transcode(tone, clips / "tone-44k.mp4", x264={"preset": "ultrafast"}, audio=(44100, "stereo"))
    assert not audio_changed(resampled, tone)
    other = render(
        tone,
        clips / "tone-330.mp4",
        out_w=320,
        out_h=240,
        duration=0,
        watermark=False,
        keep_audio=False,
        generate_audio=True,
    ).path
    assert audio_changed(other, tone)  # 330 Hz for 440 Hz: same loudness, other pitch
    mute = transcode(tone, clips / "tone-mute.mp4", x264={"preset": "ultrafast"}, audio=None)
    assert not audio_changed(mute, tone)  # nothing to use instead
    assert audio_changed(tone, mute)  # sound where there was none


def test_the_model_keeps_every_frame_of_a_segment(trip: RoundTrip) -> None:
    """Segment durations are exact, so the model's floor(duration * fps) loses no frame."""
    for seg, part in zip(trip.segments, trip.kept, strict=True):
        assert probe(part.edited)["frame_count"] == seg.frames
