"""validate_request and friends: each API limit, the duration rule, references, keys, the report."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from tests.unit import mediafiles as mf
from tests.unit.fakes import make_job
from wanedit.domain.limits import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES
from wanedit.media import BytesRangeReader, ImageInfo, ProbeError, VideoInfo, probe_image, probe_video
from wanedit.media_checks import check_image, check_video
from wanedit.problems import Problem, safe_value
from wanedit.reports import rejection_report
from wanedit.sidecar import Sidecar
from wanedit.validation import (
    check_keys,
    image_keys,
    resolve_key,
    validate_request,
)

SIDECAR_KEY = "incoming/shoot/clip.json"
GOOD_VIDEO = VideoInfo("mp4", "isom", 5.0, 1280, 720, True, True, "avc1", 3_000_000)
GOOD_IMAGE = ImageInfo("JPEG", "image/jpeg", 800, 600, False, 200_000)


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def video(**changes: object) -> VideoInfo:
    return dataclasses.replace(GOOD_VIDEO, **changes)  # type: ignore[arg-type]


def image(**changes: object) -> ImageInfo:
    return dataclasses.replace(GOOD_IMAGE, **changes)  # type: ignore[arg-type]


def test_a_good_request_has_no_problems() -> None:
    sidecar = Sidecar(prompt="p", duration=5, reference_images=["jacket.png"])
    assert (
        validate_request(
            sidecar, GOOD_VIDEO, {"incoming/shoot/jacket.png": GOOD_IMAGE}, sidecar_key=SIDECAR_KEY
        )
        == []
    )


def test_real_file_passes() -> None:
    info = probe_video(BytesRangeReader(mf.video(frames=30)))
    assert check_video(info) == []


# --------------------------------------------------------------------------- video


@pytest.mark.parametrize(
    "seconds, ok", [(1.9, False), (1.999, False), (2.0, True), (10.0, True), (10.001, False), (12.4, False)]
)
def test_video_duration_2_to_10_inclusive(seconds: float, ok: bool) -> None:
    assert fields(check_video(video(duration_s=seconds))) == ([] if ok else ["video.duration"])


def test_long_input_is_refused_even_with_duration_set() -> None:
    problems = validate_request(
        Sidecar(prompt="p", duration=5), video(duration_s=12.4), sidecar_key=SIDECAR_KEY
    )
    [problem] = problems
    assert problem.field == "video.duration"
    assert problem.fix == (
        "video is 12.4 s; the API accepts 2-10 s — trim the clip to 10 s or less "
        '(setting `duration` only shortens the output), or add "long_clip": "split" to the '
        "sidecar to have it edited in 2-10 s segments and stitched back"
    )


@pytest.mark.parametrize("seconds", [10.5, 27.0, 300.0])
def test_split_long_clips_pass_up_to_the_long_clip_bounds(seconds: float) -> None:
    sidecar = Sidecar(prompt="p", long_clip="split")
    assert validate_request(sidecar, video(duration_s=seconds), sidecar_key=SIDECAR_KEY) == []


def test_a_split_clip_over_300_s_is_refused_naming_the_bound() -> None:
    sidecar = Sidecar(prompt="p", long_clip="split")
    [problem] = validate_request(sidecar, video(duration_s=300.5), sidecar_key=SIDECAR_KEY)
    assert problem.field == "video.duration" and "300" in problem.limit


def test_a_split_clip_may_exceed_100_mb_but_not_its_segments() -> None:
    sidecar = Sidecar(prompt="p", long_clip="split")
    big_but_fine = video(duration_s=60.0, size_bytes=500_000_000)  # 10 s segments of ~83 MB
    assert validate_request(sidecar, big_but_fine, sidecar_key=SIDECAR_KEY) == []
    too_dense = video(duration_s=20.0, size_bytes=300_000_000)  # 10 s segments of 150 MB
    fields = [p.field for p in validate_request(sidecar, too_dense, sidecar_key=SIDECAR_KEY)]
    assert fields == ["video.bitrate"]
    too_big = video(duration_s=200.0, size_bytes=1_200_000_000)
    fields = [p.field for p in validate_request(sidecar, too_big, sidecar_key=SIDECAR_KEY)]
    assert fields == ["video.size"]


def test_a_short_clip_with_split_keeps_the_single_task_limits() -> None:
    sidecar = Sidecar(prompt="p", long_clip="split")
    fields = [
        p.field
        for p in validate_request(
            sidecar, video(duration_s=9.0, size_bytes=120_000_000), sidecar_key=SIDECAR_KEY
        )
    ]
    assert fields == ["video.size"]
    assert [p.field for p in validate_request(sidecar, video(duration_s=1.5), sidecar_key=SIDECAR_KEY)] == [
        "video.duration"
    ]


def test_duration_cannot_be_combined_with_splitting() -> None:
    sidecar = Sidecar(prompt="p", long_clip="split", duration=5)
    [problem] = validate_request(sidecar, video(duration_s=27.0), sidecar_key=SIDECAR_KEY)
    assert problem.field == "sidecar.duration" and "split" in problem.limit


@pytest.mark.parametrize("duration, ok", [(0, True), (5, True), (6, False), (10, False)])
def test_duration_parameter_cannot_extend_the_input(duration: int, ok: bool) -> None:
    problems = validate_request(
        Sidecar(prompt="p", duration=duration), video(duration_s=5.5), sidecar_key=SIDECAR_KEY
    )
    assert fields(problems) == ([] if ok else ["sidecar.duration"])
    if not ok:
        assert "set it to 5 or less" in problems[0].fix


@pytest.mark.parametrize(
    "width, height, bad",
    [
        (240, 240, []),
        (239, 240, ["video.width"]),
        (240, 239, ["video.height"]),
        (4096, 2160, []),
        (4097, 2160, ["video.width"]),
        (2160, 4097, ["video.height"]),
        (1920, 240, []),  # 8:1
        (240, 1920, []),  # 1:8
        (2160, 240, ["video.aspect_ratio"]),  # 9:1
        (241, 1929, ["video.aspect_ratio"]),  # just over 1:8
    ],
)
def test_video_pixels(width: int, height: int, bad: list[str]) -> None:
    assert fields(check_video(video(width=width, height=height))) == bad


@pytest.mark.parametrize("size, ok", [(MAX_VIDEO_BYTES, True), (MAX_VIDEO_BYTES + 1, False)])
def test_video_size_100_mb(size: int, ok: bool) -> None:
    problems = check_video(video(size_bytes=size))
    assert fields(problems) == ([] if ok else ["video.size"])
    if not ok:
        assert "100,000,001 bytes" in problems[0].fix and "(100,000,000 bytes)" in problems[0].fix


def test_audio_only_is_refused() -> None:
    [problem] = check_video(video(has_video=False, width=0, height=0, video_codec=None))
    assert (problem.field, problem.value) == ("video.tracks", "only audio")


def test_probe_error_is_a_format_problem() -> None:
    [problem] = check_video(ProbeError("not an MP4 or MOV file (it starts with b'hello')"))
    assert problem.field == "video.format" and "hello" in problem.fix


def test_every_video_problem_at_once() -> None:
    bad = video(duration_s=11.0, width=5000, height=200, size_bytes=MAX_VIDEO_BYTES + 5)
    assert fields(check_video(bad)) == [
        "video.size",
        "video.duration",
        "video.width",
        "video.height",
        "video.aspect_ratio",
    ]


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    "changes, bad",
    [
        ({}, []),
        ({"width": 240, "height": 240}, []),
        ({"width": 239}, [".width"]),
        ({"width": 8000, "height": 1000}, []),
        ({"width": 8001, "height": 1001}, [".width"]),
        ({"width": 2000, "height": 250}, []),
        ({"width": 2000, "height": 249}, [".aspect_ratio"]),
        ({"size_bytes": MAX_IMAGE_BYTES}, []),
        ({"size_bytes": MAX_IMAGE_BYTES + 1}, [".size"]),
        ({"format": "PNG", "mime": "image/png", "has_alpha": True}, [".alpha"]),
        ({"format": "PNG", "mime": "image/png"}, []),
        ({"format": "WEBP", "mime": "image/webp", "has_alpha": True}, []),
        ({"format": "BMP", "mime": "image/bmp", "has_alpha": True}, []),
    ],
)
def test_image_limits(changes: dict[str, object], bad: list[str]) -> None:
    assert fields(check_image(image(**changes), "reference_images[1]")) == [
        f"reference_images[1]{b}" for b in bad
    ]


def test_png_alpha_fix_says_flatten() -> None:
    [problem] = check_image(probe_image(mf.image("PNG", "RGBA"), 10**4), "reference_images[0]")
    assert "does not support" in problem.fix and "without transparency" in problem.fix


def test_bucket_references_resolve_and_report_missing_and_unreadable() -> None:
    sidecar = Sidecar(
        prompt="p",
        reference_images=["incoming/refs/a.png", "b.png", "./sub/c.png", "d.png"],
    )
    assert image_keys(sidecar, SIDECAR_KEY) == [
        "incoming/refs/a.png",
        "incoming/shoot/b.png",
        "incoming/shoot/sub/c.png",
        "incoming/shoot/d.png",
    ]
    found = {
        "incoming/refs/a.png": GOOD_IMAGE,
        "incoming/shoot/b.png": "missing",
        "incoming/shoot/sub/c.png": ProbeError("a GIF image"),
    }
    problems = validate_request(sidecar, GOOD_VIDEO, found, sidecar_key=SIDECAR_KEY)  # type: ignore[arg-type]
    assert fields(problems) == ["reference_images[1]", "reference_images[2].format", "reference_images[3]"]
    assert "no object at incoming/shoot/b.png" in problems[0].fix


@pytest.mark.parametrize(
    "ref, key",
    [
        ("incoming/refs/a.png", "incoming/refs/a.png"),
        ("a.png", "incoming/shoot/a.png"),
        ("./a.png", "incoming/shoot/a.png"),
        ("refs/a b+%.png", "incoming/shoot/refs/a b+%.png"),
        ("edited/x.png", "incoming/shoot/edited/x.png"),
    ],
)
def test_resolve_key(ref: str, key: str) -> None:
    assert resolve_key(ref, SIDECAR_KEY) == key


def test_resolve_key_at_the_top_of_incoming() -> None:
    assert resolve_key("a.png", "incoming/clip.json") == "incoming/a.png"


@pytest.mark.parametrize(
    "ref", ["../secret.png", "refs/../../x.png", "refs//x.png", "a\\b.png", "refs/./x.png"]
)
def test_references_cannot_escape(ref: str) -> None:
    sidecar = Sidecar(prompt="p", reference_images=[ref])
    assert image_keys(sidecar, SIDECAR_KEY) == []
    assert fields(validate_request(sidecar, GOOD_VIDEO, sidecar_key=SIDECAR_KEY)) == ["reference_images[0]"]


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    "uri, bad",
    [
        pytest.param(_data_uri(mf.image("JPEG"), "image/jpeg"), [], id="jpeg"),
        pytest.param(_data_uri(mf.image("WEBP"), "image/webp"), [], id="webp"),
        pytest.param(_data_uri(mf.image("BMP"), "image/bmp"), [], id="bmp"),
        pytest.param(_data_uri(mf.image("PNG"), "image/jpeg"), [".mime"], id="png-called-jpeg"),
        pytest.param(_data_uri(mf.image("PNG", "RGBA"), "image/png"), [".alpha"], id="png-alpha"),
        pytest.param(
            _data_uri(mf.image("PNG", "RGB", 100, 100), "image/png"), [".width", ".height"], id="small"
        ),
        pytest.param("data:image/png;base64,iVBORw0KGgo!!", [".data"], id="bad-base64"),
        pytest.param("data:image/png;base64,iVBORw0KGg", [".data"], id="bad-padding"),
        pytest.param(_data_uri(b"GIF89a" + bytes(40), "image/png"), [".format"], id="gif-bytes"),
    ],
)
def test_data_uris_are_decoded_and_probed(uri: str, bad: list[str]) -> None:
    problems = validate_request(
        Sidecar(prompt="p", reference_images=[uri]), GOOD_VIDEO, sidecar_key=SIDECAR_KEY
    )
    assert fields(problems) == [f"reference_images[0]{b}" for b in bad]
    for problem in problems:
        assert len(json.dumps(problem.to_json())) < 1000  # never the payload


def test_data_uri_over_20_mb_is_refused_before_decoding() -> None:
    payload = "A" * (MAX_IMAGE_BYTES // 3 * 4 + 8)
    sidecar = Sidecar.model_construct(prompt="p", reference_images=[f"data:image/png;base64,{payload}"])
    assert fields(validate_request(sidecar, GOOD_VIDEO, sidecar_key=SIDECAR_KEY)) == [
        "reference_images[0].size"
    ]


def test_https_references_are_not_fetched_or_probed() -> None:
    sidecar = Sidecar(prompt="p", reference_images=["https://example.com/a.png"])
    assert validate_request(sidecar, GOOD_VIDEO, {}, sidecar_key=SIDECAR_KEY) == []
    assert image_keys(sidecar, SIDECAR_KEY) == []


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "key",
    [
        "incoming/a b/clip.mp4",
        "incoming/ünï/кадр 1.mp4",
        "incoming/a+b%20c.mp4",
        "incoming/x/y/z.MOV",
        "incoming/..a.mp4",
    ],
)
def test_odd_but_legal_keys(key: str) -> None:
    assert check_keys(key, key.rsplit(".", 1)[0] + ".json") == []


@pytest.mark.parametrize(
    "key, reason",
    [
        ("incoming/../edited/x.mp4", ". or .. path segment"),
        ("incoming/a/./x.mp4", ". or .. path segment"),
        ("incoming//x.mp4", "empty path segment"),
        ("incoming/a\\x.mp4", "backslash"),
        ("incoming/a\nb.mp4", "control character"),
        ("incoming/a\x7fb.mp4", "control character"),
        ("other/x.mp4", "not under incoming/"),
        ("incoming/" + "é" * 510 + ".mp4", "longer than 1024 bytes"),
    ],
)
def test_keys_refused(key: str, reason: str) -> None:
    [problem] = check_keys(key, "incoming/ok.json")
    assert problem.field == "video_key" and reason in problem.fix


def test_key_of_exactly_1024_bytes_is_fine() -> None:
    key = "incoming/" + "a" * (1024 - len("incoming/") - 4) + ".mp4"
    assert len(key.encode()) == 1024 and check_keys(key, "incoming/a.json") == []


def test_custom_prefix() -> None:
    assert check_keys("uploads/a.mp4", "uploads/a.json", incoming_prefix="uploads/") == []
    assert fields(check_keys("incoming/a.mp4", "uploads/a.json", incoming_prefix="uploads/")) == ["video_key"]


# --------------------------------------------------------------------------- report and Problem


def test_rejection_report_is_json_and_says_how_to_retry() -> None:
    ratio = Problem(field="sidecar.ratio", value="21:9", limit="...", fix="use 16:9")
    problems = [*check_video(video(duration_s=12.4)), ratio]
    report = rejection_report(make_job(stem="a", job_id="j1"), problems, now=0.0)
    assert json.loads(json.dumps(report)) == report
    assert report["status"] == "REJECTED" and report["job_id"] == "j1"
    assert (report["video_key"], report["sidecar_key"]) == ("incoming/a.mp4", "incoming/a.json")
    assert report["summary"] == "Not sent to the API: 2 problems found (video.duration, sidecar.ratio)."
    assert report["how_to_retry"] == "Fix the files and upload them again; a re-upload starts a new job."
    assert [p["field"] for p in report["problems"]] == ["video.duration", "sidecar.ratio"]


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        (12.4, 12.4),
        (float("nan"), "nan"),
        (b"\x00\x01", "<2 bytes>"),
        ("x" * 500, "x" * 120 + "… (500 characters)"),
        ("data:image/png;base64," + "A" * 10_000, "data:image/png;base64,… (10000 characters of data)"),
        ({"a": (1, 2)}, {"a": [1, 2]}),
        (ValueError("boom"), "ValueError('boom')"),
    ],
)
def test_problem_values_are_json_safe_and_short(value: object, expected: object) -> None:
    assert safe_value(value) == expected
    assert Problem(field="f", value=value, limit="l", fix="x").value == expected
