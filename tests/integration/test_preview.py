"""Before/after contact sheets on real clips: the JPEG is decoded and every cell checked.

The expected frame of each cell comes from decoding the whole video in order here (no seeking), and
the display orientation from the file's own rotation matrix (QuickTime's, as phones write it), not
from the module under test. Clips carry their frame index (``frame_marks``), so where the mark is
visible a cell's frame is known exactly; everywhere the cell must look like the expected frame and
no other frame may look more like it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from local.emulator.render import render
from local.samplemedia import make_clip, read_frame_marks, read_image_mark
from tests.unit import mediafiles
from wanedit.media.reader import BytesRangeReader, CountingReader, FileRangeReader, RangeFile
from wanedit.segments.media import open_input
from wanedit.segments.preview import PreviewError, PreviewRow, PreviewSheet, make_preview
from wanedit.segments.split import split_clip
from wanedit.segments.stitch import StitchPart, stitch

FPS = 12
B_FRAMES = {"preset": "veryfast", "tune": "film"}
# Pillow's transposes that undo a player's clockwise turn (for reading marks drawn on stored frames)
UNDO = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
# Pillow's transposes that do it (QuickTime matrix rotate=90 is a phone held upright: turned clockwise)
TURN = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
READ_BUFFER = 32768  # PyAV's buffer for Python file objects: FFmpeg reads that much at a time
MATCH = 12.0  # mean absolute difference (0-255) of a cell and its frame: scaling and JPEG, no more


# ----------------------------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Frames:
    """Every frame of a video, decoded in order: its time in seconds and its picture, upright."""

    times: list[Fraction]
    pictures: list[Image.Image]

    def index_at(self, t: float) -> int:
        """The first frame shown at or after ``t`` (the last frame past the end)."""
        at = Fraction(t).limit_denominator(10**6)
        return next((i for i, time in enumerate(self.times) if time >= at), len(self.times) - 1)


def decode_all(path: Path, size: tuple[int, int], turn: int = 0) -> Frames:
    """Every frame, upright (turned ``turn`` degrees clockwise) and scaled to a cell's ``size``."""
    times: list[Fraction] = []
    pictures: list[Image.Image] = []
    with open_input(Path(path)) as ic:
        stream: Any = ic.streams.video[0]
        start = stream.start_time or 0
        for frame in ic.decode(stream):
            times.append((frame.pts - start) * Fraction(stream.time_base))
            picture = frame.to_image().convert("RGB")
            picture = picture.transpose(TURN[turn]) if turn else picture
            pictures.append(picture.resize(size, Image.Resampling.BOX))
    return Frames(times, pictures)


def sheet_image(sheet: PreviewSheet) -> Image.Image:
    image = Image.open(io.BytesIO(sheet.jpeg))
    assert image.format == "JPEG"
    assert image.size == (sheet.width, sheet.height)
    return image.convert("RGB")


def difference(cell: Image.Image, picture: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(cell, picture)).mean) / 3


def check_row(
    image: Image.Image,
    row: PreviewRow,
    frames: Frames,
    times: Sequence[float],
    *,
    marks: bool,
    undo: int = 0,
) -> list[int]:
    """Each cell: its size, the frame at its instant (by its mark, and by looking like it more than any
    other frame does); returns the frame indices shown."""
    shown = []
    for t, box, frame_time in zip(times, row.cells, row.frame_times, strict=True):
        cell = image.crop(box)
        assert cell.size == frames.pictures[0].size
        expected = frames.index_at(t)
        assert frame_time == pytest.approx(float(frames.times[expected]))
        if marks:
            assert read_image_mark(cell.transpose(UNDO[undo]) if undo else cell) == expected
        differences = [difference(cell, picture) for picture in frames.pictures]
        assert differences[expected] < MATCH, (t, differences[expected])
        assert differences[expected] <= min(differences) + 0.5, (
            t,
            expected,
            differences.index(min(differences)),
        )
        shown.append(expected)
    return shown


