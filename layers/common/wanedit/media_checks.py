"""The API's limits on the clip and the reference images, checked on what the probes found.

Each check returns every problem at once, each with the value seen, the limit and the fix
(see `wanedit.validation` for the readings of the reference these apply).
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from wanedit.domain.limits import (
    MAX_ASPECT,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_SIDE,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    MAX_VIDEO_SIDE,
    MB,
    MIN_IMAGE_SIDE,
    MIN_VIDEO_SECONDS,
    MIN_VIDEO_SIDE,
)
from wanedit.media.imageprobe import ImageInfo, probe_image
from wanedit.media.mp4probe import VideoInfo
from wanedit.media.reader import ProbeError
from wanedit.problems import Problem
from wanedit.references import DataUriRef

# Long clips are split into segments by a Lambda function: these bound its /tmp (4 GB) and run time.
LONG_CLIP_MAX_SECONDS = 300.0
LONG_CLIP_MAX_BYTES = 1000 * MB

ImageFinding = ImageInfo | ProbeError | Literal["missing"]
"""What the caller found at a bucket key: the probe's result, its error, or no object at all."""


def check_video(video: VideoInfo | ProbeError, *, long_clip: bool = False) -> list[Problem]:
    """Problems of the input video against the API's limits (format, track, duration, size, pixels).

    `long_clip`: the clip may be split (sidecar ``"long_clip": "split"``), so the long-clip bounds
    replace the 10 s and 100 MB of a single task when it is longer than 10 s.
    """
    if isinstance(video, ProbeError):
        return [
            Problem(
                field="video.format",
                value=video.reason,
                limit="an MP4 or MOV file",
                fix=f"the video could not be read: {video.reason}",
            )
        ]
    problems = []
    duration = video.duration_s
    splitting = long_clip and duration > MAX_VIDEO_SECONDS
    if splitting:
        problems += _long_clip_problems(video)
    elif video.size_bytes > MAX_VIDEO_BYTES:
        problems.append(
            _size_problem("video.size", video.size_bytes, MAX_VIDEO_BYTES, "compress or shorten it")
        )
    if not video.has_video:
        what = "only audio" if video.has_audio else "no video track"
        problems.append(
            Problem(
                field="video.tracks",
                value=what,
                limit="a video track",
                fix=f"the file has {what}; upload a video (MP4 or MOV with a picture track)",
            )
        )
        return problems
    if duration > MAX_VIDEO_SECONDS and not splitting:
        fix = (
            f"video is {seconds_text(duration)} s; the API accepts 2-10 s — trim the clip to 10 s or less "
            '(setting `duration` only shortens the output), or add "long_clip": "split" to the '
            "sidecar to have it edited in 2-10 s segments and stitched back"
        )
        problems.append(Problem(field="video.duration", value=duration, limit="2-10 s", fix=fix))
    elif duration < MIN_VIDEO_SECONDS:
        fix = f"video is {seconds_text(duration)} s; the API accepts 2-10 s — use a clip of at least 2 s"
        problems.append(Problem(field="video.duration", value=duration, limit="2-10 s", fix=fix))
    problems += _pixel_problems("video", video.width, video.height, MIN_VIDEO_SIDE, MAX_VIDEO_SIDE)
    return problems


def _long_clip_problems(video: VideoInfo) -> list[Problem]:
    """A clip to be split: its length and size bounds, and segments the API will take (<= 100 MB)."""
    problems = []
    duration = video.duration_s
    if duration > LONG_CLIP_MAX_SECONDS:
        problems.append(
            Problem(
                field="video.duration",
                value=duration,
                limit=f'2-{LONG_CLIP_MAX_SECONDS:.0f} s with "long_clip": "split"',
                fix=f"video is {seconds_text(duration)} s; split clips may be up to "
                f"{LONG_CLIP_MAX_SECONDS:.0f} s — cut it into parts of at most that length",
            )
        )
    if video.size_bytes > LONG_CLIP_MAX_BYTES:
        problems.append(
            _size_problem("video.size", video.size_bytes, LONG_CLIP_MAX_BYTES, "compress or shorten it")
        )
    per_segment = video.size_bytes * MAX_VIDEO_SECONDS / duration
    if per_segment > MAX_VIDEO_BYTES:
        problems.append(
            Problem(
                field="video.bitrate",
                value=f"{video.size_bytes * 8 / duration / 1e6:.1f} Mbit/s",
                limit=f"10 s segments of at most {MAX_VIDEO_BYTES // MB} MB "
                f"({MAX_VIDEO_BYTES * 8 / MAX_VIDEO_SECONDS / 1e6:.0f} Mbit/s)",
                fix=f"each 10 s of this clip is about {per_segment / MB:.0f} MB, over the API's "
                f"{MAX_VIDEO_BYTES // MB} MB per task — re-encode it at a lower bitrate",
            )
        )
    return problems


