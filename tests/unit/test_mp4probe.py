"""probe_video on real MP4/MOV files made by PyAV: layouts, tracks, rotation, damage, and bytes read."""

from __future__ import annotations

import struct

import pytest

from tests.unit import mediafiles as mf
from wanedit.media import (
    BytesRangeReader,
    CountingReader,
    FileRangeReader,
    ProbeError,
    VideoInfo,
    probe_video,
)


def probe(data: bytes) -> VideoInfo:
    return probe_video(BytesRangeReader(data))


@pytest.mark.parametrize("faststart", [False, True], ids=["moov-last", "moov-first"])
def test_mp4_h264(faststart: bool) -> None:
    data = mf.video(faststart=faststart)
    assert (data.find(b"moov") < data.find(b"mdat")) is faststart
    info = probe(data)
    assert info == VideoInfo(
        container="mp4",
        brand="isom",
        duration_s=3.0,
        width=320,
        height=240,
        has_video=True,
        has_audio=False,
        video_codec="avc1",
        size_bytes=len(data),
    )


def test_mov_is_quicktime() -> None:
    info = probe(mf.video(fmt="mov"))
    assert (info.container, info.brand, info.video_codec) == ("mov", "qt  ", "avc1")


def test_mov_without_ftyp_is_accepted_as_mov() -> None:
    data = mf.video(fmt="mov")
    ftyp_size = struct.unpack(">I", data[:4])[0]
    # Old QuickTime files start with moov/wide/mdat; chunk offsets shift, which the probe never reads.
    info = probe(data[ftyp_size:])
    assert (info.container, info.brand, info.duration_s) == ("mov", None, 3.0)


def test_video_with_audio_reports_both_tracks_and_the_video_duration() -> None:
    info = probe(mf.video(audio=True, frames=25))
    assert (info.has_video, info.has_audio, info.duration_s) == (True, True, 2.5)


def test_audio_only_mp4_has_no_video() -> None:
    info = probe(mf.audio_only())
    assert (info.has_video, info.has_audio, info.video_codec, info.width) == (False, True, None, 0)


@pytest.mark.parametrize("frames, seconds", [(19, 1.9), (20, 2.0), (100, 10.0), (101, 10.1)])
def test_duration_from_the_video_track(frames: int, seconds: float) -> None:
    assert probe(mf.video(frames=frames)).duration_s == pytest.approx(seconds, abs=1e-9)


def test_hevc_codec_is_named() -> None:
    import av

    if "libx265" not in av.codecs_available:
        pytest.skip("no libx265 in this PyAV build")
    import io

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:
        s = c.add_stream("libx265", rate=10)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
        s.codec_tag = "hvc1"
        for i in range(20):
            frame = av.VideoFrame(320, 240, "yuv420p")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode())
    assert probe(out.getvalue()).video_codec == "hvc1"


@pytest.mark.parametrize("rotate, size", [(90, (240, 320)), (180, (320, 240)), (270, (240, 320))])
def test_rotation_matrix_swaps_displayed_size(rotate: int, size: tuple[int, int]) -> None:
    info = probe(mf.patch_tkhd(mf.video(), rotate=rotate))
    assert (info.width, info.height) == size


def test_tkhd_without_size_falls_back_to_sample_entry() -> None:
    info = probe(mf.patch_tkhd(mf.video(), width=0, height=0))
    assert (info.width, info.height) == (320, 240)


def test_64_bit_largesize_box_header() -> None:
    data = mf.video(faststart=True)
    mdat = mf.find_box(data, b"mdat")
    size = struct.unpack_from(">I", data, mdat)[0]
    # Same mdat with a 16-byte header: size 1, type, 64-bit size (offsets move by 8; never read).
    large = data[:mdat] + struct.pack(">I4sQ", 1, b"mdat", size + 8) + data[mdat + 8 :]
    assert probe(large).duration_s == 3.0