def check_grid(sheet: PreviewSheet, count: int) -> None:
    """``count`` cells a row, left to right without overlap, the source row above the edited one, a time
    label under each source cell."""
    assert len(sheet.times) == len(sheet.labels) == count
    image = sheet_image(sheet)
    for row in (sheet.source, sheet.edited):
        assert len(row.cells) == count
        lefts = [box[0] for box in row.cells]
        assert all(a[2] <= b[0] for a, b in zip(row.cells, row.cells[1:], strict=False)) and lefts == sorted(
            lefts
        )
        assert all(
            box[0] >= 0 and box[2] <= sheet.width and box[1] >= 0 and box[3] <= sheet.height
            for box in row.cells
        )
    assert max(box[3] for box in sheet.source.cells) < min(box[1] for box in sheet.edited.cells)
    for source_cell, edited_cell in zip(sheet.source.cells, sheet.edited.cells, strict=True):
        strip = image.crop((source_cell[0], source_cell[3], source_cell[2], edited_cell[1])).convert("L")
        brightest = strip.getextrema()[1]
        assert isinstance(brightest, int | float) and brightest > 150, "no label between the cells"


def evenly(span: float, count: int) -> list[float]:
    return [span * i / count for i in range(count)]


def edit(source: Path, dest: Path, *, size: tuple[int, int], duration: int = 0) -> Path:
    """The emulator's model: cover-crop to ``size``, colours inverted, the watermark, ``duration``."""
    return render(
        source,
        dest,
        out_w=size[0],
        out_h=size[1],
        duration=duration,
        watermark=True,
        keep_audio=True,
        generate_audio=False,
    ).path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("preview")


# ------------------------------------------------------------------------------------------------- sheets
def test_a_clip_and_its_edit_at_six_instants(work: Path) -> None:
    source = make_clip(work / "plain.mp4", seconds=4, width=640, height=360, fps=FPS, frame_marks=True)
    edited = edit(source, work / "plain-edited.mp4", size=(1280, 720))
    sheet = make_preview(source, edited)
    check_grid(sheet, 6)
    assert sheet.times == pytest.approx(evenly(4.0, 6))
    assert sheet.labels == ("0.0 s", "0.7 s", "1.3 s", "2.0 s", "2.7 s", "3.3 s")
    assert (sheet.source.width, sheet.source.height, sheet.source.duration) == (640, 360, 4.0)
    assert (sheet.edited.width, sheet.edited.height, sheet.edited.duration) == (1280, 720, 4.0)
    image = sheet_image(sheet)
    top = check_row(image, sheet.source, decode_all(source, (256, 144)), sheet.times, marks=True)
    bottom = check_row(image, sheet.edited, decode_all(edited, (256, 144)), sheet.times, marks=True)
    assert top == bottom == [0, 8, 16, 24, 32, 40]


def test_an_output_cut_by_duration_is_compared_with_the_start_of_the_source(work: Path) -> None:
    source = make_clip(work / "long6.mp4", seconds=6, width=480, height=270, fps=FPS, frame_marks=True)
    edited = edit(source, work / "long6-cut.mp4", size=(640, 360), duration=3)
    sheet = make_preview(source, edited)
    check_grid(sheet, 6)
    assert (sheet.source.duration, sheet.edited.duration) == (6.0, 3.0)
    assert sheet.times == pytest.approx(evenly(3.0, 6))
    assert sheet.labels == ("0.0 s", "0.5 s", "1.0 s", "1.5 s", "2.0 s", "2.5 s")
    image = sheet_image(sheet)
    top = check_row(image, sheet.source, decode_all(source, (256, 144)), sheet.times, marks=True)
    bottom = check_row(image, sheet.edited, decode_all(edited, (256, 144)), sheet.times, marks=True)
    assert top == bottom == [0, 6, 12, 18, 24, 30]


@pytest.mark.parametrize("turn", [90, 270])
def test_a_phone_clip_is_shown_upright(work: Path, turn: int) -> None:
    """The source's tkhd says "turn me" (as phones write it); the model's output here is not turned."""
    stored = make_clip(
        work / f"phone-{turn}.mp4", seconds=3, width=480, height=270, fps=FPS, frame_marks=True
    )
    source = work / f"phone-{turn}-rotated.mp4"
    source.write_bytes(mediafiles.patch_tkhd(stored.read_bytes(), rotate=turn))
    edited = edit(stored, work / f"phone-{turn}-edited.mp4", size=(640, 360))
    sheet = make_preview(source, edited)
    check_grid(sheet, 6)
    assert (sheet.source.width, sheet.source.height) == (270, 480)
    image = sheet_image(sheet)
    frames = decode_all(source, (144, 256), turn)
    check_row(image, sheet.source, frames, sheet.times, marks=True, undo=turn)
    check_row(image, sheet.edited, decode_all(edited, (256, 144)), sheet.times, marks=True)