def check_image(info: ImageInfo, field: str) -> list[Problem]:
    """Problems of one reference image (``field`` is e.g. ``reference_images[2]``)."""
    problems = []
    if info.format == "PNG" and info.has_alpha:
        problems.append(
            Problem(
                field=f"{field}.alpha",
                value="PNG with an alpha channel",
                limit="PNG without an alpha channel (transparency)",
                fix="the API does not support a PNG alpha channel; flatten it / export without "
                "transparency, or save it as JPEG",
            )
        )
    if info.size_bytes > MAX_IMAGE_BYTES:
        problems.append(
            _size_problem(f"{field}.size", info.size_bytes, MAX_IMAGE_BYTES, "compress or resize it")
        )
    problems += _pixel_problems(field, info.width, info.height, MIN_IMAGE_SIDE, MAX_IMAGE_SIDE)
    return problems


def finding_problems(finding: ImageFinding, field: str, key: str) -> list[Problem]:
    if isinstance(finding, ImageInfo):
        return check_image(finding, field)
    if isinstance(finding, ProbeError):
        return [
            Problem(
                field=f"{field}.format",
                value=key,
                limit="JPEG, PNG, BMP or WEBP",
                fix=f"{key} could not be read as an image: {finding.reason}",
            )
        ]
    return [
        Problem(
            field=field,
            value=key,
            limit="an object in this bucket",
            fix=f"there is no object at {key}; upload it or correct the key (keys are case-sensitive)",
        )
    ]


def data_uri_problems(ref: DataUriRef, field: str) -> list[Problem]:
    if len(ref.payload) * 3 // 4 > MAX_IMAGE_BYTES + 2:
        return [_size_problem(f"{field}.size", len(ref.payload) * 3 // 4, MAX_IMAGE_BYTES, "compress it")]
    try:
        data = base64.b64decode(ref.payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        return [
            Problem(
                field=f"{field}.data",
                value=f"data:{ref.mime};base64,{ref.payload}",
                limit="valid base64 (RFC 4648, with padding, no line breaks)",
                fix=f"the data: URI's base64 is invalid ({exc}); encode the file again, on one line",
            )
        ]
    try:
        info = probe_image(data, len(data))
    except ProbeError as exc:
        return [
            Problem(
                field=f"{field}.format",
                value=f"data:{ref.mime}",
                limit="JPEG, PNG, BMP or WEBP",
                fix=f"the data: URI is not a usable image: {exc.reason}",
            )
        ]
    problems = check_image(info, field)
    if info.mime != ref.mime:
        problems.insert(
            0,
            Problem(
                field=f"{field}.mime",
                value=ref.mime,
                limit="the MIME type of the encoded file",
                fix=f"the data: URI says {ref.mime} but holds a {info.format} image; "
                f"write data:{info.mime};base64,...",
            ),
        )
    return problems


def _pixel_problems(field: str, width: int, height: int, least: int, most: int) -> list[Problem]:
    problems = []
    limit = f"{least}-{most} px"
    for side, pixels in (("width", width), ("height", height)):
        if not least <= pixels <= most:
            change = "upscale or pad" if pixels < least else "downscale"
            problems.append(
                Problem(
                    field=f"{field}.{side}",
                    value=pixels,
                    limit=limit,
                    fix=f"{side} is {pixels} px ({width}x{height}); the API accepts {limit} — {change} it",
                )
            )
    long_side, short_side = max(width, height), min(width, height)
    if short_side > 0 and long_side > MAX_ASPECT * short_side:
        problems.append(
            Problem(
                field=f"{field}.aspect_ratio",
                value=f"{width}x{height}",
                limit="1:8 to 8:1",
                fix=f"{width}x{height} is {long_side / short_side:.2f}:1; the API accepts 1:8 to 8:1 "
                "— crop or pad it",
            )
        )
    return problems


def _size_problem(field: str, size: int, most: int, advice: str) -> Problem:
    return Problem(
        field=field,
        value=size,
        limit=f"at most {most // MB} MB ({most:,} bytes)",
        fix=f"the file is {size:,} bytes; the API accepts at most {most // MB} MB ({most:,} bytes) "
        f"— {advice}",
    )


def seconds_text(value: float) -> str:
    return f"{value:.6g}"
