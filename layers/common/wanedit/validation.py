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

import unicodedata
from collections.abc import Callable, Mapping

from wanedit.domain.limits import (
    MAX_VIDEO_SECONDS,
)
from wanedit.media.imageprobe import probe_image_reader
from wanedit.media.mp4probe import VideoInfo, probe_video
from wanedit.media.reader import ProbeError, RangeReader
from wanedit.media_checks import ImageFinding, check_video, data_uri_problems, finding_problems, seconds_text
from wanedit.problems import Problem
from wanedit.references import BucketKeyRef, DataUriRef
from wanedit.sidecar import Sidecar, parse_sidecar
from wanedit.sidecar_document import MAX_SIDECAR_BYTES, SidecarError, sidecar_size_problem

MAX_KEY_BYTES = 1024


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
                f"{seconds_text(video.duration_s)} s and is to be split; trim the clip instead, "
                "or remove duration to edit all of it",
            )
        )
    elif isinstance(video, VideoInfo) and sidecar.duration and sidecar.duration > video.duration_s + 1e-3:
        problems.append(
            Problem(
                field="sidecar.duration",
                value=sidecar.duration,
                limit="at most the input video's duration (it only shortens the output)",
                fix=f"duration is {sidecar.duration} s but the video is {seconds_text(video.duration_s)} s; "
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
            problems += key_problems or finding_problems(found.get(key, "missing"), field, key)
        elif isinstance(ref, DataUriRef):
            problems += data_uri_problems(ref, field)
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
