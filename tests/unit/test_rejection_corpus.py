"""A corpus of bad (and just-good) inputs, run through the checks as the submit use case runs them.

Each case is real bytes: videos from PyAV, images from Pillow, big files sparse on disk. Every limit is
tried on both sides of its bound, and each bad input must be rejected naming exactly the right field(s).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.unit import mediafiles as mf
from wanedit.media import (
    BytesRangeReader,
    FileRangeReader,
    RangeReader,
)
from wanedit.problems import Problem
from wanedit.validation import inspect_request

Source = Callable[[Path], RangeReader]
"""Makes the file (in a temporary folder, for sparse files) and returns a reader over it."""


def data(raw: bytes) -> Source:
    return lambda _tmp: BytesRangeReader(raw)


def clip(**kwargs: Any) -> Source:
    return lambda _tmp: BytesRangeReader(mf.video(**kwargs))


def sized_clip(**tkhd: int) -> Source:
    return lambda _tmp: BytesRangeReader(mf.patch_tkhd(mf.video(), **tkhd))


def big_clip(total: int) -> Source:
    return lambda tmp: FileRangeReader(mf.padded_file(tmp / "big.mp4", mf.video(faststart=True), total))


def big_image(total: int) -> Source:
    return lambda tmp: FileRangeReader(mf.padded_file(tmp / "big.jpg", mf.image("JPEG"), total))


def img(fmt: str = "JPEG", mode: str = "RGB", width: int = 320, height: int = 240, **save: Any) -> Source:
    return data(mf.image(fmt, mode, width, height, **save))


def sidecar(**fields: Any) -> bytes:
    return json.dumps({"prompt": "Make it claymation", **fields}, ensure_ascii=False).encode()


def data_uri(raw: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


@dataclass
class Case:
    sidecar: bytes = field(default_factory=sidecar)
    video: Source = field(default_factory=clip)
    images: dict[str, Source] = field(default_factory=dict)
    video_key: str = "incoming/shoot/clip.mp4"
    sidecar_key: str = "incoming/shoot/clip.json"


def check(case: Case, tmp: Path) -> list[Problem]:
    """The submit use case's own check (`inspect_request`), over local readers instead of S3."""

    def open_image(key: str) -> RangeReader | None:
        return case.images[key](tmp) if key in case.images else None

    _, problems = inspect_request(
        video_key=case.video_key,
        sidecar_key=case.sidecar_key,
        video=case.video(tmp),
        sidecar=BytesRangeReader(case.sidecar),
        open_image=open_image,
    )
    return problems


REF = "incoming/shoot/ref.png"
WITH_REF = sidecar(reference_images=["ref.png"])
PRIVATE = "https://192.168.1.10/jacket.png"


def ref_case(source: Source) -> Case:
    return Case(sidecar=WITH_REF, images={REF: source})


GOOD: dict[str, Case] = {
    "baseline": Case(),
    "video-2.0s": Case(video=clip(frames=20)),
    "video-10.0s": Case(video=clip(frames=100)),
    "video-10.0s-duration-param-10": Case(video=clip(frames=100), sidecar=sidecar(duration=10)),
    "video-with-audio": Case(video=clip(audio=True)),
    "video-mov": Case(video=clip(fmt="mov"), video_key="incoming/shoot/clip.MOV"),
    "video-moov-first": Case(video=clip(faststart=True)),
    "video-240px": Case(video=sized_clip(width=240, height=240)),
    "video-4096px": Case(video=sized_clip(width=4096, height=2160)),
    "video-8:1": Case(video=sized_clip(width=1920, height=240)),
    "video-1:8-rotated": Case(video=sized_clip(width=1920, height=240, rotate=90)),
    "video-100MB": Case(video=big_clip(100_000_000)),
    "prompt-5000-cjk": Case(sidecar=sidecar(prompt="字" * 5000)),
    "prompt-5000-emoji": Case(sidecar=sidecar(prompt="🎬" * 5000)),
    "negative-prompt-500": Case(sidecar=sidecar(negative_prompt="n" * 500)),
    "all-parameters": Case(
        sidecar=sidecar(
            resolution="1080P",
            ratio="3:4",
            duration=2,
            audio_setting="auto",
            prompt_extend=True,
            watermark=False,
            seed=2147483647,
        )
    ),
    "duration-0": Case(sidecar=sidecar(duration=0)),
    "image-png-opaque": ref_case(img("PNG")),
    "image-jpeg": ref_case(img("JPEG")),
    "image-bmp": ref_case(img("BMP")),
    "image-webp-lossy": ref_case(img("WEBP")),
    "image-webp-alpha": ref_case(img("WEBP", "RGBA", lossless=True)),
    "image-240px": ref_case(img("PNG", width=240, height=240)),
    "image-8000px": ref_case(img("PNG", width=8000, height=1000)),
    "image-8:1": ref_case(img("PNG", width=2000, height=250)),
    "image-20MB": ref_case(big_image(20_000_000)),
    "four-images": Case(
        sidecar=sidecar(
            reference_images=[
                "ref.png",
                "incoming/shoot/ref.png",
                "https://example.com/jacket.png",
                data_uri(mf.image("JPEG"), "image/jpeg"),
            ]
        ),
        images={REF: img("PNG")},
    ),
    "odd-legal-keys": Case(video_key="incoming/a b/ü+%20.mp4", sidecar_key="incoming/a b/ü+%20.json"),
    "sidecar-with-bom": Case(sidecar=b"\xef\xbb\xbf" + sidecar()),
}

