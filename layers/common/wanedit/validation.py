"""Is this request one the API will accept? Every limit of the reference, checked before any call.

The submit use case probes the video (`wanedit.media.probe_video`) and each bucket-key reference image
(`wanedit.media.probe_image_reader`), then calls `validate_request`; a non-empty result becomes a
rejection report in ``failed/`` (`wanedit.reports`). All problems are returned at once, so one
re-upload can fix them all.

Decisions (each one a reading of the API reference, made on the safe side):
- Input duration must be 2-10 s even when ``duration`` is set: the reference limits the *input* video,
  and ``duration`` only cuts the *output* "from 0 seconds"; a 12.4 s clip is refused, with the fix
  "trim the clip to 10 s or less (setting `duration` only shortens the output)". A ``duration`` longer
  than the input is refused too: it cannot lengthen a video. Bounds are inclusive (2.0 and 10.0 pass).
- "100 MB" and "20 MB" are decimal megabytes (100,000,000 and 20,000,000 bytes): with the unit
  unstated, the smaller reading never lets through a file the API might refuse; messages give bytes.
- Aspect ratios 1:8 and 8:1 are inside the limit; 8.01:1 is not.
- Only PNG's alpha channel is refused (the reference's words); BMP/WEBP alpha is reported, not refused.
- https reference URLs are never fetched by our functions (no SSRF); `wanedit.sidecar` checks their
  syntax. ``data:`` URIs are decoded and probed here: valid base64, at most 20 MB decoded, and a MIME
  type that matches the bytes.
- Long clips (``"long_clip": "split"``): 2-300 s and at most 1 GB, at a bitrate whose 10 s segments
  stay under the API's 100 MB; ``duration`` (a cut to the first 2-10 s) makes no sense with them and
  is refused. Each segment is checked again once split (`wanedit.usecases.longclip`).
- Bucket-key references resolve under the incoming prefix (see `resolve_key`) and obey the key rules
  of `check_keys`, so no key can reach ``edited/``, ``failed/`` or another prefix.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Callable, Mapping
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
from wanedit.media.imageprobe import ImageInfo, probe_image, probe_image_reader
from wanedit.media.mp4probe import VideoInfo, probe_video
from wanedit.media.reader import ProbeError, RangeReader
from wanedit.problems import Problem
from wanedit.sidecar import (
    MAX_SIDECAR_BYTES,
    BucketKeyRef,
    DataUriRef,
    Sidecar,
    SidecarError,
    parse_sidecar,
    sidecar_size_problem,
)

MAX_KEY_BYTES = 1024
# Long clips are split into segments by a Lambda function: these bound its /tmp (4 GB) and run time.
LONG_CLIP_MAX_SECONDS = 300.0
LONG_CLIP_MAX_BYTES = 1000 * MB

ImageFinding = ImageInfo | ProbeError | Literal["missing"]
"""What the caller found at a bucket key: the probe's result, its error, or no object at all."""


def inspect_request(
    *,
    video_key: str,
    sidecar_key: str,
    video: RangeReader,
    sidecar: RangeReader,
    open_image: Callable[[str], RangeReader | None],
    incoming_prefix: str = "incoming/",
) -> tuple[Sidecar | None, list[Problem]]:
    """The whole check of one clip + sidecar, reading only what it must through ranged reads.

    Keys, the sidecar (never read past the size cap), the video's boxes, each same-bucket reference
    image's header (`open_image` gives a reader, or None when there is no such object), then every
    limit. Returns the parsed sidecar (None if unusable) and all problems at once.
    """
    parsed: Sidecar | None = None
    parse_problems: list[Problem] = []
    if sidecar.size > MAX_SIDECAR_BYTES:
        parse_problems.append(sidecar_size_problem(sidecar.size))
    else:
        try:
            parsed = parse_sidecar(sidecar.read(0, sidecar.size))
        except SidecarError as error:
            parse_problems = error.problems
    problems = check_edit(
        parsed,
        probe(video),
        video_key=video_key,
        sidecar_key=sidecar_key,
        open_image=open_image,
        incoming_prefix=incoming_prefix,
    )
    return parsed, parse_problems + problems


def probe(video: RangeReader) -> VideoInfo | ProbeError:
    """What the video is, or why it cannot be used (checked by `check_video`)."""
    try:
        return probe_video(video)
    except ProbeError as error:
        return error


def check_edit(
    sidecar: Sidecar | None,
    video: VideoInfo | ProbeError,
    *,
    video_key: str,
    sidecar_key: str,
    open_image: Callable[[str], RangeReader | None],
    incoming_prefix: str = "incoming/",
) -> list[Problem]:
    """Every problem of one edit of a probed video: keys, the video, each image's header, the limits.

    `sidecar` None means it could not be used (its own problems are the caller's); the video's are
    still reported, so one re-upload can fix everything.
    """
    problems = check_keys(video_key, sidecar_key, incoming_prefix)
    if sidecar is None:
        return problems + check_video(video)
    images: dict[str, ImageFinding] = {}
    for key in image_keys(sidecar, sidecar_key, incoming_prefix):
        reader = open_image(key)
        finding: ImageFinding
        if reader is None:
            finding = "missing"
        else:
            try:
                finding = probe_image_reader(reader)
            except ProbeError as error:
                finding = error
        images[key] = finding
    return problems + validate_request(
        sidecar, video, images, sidecar_key=sidecar_key, incoming_prefix=incoming_prefix
    )