def test_size_zero_box_runs_to_end_of_file() -> None:
    data = mf.video(faststart=True)
    mdat = mf.find_box(data, b"mdat")
    assert probe(data[:mdat] + b"\x00\x00\x00\x00mdat" + data[mdat + 8 :]).has_video


def test_fragmented_without_mehd_is_refused_clearly() -> None:
    with pytest.raises(ProbeError, match="fragmented MP4 without a total duration"):
        probe(mf.video(movflags="frag_keyframe+empty_moov+default_base_moof"))


def test_fragmented_with_mehd_reports_its_duration() -> None:
    data = mf.video(movflags="frag_keyframe+empty_moov+default_base_moof")
    mvhd = mf.find_box(data, b"mvhd")
    timescale = struct.unpack_from(">I", data, mvhd + 8 + 12)[0]
    assert probe(mf.insert_mehd(data, 3 * timescale)).duration_s == 3.0


@pytest.mark.parametrize(
    "data, message",
    [
        pytest.param(b"", "empty", id="0-bytes"),
        pytest.param(b"hello, this is a text file named clip.mp4\n", "not an MP4 or MOV", id="text-file"),
        pytest.param(b"\x00\x00", "truncated", id="2-bytes"),
        pytest.param(b"\x00\x00\x00\x04ftyp", "corrupt box", id="box-size-below-header"),
        pytest.param(mf.image("PNG"), "not an MP4 or MOV", id="png-named-mp4"),
    ],
)
def test_not_a_video(data: bytes, message: str) -> None:
    with pytest.raises(ProbeError, match=message):
        probe(data)


def test_truncated_moov_last_file_says_truncated() -> None:
    data = mf.video()
    with pytest.raises(ProbeError, match="truncated: box 'mdat'"):
        probe(data[: len(data) // 2])


def test_truncated_inside_moov() -> None:
    data = mf.video()
    with pytest.raises(ProbeError, match="truncated: box 'moov'"):
        probe(data[:-10])


def test_truncated_faststart_file_says_truncated() -> None:
    data = mf.video(faststart=True)
    with pytest.raises(ProbeError, match="truncated"):
        probe(data[:-100])


def test_moov_missing() -> None:
    data = mf.video()
    moov = mf.find_box(data, b"moov")
    with pytest.raises(ProbeError, match="no moov"):
        probe(data[:moov])


def test_corrupt_box_inside_moov() -> None:
    data = bytearray(mf.video())
    trak = mf.find_box(bytes(data), b"trak")
    struct.pack_into(">I", data, trak, 0xFFFF)
    with pytest.raises(ProbeError, match="corrupt 'trak'"):
        probe(bytes(data))


def test_oversized_moov_is_refused_without_reading_it() -> None:
    data = bytearray(mf.video(faststart=True))
    moov = mf.find_box(bytes(data), b"moov")
    struct.pack_into(">I", data, moov, 17 * 1024 * 1024)
    reader = CountingReader(BytesRangeReader(bytes(data), size=40 * 1024 * 1024))
    with pytest.raises(ProbeError, match="more than 16 MB"):
        probe_video(reader)
    assert reader.bytes_read <= 65536  # the look-ahead window only


@pytest.mark.parametrize("layout", ["moov-first", "moov-last"])
def test_100_mb_file_costs_a_few_reads(tmp_path, layout: str) -> None:
    total = 100 * 1024 * 1024
    if layout == "moov-first":
        path = mf.padded_file(tmp_path / "big.mp4", mf.video(faststart=True), total)
    else:
        path = mf.sparse_moov_last(tmp_path / "big.mp4", mf.video(), total)
    reader = CountingReader(FileRangeReader(path))
    info = probe_video(reader)
    moov = mf.find_box(mf.video(), b"moov")
    moov_size = struct.unpack_from(">I", mf.video(), moov)[0]
    assert (info.size_bytes, info.duration_s) == (total, 3.0)
    assert reader.bytes_read - moov_size < 256 * 1024, reader.bytes_read
    assert reader.calls <= 3
    print(f"{layout}: {reader.calls} reads, {reader.bytes_read} bytes (moov {moov_size})")
