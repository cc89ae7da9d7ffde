"""The emulator really edits the video: table sizes, default ratio, duration, watermark, audio, limits."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests
from PIL import Image, ImageChops, ImageOps, ImageStat

from local.emulator import Emulator
from local.emulator.contract import FAILED_OUTPUT_FIELDS
from local.samplemedia import make_clip, make_image, probe, read_frame
from tests import emulator_fixtures as ef
from tests.emulator_fixtures import Api, MediaServer
from wanedit.domain.limits import OUTPUT_SIZES

clock, emu, media = ef.clock, ef.emu, ef.media  # fixtures


def _run(
    emu: Emulator, media_url: str, prompt: str = "Invert it", extra: list | None = None, **params: Any
) -> dict:
    api = Api(emu)
    tid = api.create(media_url, prompt, extra, **params)
    return api.finish(tid)


def _video(emu: Emulator, media_url: str, **params: Any) -> tuple[dict, bytes]:
    q = _run(emu, media_url, **params)
    assert q["output"]["task_status"] == "SUCCEEDED", q
    data = requests.get(q["output"]["video_url"], timeout=10).content
    return q, data


CELLS = [(res, ratio, wh) for res, table in OUTPUT_SIZES.items() for ratio, wh in table.items()]


@pytest.mark.parametrize(("resolution", "ratio", "size"), CELLS, ids=[f"{r}-{a}" for r, a, _ in CELLS])
def test_every_resolution_ratio_cell_has_the_table_size(
    emu: Emulator, media: MediaServer, resolution: str, ratio: str, size: tuple[int, int]
) -> None:
    q, data = _video(emu, media.url("clip.mp4"), resolution=resolution, ratio=ratio)
    info = probe(data)
    assert (info["width"], info["height"]) == size
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["fps"] == 12.0
    assert q["usage"]["SR"] == int(resolution[:-1])


@pytest.mark.parametrize(
    ("clip", "size"),
    [("clip.mp4", (1104, 832)), ("portrait.mp4", (720, 1280)), ("square.mov", (960, 960))],
)
def test_default_ratio_is_closest_to_input_and_edit_is_visible(
    emu: Emulator, media: MediaServer, clip: str, size: tuple[int, int]
) -> None:
    _q, data = _video(emu, media.url(clip), resolution="720P")
    assert (probe(data)["width"], probe(data)["height"]) == size
    src = ImageOps.fit(read_frame(media.root / clip, 3), size)
    out = read_frame(data, 3)
    inverted_err = ImageStat.Stat(ImageChops.difference(ImageOps.invert(src), out)).mean
    plain_err = ImageStat.Stat(ImageChops.difference(src, out)).mean
    assert max(inverted_err) < 25 < min(plain_err), (inverted_err, plain_err)  # colour inversion


def test_default_resolution_is_1080p(emu: Emulator, media: MediaServer) -> None:
    q, data = _video(emu, media.url("clip.mp4"))
    assert (probe(data)["width"], probe(data)["height"]) == (1648, 1248) and q["usage"]["SR"] == 1080


@pytest.mark.parametrize(("duration", "expected"), [(2, 2.0), (5, 3.0), (0, 3.0)])
def test_duration_truncates_never_extends(
    emu: Emulator, media: MediaServer, duration: int, expected: float
) -> None:
    q, data = _video(
        emu, media.url("clip3.mp4"), resolution="720P", duration=duration, audio_setting="origin"
    )
    info = probe(data)
    assert info["duration_s"] == pytest.approx(expected, abs=0.01)
    assert info["frame_count"] == round(expected * 12)
    assert info["has_audio"] and info["audio_duration_s"] == pytest.approx(expected, abs=0.1)
    assert q["usage"]["input_video_duration"] == 3.0
    assert q["usage"]["output_video_duration"] == expected
    assert q["usage"]["duration"] == 3.0 + expected


def _region_diff(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    return max(ImageStat.Stat(ImageChops.difference(a.crop(box), b.crop(box))).mean)


def test_watermark_in_lower_right_only_when_asked(emu: Emulator, media: MediaServer) -> None:
    _, with_wm = _video(emu, media.url("clip.mp4"), resolution="720P", ratio="16:9", watermark=True)
    _, without = _video(emu, media.url("clip.mp4"), resolution="720P", ratio="16:9", watermark=False)
    a, b = read_frame(with_wm, 0), read_frame(without, 0)
    w, h = a.size
    assert _region_diff(a, b, (w * 3 // 4, h * 7 // 8, w, h)) > 20  # "AI Generated" box
    assert _region_diff(a, b, (0, 0, w // 2, h // 2)) < 3  # elsewhere the same


def test_audio_origin_kept_and_auto_generates_for_sound_prompts(emu: Emulator, media: MediaServer) -> None:
    _, data = _video(emu, media.url("clip.mp4"), resolution="720P", audio_setting="origin")
    info = probe(data)
    assert info["has_audio"] and info["audio_codec"] == "aac"
    assert info["audio_duration_s"] == pytest.approx(info["duration_s"], abs=0.1)
    # auto + a silent input + a prompt about music: audio is generated
    q = _run(emu, media.url("portrait.mp4"), "Add upbeat music", resolution="720P")
    info = probe(requests.get(q["output"]["video_url"], timeout=10).content)
    assert info["has_audio"] and info["audio_duration_s"] == pytest.approx(2.0, abs=0.1)
    # auto without a sound prompt on a silent input: still silent
    _, data = _video(emu, media.url("portrait.mp4"), resolution="720P")
    assert not probe(data)["has_audio"]


def _bad(media: MediaServer, name: str, **clip: Any) -> str:
    make_clip(media.root / name, **clip)
    return media.url(name)


@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [
        ("too long", "InvalidParameter", "The video duration 12.00s exceeds the limit of [2, 10]s"),
        ("too short", "InvalidParameter", "The video duration 1.00s exceeds the limit of [2, 10]s"),
        ("too small", "InvalidParameter", "resolution 200x240"),
        ("too thin", "InvalidParameter", "aspect ratio"),
        ("not a video", "InvalidParameter.DataInspection", "format"),
        ("404", "InvalidParameter.DataInspection", "HTTP 404"),
        ("remote host", "InvalidParameter.DataInspection", "loopback"),
        ("image alpha", "InvalidParameter", "alpha"),
        ("image small", "InvalidParameter", "resolution 200x300"),
        ("image mime mismatch", "InvalidParameter", "does not match"),
        ("image gif", "InvalidParameter.DataInspection", "GIF"),
    ],
)
def test_bad_media_fails_the_task_naming_the_problem(
    emu: Emulator, media: MediaServer, case: str, code: str, needle: str
) -> None:
    video = media.url("clip.mp4")
    extra: list = []
    if case == "too long":
        video = _bad(media, "long.mp4", seconds=12, width=240, height=240, fps=4, audio=False)
    elif case == "too short":
        video = _bad(media, "short.mp4", seconds=1, width=240, height=240, audio=False)
    elif case == "too small":
        video = _bad(media, "small.mp4", seconds=2, width=200, height=240, audio=False)
    elif case == "too thin":
        video = _bad(media, "thin.mp4", seconds=2, width=2000, height=240, fps=4, audio=False)
    elif case == "not a video":
        video = media.put("fake.mp4", make_image(None, width=300, height=300))
    elif case == "404":
        video = media.url("missing.mp4")
    elif case == "remote host":
        video = "https://example.com/v.mp4"
    elif case == "image alpha":
        extra = [
            {
                "type": "reference_image",
                "url": media.put("a.png", make_image(None, width=300, height=300, alpha=True)),
            }
        ]
    elif case == "image small":
        extra = [
            {"type": "reference_image", "url": media.put("s.png", make_image(None, width=200, height=300))}
        ]
    elif case == "image mime mismatch":
        png = make_image(None, width=300, height=300)
        extra = [
            {"type": "reference_image", "url": "data:image/jpeg;base64," + base64.b64encode(png).decode()}
        ]
    elif case == "image gif":
        extra = [{"type": "reference_image", "url": media.put("g.gif", _gif())}]
    q = _run(emu, video, extra=extra, resolution="720P")
    out = q["output"]
    assert out["task_status"] == "FAILED", out
    assert set(out) == FAILED_OUTPUT_FIELDS
    assert out["code"] == code and needle in out["message"], out
    assert "usage" not in q


def _gif() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(buf, format="GIF")
    return buf.getvalue()


def test_samplemedia_clip_and_probe(tmp_path: Any) -> None:
    p = make_clip(
        tmp_path / "a.mov", seconds=2.5, width=320, height=180, fps=10, container="mov", faststart=False
    )
    head = p.read_bytes()[:12]
    assert head[4:8] == b"ftyp"
    info = probe(p)
    assert (info["width"], info["height"], info["frame_count"], info["fps"]) == (320, 180, 25, 10.0)
    assert info["duration_s"] == pytest.approx(2.5) and info["has_audio"]
    assert info["audio_duration_s"] == pytest.approx(2.5, abs=0.05)
    assert read_frame(p, 0) != read_frame(p, 20)  # moving content
    fast = make_clip(tmp_path / "f.mp4", seconds=2, width=240, height=240, audio=False)
    data = fast.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart
    slow = make_clip(
        tmp_path / "s.mp4", seconds=2, width=240, height=240, audio=False, faststart=False
    ).read_bytes()
    assert slow.find(b"moov") > slow.find(b"mdat")
    for fmt, magic in (("PNG", b"\x89PNG"), ("JPEG", b"\xff\xd8"), ("BMP", b"BM"), ("WEBP", b"RIFF")):
        assert make_image(tmp_path / f"i.{fmt}", width=250, height=260, fmt=fmt).startswith(magic)
    assert Image.open(tmp_path / "i.PNG").size == (250, 260)


def test_input_through_a_moto_s3_presigned_url(emu: Emulator, media: MediaServer) -> None:
    """The worker GETs the presigned URL exactly as given (SigV4 query string intact), like the service."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="inbox")
        s3.put_object(Bucket="inbox", Key="incoming/a b.mp4", Body=(media.root / "clip.mp4").read_bytes())
        url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "inbox", "Key": "incoming/a b.mp4"}, ExpiresIn=900
        )
        assert "Signature" in url
        _q, data = _video(emu, url, resolution="720P", ratio="1:1")
        assert (probe(data)["width"], probe(data)["height"]) == (960, 960)
        assert emu.counters["created_bodies"][0]["input"]["media"][0]["url"] == url
    finally:
        server.stop()