def test_a_9_16_output_of_a_16_9_source(work: Path) -> None:
    source = make_clip(work / "wide.mp4", seconds=4, width=640, height=360, fps=FPS, frame_marks=True)
    edited = edit(source, work / "wide-9x16.mp4", size=(360, 640))
    sheet = make_preview(source, edited)
    check_grid(sheet, 6)
    assert (sheet.edited.width, sheet.edited.height) == (360, 640)
    image = sheet_image(sheet)
    check_row(image, sheet.source, decode_all(source, (256, 144)), sheet.times, marks=True)
    # the crop keeps the middle of the frame: no whole mark, so the cells are told apart by their pixels
    check_row(image, sheet.edited, decode_all(edited, (144, 256)), sheet.times, marks=False)
    # each portrait cell sits in the middle of its column, under its source cell
    for top, bottom in zip(sheet.source.cells, sheet.edited.cells, strict=True):
        assert (top[0] + top[2]) // 2 == (bottom[0] + bottom[2]) // 2


def test_a_24_s_long_clip_stitched_from_three_edited_segments(work: Path) -> None:
    source = make_clip(
        work / "long24.mp4", seconds=24, width=480, height=270, fps=FPS, gop=FPS, frame_marks=True
    )
    segments = split_clip(source, work / "long24-segments")
    assert len(segments) == 3
    parts = [
        StitchPart(edit(s.path, work / f"long24-edited-{s.index}.mp4", size=(640, 360)), s.path)
        for s in segments
    ]
    stitched = stitch(parts, work / "long24-stitched.mp4", audio_setting="origin")
    assert stitched.frames == 24 * FPS
    sheet = make_preview(source, stitched.path, frames=8)
    check_grid(sheet, 8)
    assert sheet.labels == ("0.0 s", "3.0 s", "6.0 s", "9.0 s", "12.0 s", "15.0 s", "18.0 s", "21.0 s")
    image = sheet_image(sheet)
    top = check_row(image, sheet.source, decode_all(source, (256, 144)), sheet.times, marks=True)
    bottom = check_row(image, sheet.edited, decode_all(stitched.path, (256, 144)), sheet.times, marks=True)
    assert top == bottom == [36 * i for i in range(8)]