BAD: dict[str, tuple[Case, list[str]]] = {
    # the video
    "video-1.9s": (Case(video=clip(frames=19)), ["video.duration"]),
    "video-10.1s": (Case(video=clip(frames=101)), ["video.duration"]),
    "video-12.4s-even-with-duration-5": (
        Case(video=clip(frames=124), sidecar=sidecar(duration=5)),
        ["video.duration"],
    ),
    "video-239px-wide": (Case(video=sized_clip(width=239)), ["video.width"]),
    "video-239px-high": (Case(video=sized_clip(height=239)), ["video.height"]),
    "video-4097px-wide": (Case(video=sized_clip(width=4097, height=2160)), ["video.width"]),
    "video-4097px-high-rotated": (
        Case(video=sized_clip(width=4097, height=2160, rotate=270)),
        ["video.height"],
    ),
    "video-9:1": (Case(video=sized_clip(width=2160, height=240)), ["video.aspect_ratio"]),
    "video-100MB+1": (Case(video=big_clip(100_000_001)), ["video.size"]),
    "video-truncated": (Case(video=data(mf.video()[:5000])), ["video.format"]),
    "video-audio-only": (Case(video=data(mf.audio_only())), ["video.tracks"]),
    "video-text-file": (Case(video=data(b"not a video, just text\n")), ["video.format"]),
    "video-0-bytes": (Case(video=data(b"")), ["video.format"]),
    "video-png-named-mp4": (Case(video=data(mf.image("PNG"))), ["video.format"]),
    "video-fragmented": (
        Case(video=clip(movflags="frag_keyframe+empty_moov+default_base_moof")),
        ["video.format"],
    ),
    "duration-param-longer-than-input": (Case(sidecar=sidecar(duration=4)), ["sidecar.duration"]),
    # the sidecar
    "prompt-5001-cjk": (Case(sidecar=sidecar(prompt="字" * 5001)), ["sidecar.prompt"]),
    "prompt-5001-emoji": (Case(sidecar=sidecar(prompt="🎬" * 5001)), ["sidecar.prompt"]),
    "prompt-empty": (Case(sidecar=sidecar(prompt="")), ["sidecar.prompt"]),
    "prompt-missing": (Case(sidecar=b'{"ratio": "1:1"}'), ["sidecar.prompt"]),
    "negative-prompt-501": (Case(sidecar=sidecar(negative_prompt="n" * 501)), ["sidecar.negative_prompt"]),
    "resolution-720p": (Case(sidecar=sidecar(resolution="720p")), ["sidecar.resolution"]),
    "resolution-480P": (Case(sidecar=sidecar(resolution="480P")), ["sidecar.resolution"]),
    "ratio-21:9": (Case(sidecar=sidecar(ratio="21:9")), ["sidecar.ratio"]),
    "audio-setting-mute": (Case(sidecar=sidecar(audio_setting="mute")), ["sidecar.audio_setting"]),
    "duration-1": (Case(sidecar=sidecar(duration=1)), ["sidecar.duration"]),
    "duration-11": (Case(sidecar=sidecar(duration=11)), ["sidecar.duration"]),
    "duration-string": (Case(sidecar=sidecar(duration="5")), ["sidecar.duration"]),
    "duration-5.5": (Case(sidecar=sidecar(duration=5.5)), ["sidecar.duration"]),
    "duration-5.0": (Case(sidecar=sidecar(duration=5.0)), ["sidecar.duration"]),
    "duration-true": (Case(sidecar=sidecar(duration=True)), ["sidecar.duration"]),
    "seed-negative": (Case(sidecar=sidecar(seed=-1)), ["sidecar.seed"]),
    "seed-2^31": (Case(sidecar=sidecar(seed=2147483648)), ["sidecar.seed"]),
    "prompt-extend-string": (Case(sidecar=sidecar(prompt_extend="true")), ["sidecar.prompt_extend"]),
    "watermark-string": (Case(sidecar=sidecar(watermark="false")), ["sidecar.watermark"]),
    "unknown-field": (Case(sidecar=sidecar(size="1280*720")), ["sidecar.size"]),
    "five-images": (
        Case(sidecar=sidecar(reference_images=["a.png", "b.png", "c.png", "d.png", "e.png"])),
        ["sidecar.reference_images"],
    ),
    "deeply-nested": (Case(sidecar=b'{"prompt": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"), ["sidecar"]),
    "not-utf8": (Case(sidecar=b'{"prompt": "\xc3\x28"}'), ["sidecar"]),
    "sidecar-over-1MB": (Case(sidecar=sidecar(prompt="p" * 1_048_576)), ["sidecar"]),
    "duplicate-keys": (Case(sidecar=b'{"prompt": "a", "prompt": "b"}'), ["sidecar.prompt"]),
    "not-json": (Case(sidecar=b"prompt: make it claymation\n"), ["sidecar"]),
    "json-list": (Case(sidecar=b'["make it claymation"]'), ["sidecar"]),
    "bad-sidecar-and-bad-video": (Case(sidecar=b"{", video=data(b"")), ["sidecar", "video.format"]),
    # reference images
    "image-png-alpha": (ref_case(img("PNG", "RGBA")), ["reference_images[0].alpha"]),
    "image-png-trns": (ref_case(img("PNG", "P")), ["reference_images[0].alpha"]),
    "image-239px": (ref_case(img("PNG", width=239, height=240)), ["reference_images[0].width"]),
    "image-8001px": (ref_case(img("PNG", width=8001, height=1001)), ["reference_images[0].width"]),
    "image-9:1": (ref_case(img("PNG", width=2250, height=250)), ["reference_images[0].aspect_ratio"]),
    "image-20MB+1": (ref_case(big_image(20_000_001)), ["reference_images[0].size"]),
    "image-gif": (ref_case(img("GIF", "P")), ["reference_images[0].format"]),
    "image-bmp-small": (ref_case(img("BMP", width=200, height=240)), ["reference_images[0].width"]),
    "image-webp-small": (ref_case(img("WEBP", width=320, height=100)), ["reference_images[0].height"]),
    "image-missing": (Case(sidecar=WITH_REF), ["reference_images[0]"]),
    "image-key-dotdot": (
        Case(sidecar=sidecar(reference_images=["../../secret.png"])),
        ["reference_images[0]"],
    ),
    "data-uri-wrong-mime": (
        Case(sidecar=sidecar(reference_images=[data_uri(mf.image("PNG"), "image/webp")])),
        ["reference_images[0].mime"],
    ),
    "data-uri-bad-base64": (
        Case(sidecar=sidecar(reference_images=["data:image/png;base64,iVBOR$$w0KGgo="])),
        ["reference_images[0].data"],
    ),
    "data-uri-gif-mime": (
        Case(sidecar=sidecar(reference_images=["data:image/gif;base64,R0lGODlh"])),
        ["sidecar.reference_images[0]"],
    ),
    "http-url": (
        Case(sidecar=sidecar(reference_images=["http://example.com/a.png"])),
        ["sidecar.reference_images[0]"],
    ),
    "https-private-ip": (Case(sidecar=sidecar(reference_images=[PRIVATE])), ["sidecar.reference_images[0]"]),
    # keys
    "video-key-dotdot": (Case(video_key="incoming/../edited/clip.mp4"), ["video_key"]),
    "sidecar-key-double-slash": (Case(sidecar_key="incoming//clip.json"), ["sidecar_key"]),
    "key-control-char": (Case(video_key="incoming/clip\r.mp4"), ["video_key"]),
    "key-outside-incoming": (Case(video_key="edited/clip.mp4"), ["video_key"]),
}


def test_the_corpus_is_broad() -> None:
    assert len(BAD) >= 40
    assert len({tuple(fields) for _, fields in BAD.values()}) >= 30


@pytest.mark.parametrize("case", list(GOOD.values()), ids=list(GOOD))
def test_accepted(case: Case, tmp_path: Path) -> None:
    assert check(case, tmp_path) == []


@pytest.mark.parametrize("case, expected", list(BAD.values()), ids=list(BAD))
def test_rejected_naming_the_field(case: Case, expected: list[str], tmp_path: Path) -> None:
    problems = check(case, tmp_path)
    assert sorted(p.field for p in problems) == sorted(expected), problems
    for problem in problems:
        assert problem.fix and problem.limit
        assert len(json.dumps(problem.to_json(), ensure_ascii=False)) < 2000