def validate_request(
    sidecar: Sidecar,
    video: VideoInfo | ProbeError,
    images: Mapping[str, ImageFinding] | None = None,
    *,
    sidecar_key: str,
    incoming_prefix: str = "incoming/",
) -> list[Problem]:
    """Every problem with this request; empty means the API should accept it.

    ``images`` maps each key from `image_keys` to what was found there (a key left out counts as missing).
    """
    split = sidecar.splits_long_clips
    problems = check_video(video, long_clip=split)
    if split and isinstance(video, VideoInfo) and sidecar.duration and video.duration_s > MAX_VIDEO_SECONDS:
        problems.append(
            Problem(
                field="sidecar.duration",
                value=sidecar.duration,
                limit='not set with "long_clip": "split" on a clip over 10 s',
                fix=f"duration cuts the output to its first {sidecar.duration} s, but the clip is "
                f"{_seconds(video.duration_s)} s and is to be split; trim the clip instead, "
                "or remove duration to edit all of it",
            )
        )
    elif isinstance(video, VideoInfo) and sidecar.duration and sidecar.duration > video.duration_s + 1e-3:
        problems.append(
            Problem(
                field="sidecar.duration",
                value=sidecar.duration,
                limit="at most the input video's duration (it only shortens the output)",
                fix=f"duration is {sidecar.duration} s but the video is {_seconds(video.duration_s)} s; "
                f"set it to {int(video.duration_s)} or less, or leave it out to keep the whole clip",
            )
        )
    found = images or {}
    for index, ref in enumerate(sidecar.references()):
        field = f"reference_images[{index}]"
        if isinstance(ref, BucketKeyRef):
            key = resolve_key(ref.key, sidecar_key, incoming_prefix)
            key_problems = _key_problems(
                key, field, incoming_prefix, action=f"change the reference {ref.key!r}"
            )
            problems += key_problems or _finding_problems(found.get(key, "missing"), field, key)
        elif isinstance(ref, DataUriRef):
            problems += _data_uri_problems(ref, field)
    return problems


def resolve_key(ref: str, sidecar_key: str, incoming_prefix: str = "incoming/") -> str:
    """The key a reference names: as written if under the prefix, else relative to the sidecar's folder."""
    if ref.startswith(incoming_prefix):
        return ref
    while ref.startswith("./"):
        ref = ref[2:]
    folder = sidecar_key.rpartition("/")[0]
    return f"{folder}/{ref}" if folder else ref


def image_keys(sidecar: Sidecar, sidecar_key: str, incoming_prefix: str = "incoming/") -> list[str]:
    """The bucket keys the caller must probe before `validate_request` (in order, without repeats)."""
    keys = [
        resolve_key(ref.key, sidecar_key, incoming_prefix)
        for ref in sidecar.references()
        if isinstance(ref, BucketKeyRef)
    ]
    return [key for key in dict.fromkeys(keys) if not _key_problems(key, "", incoming_prefix)]


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
            f"video is {_seconds(duration)} s; the API accepts 2-10 s — trim the clip to 10 s or less "
            '(setting `duration` only shortens the output), or add "long_clip": "split" to the '
            "sidecar to have it edited in 2-10 s segments and stitched back"
        )
        problems.append(Problem(field="video.duration", value=duration, limit="2-10 s", fix=fix))
    elif duration < MIN_VIDEO_SECONDS:
        fix = f"video is {_seconds(duration)} s; the API accepts 2-10 s — use a clip of at least 2 s"
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
                fix=f"video is {_seconds(duration)} s; split clips may be up to "
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


def check_keys(video_key: str, sidecar_key: str, incoming_prefix: str = "incoming/") -> list[Problem]:
    """Problems with the object keys themselves.

    Odd but legal keys (spaces, unicode, ``+``, ``%``) are fine. Refused: ``.``/``..`` segments, empty
    segments (``//``), backslashes, control characters, keys outside the prefix, and keys over 1024 bytes
    of UTF-8: each could escape or collide in the layout when mapped to ``edited/`` and ``failed/``.
    """
    return _key_problems(video_key, "video_key", incoming_prefix) + _key_problems(
        sidecar_key, "sidecar_key", incoming_prefix
    )


# --------------------------------------------------------------------------- helpers


def _finding_problems(finding: ImageFinding, field: str, key: str) -> list[Problem]:
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


def _data_uri_problems(ref: DataUriRef, field: str) -> list[Problem]:
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


def _key_problems(
    key: str, field: str, incoming_prefix: str, *, action: str = "rename the object"
) -> list[Problem]:
    reasons = []
    if not key.startswith(incoming_prefix):
        reasons.append(f"it is not under {incoming_prefix}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        reasons.append(f"it is longer than {MAX_KEY_BYTES} bytes of UTF-8")
    if "\\" in key:
        reasons.append("it contains a backslash")
    if any(unicodedata.category(c) == "Cc" for c in key):
        reasons.append("it contains a control character")
    segments = key.split("/")
    if "" in segments:
        reasons.append("it has an empty path segment (//, or a leading or trailing /)")
    if "." in segments or ".." in segments:
        reasons.append("it has a . or .. path segment")
    if not reasons:
        return []
    return [
        Problem(
            field=field,
            value=key,
            limit=f"a key under {incoming_prefix} without ., .., empty segments, backslashes or control "
            f"characters; at most {MAX_KEY_BYTES} bytes",
            fix=f"{action}: {'; '.join(reasons)}",
        )
    ]


def _seconds(value: float) -> str:
    return f"{value:.6g}"