def test_b_frames_and_sparse_keyframes_every_cell_exact(work: Path) -> None:
    """Instants on keyframes and between them; decoding on from one cell to the next in a GOP
    and seeking past a keyframe both land on the right frame."""
    source = make_clip(
        work / "bframes.mp4",
        seconds=8,
        width=640,
        height=360,
        fps=FPS,
        gop=2 * FPS,
        frame_marks=True,
        x264=B_FRAMES,
    )
    edited = make_clip(
        work / "bframes-out.mp4",
        seconds=8,
        width=320,
        height=180,
        fps=FPS,
        gop=5 * FPS,
        frame_marks=True,
        x264=B_FRAMES,
    )
    with open_input(Path(source)) as ic:
        assert ic.streams.video[0].codec_context.has_b_frames
    source_frames, edited_frames = decode_all(source, (256, 144)), decode_all(edited, (256, 144))
    for count in (3, 12, 17):
        sheet = make_preview(source, edited, frames=count)
        image = sheet_image(sheet)
        top = check_row(image, sheet.source, source_frames, sheet.times, marks=True)
        bottom = check_row(image, sheet.edited, edited_frames, sheet.times, marks=True)
        assert top == bottom == [-(-96 * i // count) for i in range(count)]


def test_b_frames_before_a_cell_that_nothing_refers_to_are_not_decoded(work: Path) -> None:
    """One keyframe: every cell is decoded on from the one before, skipping most B-frames on the way."""
    source = make_clip(
        work / "one-gop.mp4", seconds=8, width=320, height=180, fps=FPS, frame_marks=True, x264=B_FRAMES
    )
    sheet = make_preview(source, source)
    shown = check_row(
        sheet_image(sheet), sheet.source, decode_all(source, (256, 144)), sheet.times, marks=True
    )
    assert shown == [0, 16, 32, 48, 64, 80]
    assert sheet.source.decoded < 81  # decoding every frame up to the last cell's would give 81


@pytest.mark.parametrize("x264", [None, B_FRAMES], ids=["p-frames", "b-frames"])
def test_more_instants_than_frames_repeat_the_frame_shown(work: Path, x264: dict[str, str] | None) -> None:
    source = make_clip(
        work / f"slow-{x264 is None}.mp4",
        seconds=2,
        width=320,
        height=180,
        fps=2,
        frame_marks=True,
        x264=x264,
    )
    sheet = make_preview(source, source, frames=6)
    image = sheet_image(sheet)
    frames = decode_all(source, (256, 144))
    assert check_row(image, sheet.source, frames, sheet.times, marks=True) == [
        0,
        1,
        2,
        2,
        3,
        3,
    ]


def test_anamorphic_pixels_are_shown_at_their_display_width(work: Path) -> None:
    source = make_clip(
        work / "anamorphic.mp4", seconds=2, width=320, height=360, fps=FPS, x264={"x264-params": "sar=2/1"}
    )
    sheet = make_preview(source, source)
    assert (sheet.source.width, sheet.source.height) == (640, 360)
    assert sheet_image(sheet).crop(sheet.source.cells[0]).size == (256, 144)


def test_an_8_1_clip_gets_flat_cells_in_rows_tall_enough_for_the_legend(work: Path) -> None:
    source = make_clip(work / "banner.mp4", seconds=2, width=1920, height=240, fps=4, frame_marks=True)
    sheet = make_preview(source, source)
    check_grid(sheet, 6)
    image = sheet_image(sheet)
    top = check_row(image, sheet.source, decode_all(source, (256, 32)), sheet.times, marks=True)
    assert top == [0, 2, 3, 4, 6, 7]
    # from one row to the next: room for the legend's three lines and the time labels, not just 32 px
    assert sheet.edited.cells[0][1] - sheet.source.cells[0][1] >= 3 * 15 + 20


def test_a_minute_and_more_is_labelled_in_minutes(work: Path) -> None:
    source = make_clip(work / "minutes.mp4", seconds=90, width=320, height=180, fps=2, audio=False)
    sheet = make_preview(source, source)
    assert sheet.labels == ("0:00.0", "0:15.0", "0:30.0", "0:45.0", "1:00.0", "1:15.0")


# ---------------------------------------------------------------------------------------- ranged reads
@pytest.mark.parametrize("faststart", [True, False], ids=["moov-first", "moov-last"])
def test_ranged_reads_fetch_only_the_gops_of_the_cells(work: Path, faststart: bool) -> None:
    """A 30 s result read through `RangeFile` (as over S3): the same sheet as from the path, each block
    fetched once, and only blocks of the boxes around the media and of the cells' GOPs."""
    result = make_clip(
        work / f"ranged-{faststart}.mp4",
        seconds=30,
        width=640,
        height=360,
        fps=FPS,
        gop=FPS,
        frame_marks=True,
        x264={**B_FRAMES, "crf": "12"},
        faststart=faststart,
    )
    size = result.stat().st_size
    block = 16 * 1024
    reader = RecordingReader(result)
    with RangeFile(reader, block_size=block) as file:
        ranged = make_preview(result, file)
    assert ranged == make_preview(result, result)
    fetched = [offset // block for offset, _ in reader.reads]
    assert all(offset % block == 0 and length == block for offset, length in reader.reads)
    assert len(fetched) == len(set(fetched))
    assert set(fetched) <= needed_blocks(result, ranged.times, block)
    assert reader.bytes_read < 0.4 * size, (reader.bytes_read, size)


class RecordingReader(CountingReader):
    """A file's `RangeReader` that remembers every (offset, length) asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(FileRangeReader(path))
        self.reads: list[tuple[int, int]] = []

    def read(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return super().read(offset, length)


def needed_blocks(path: Path, times: Sequence[float], block: int) -> set[int]:
    """The blocks a reader needs at most: the boxes before and after the media (ftyp, moov), and for each
    instant the GOP of its frame in file order (audio between included), up to the next keyframe and
    FFmpeg's read buffer past it (a decoder with B-frames gives a frame out only after later packets)."""
    with open_input(Path(path)) as ic:
        video: Any = ic.streams.video[0]
        tb = Fraction(video.time_base)
        packets = [(p.pos, p.size, p.stream is video, p.is_keyframe, p.pts) for p in ic.demux() if p.size]
    media = (min(p[0] for p in packets), max(p[0] + p[1] for p in packets))
    spans = [(0, media[0]), (media[1], path.stat().st_size)]
    videos = sorted((p for p in packets if p[2]), key=lambda p: p[0])  # decode order
    keyframes = [p for p in videos if p[3]]
    for t in times:
        at = Fraction(t).limit_denominator(10**6)
        target = min((p for p in videos if p[4] * tb >= at), key=lambda p: p[4], default=videos[-1])
        first = max((k for k in keyframes if k[0] <= target[0]), key=lambda k: k[0])
        after = [k for k in keyframes if k[0] > target[0]]
        end = after[0][0] + after[0][1] if after else media[1]
        spans.append((first[0], min(end + READ_BUFFER, media[1])))
    return {b for start, end in spans if end > start for b in range(start // block, (end - 1) // block + 1)}


def test_range_file_is_a_seekable_read_only_file() -> None:
    data = bytes(range(256)) * 40
    reader = CountingReader(BytesRangeReader(data))
    with RangeFile(reader, block_size=1000, blocks=2) as file:
        assert file.readable() and file.seekable() and not file.writable()
        assert file.read(10) == data[:10]
        assert file.seek(-5, io.SEEK_END) == len(data) - 5 and file.read(100) == data[-5:]
        assert file.read(1) == b""
        assert file.seek(995) == 995 and file.read(10) == data[995:1005]  # across two blocks
        assert file.tell() == 1005
        file.seek(-10, io.SEEK_CUR)
        assert file.read(3) == data[995:998]
        calls = reader.calls
        file.seek(1500)
        assert file.read(10) == data[1500:1510] and reader.calls == calls  # block 1 still cached
        with pytest.raises(ValueError, match="before the start"):
            file.seek(-1)
    assert reader.calls == 3 and reader.bytes_read == 1000 + 240 + 1000  # blocks 0, 10 (the last), 1


# ------------------------------------------------------------------------------------------------ errors
def test_not_a_video_is_a_preview_error(work: Path) -> None:
    good = make_clip(work / "good.mp4", seconds=2, width=320, height=180, fps=FPS)
    with pytest.raises(PreviewError, match="the edited video cannot be opened") as caught:
        make_preview(good, io.BytesIO(b"not a video at all" * 100))
    assert caught.value.reason.startswith("the edited video cannot be opened: ")
    with pytest.raises(PreviewError, match="the source file has no video stream"):
        make_preview(io.BytesIO(mediafiles.audio_only()), good)


def test_a_truncated_result_is_a_preview_error(work: Path) -> None:
    good = make_clip(work / "whole.mp4", seconds=4, width=640, height=360, fps=FPS)
    data = good.read_bytes()
    with pytest.raises(PreviewError, match=r"the edited video cannot be decoded at \d+\.\d s"):
        make_preview(good, io.BytesIO(data[: len(data) // 2]))


def test_a_failing_reader_raises_its_own_error(work: Path) -> None:
    """An S3 error is not the video's fault: it reaches the caller as it is (to be retried as I/O)."""

    class Unreachable:
        size = 10**6

        def read(self, offset: int, length: int) -> bytes:
            raise ConnectionError("the bucket is unreachable")

    good = make_clip(work / "fine.mp4", seconds=2, width=320, height=180, fps=FPS)
    with pytest.raises(ConnectionError, match="unreachable"):
        make_preview(good, RangeFile(Unreachable()))


def test_at_least_one_frame() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        make_preview("a.mp4", "b.mp4", frames=0)


def test_frame_marks_survive_the_emulator_edit(work: Path) -> None:
    """The premise of the exact checks above: the model's output keeps readable, inverted marks."""
    source = make_clip(work / "marks.mp4", seconds=2, width=640, height=360, fps=FPS, frame_marks=True)
    assert read_frame_marks(edit(source, work / "marks-edited.mp4", size=(1280, 720))) == list(range(24))


def test_the_bench_child_measures_a_sheet_over_ranged_reads(work: Path) -> None:
    """bench/preview.py's measurement, in process on a small clip (structure only: no timing asserts)."""
    from bench.preview import child

    result = make_clip(work / "bench.mp4", seconds=3, width=320, height=180, fps=FPS, gop=FPS)
    ranged, sheet = child("ranged", str(result)), child("sheet", str(result))
    assert ranged["frame_times"] == sheet["frame_times"] and len(sheet["frame_times"]) == 6
    assert ranged["bytes_read"] == [result.stat().st_size] * 2  # one 1 MiB block holds the whole clip
    assert child("full", str(result))["frames"] == 2 * 3 * FPS
