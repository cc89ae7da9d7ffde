"""The limits of wan2.7-videoedit, each stated once, as its API reference gives them.

The sidecar model, validation, the API client's request models and the local emulator all import
these, so a limit can never differ between what wanedit checks, what it sends and what the
emulator enforces. Where wanedit reads the reference on the strict side, the comment says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

MODEL = "wan2.7-videoedit"

Resolution = Literal["720P", "1080P"]
Ratio = Literal["16:9", "9:16", "1:1", "4:3", "3:4"]
AudioSetting = Literal["auto", "origin"]
RESOLUTIONS: tuple[Resolution, ...] = get_args(Resolution)
RATIOS: tuple[Ratio, ...] = get_args(Ratio)
AUDIO_SETTINGS: tuple[AudioSetting, ...] = get_args(AudioSetting)
DEFAULT_RESOLUTION: Resolution = "1080P"

OUTPUT_SIZES: Mapping[Resolution, Mapping[Ratio, tuple[int, int]]] = {
    "720P": {
        "16:9": (1280, 720),
        "9:16": (720, 1280),
        "1:1": (960, 960),
        "4:3": (1104, 832),
        "3:4": (832, 1104),
    },
    "1080P": {
        "16:9": (1920, 1080),
        "9:16": (1080, 1920),
        "1:1": (1440, 1440),
        "4:3": (1648, 1248),
        "3:4": (1248, 1648),
    },
}
"""Output width x height by `resolution` and `ratio` (the reference's table)."""

MAX_PROMPT_CHARS = 5000
MAX_NEGATIVE_PROMPT_CHARS = 500
MAX_REFERENCE_IMAGES = 4
MAX_SEED = 2_147_483_647

MIN_VIDEO_SECONDS, MAX_VIDEO_SECONDS = 2.0, 10.0
"""The input clip's length; the output's `duration` cut takes the same 2-10 (or 0: keep)."""
MIN_DURATION, MAX_DURATION = 2, 10
MIN_VIDEO_SIDE, MAX_VIDEO_SIDE = 240, 4096
MIN_IMAGE_SIDE, MAX_IMAGE_SIDE = 240, 8000
MAX_ASPECT = 8
"""Width:height between 1:8 and 8:1, for clips and reference images alike."""
MB = 1_000_000
"""The reference's "MB" read as decimal megabytes: the smaller reading never lets through a file
the API might refuse."""
MAX_VIDEO_BYTES = 100 * MB
MAX_IMAGE_BYTES = 20 * MB
IMAGE_MIME_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")

TASK_LIFETIME_SECONDS = 24 * 3600
"""A task id, and the result URL of a succeeded task, are valid this long."""
QUERY_INTERVAL_SECONDS = 15.0
"""The reference's recommended polling interval."""
MAX_RUNNING_TASKS = 5
"""Tasks an account runs at once (more wait PENDING at the service)."""
CREATES_PER_SECOND = 5
QUERIES_PER_SECOND = 20
"""Per account: query, list and cancel each."""


def duration_allowed(value: int) -> bool:
    """`duration` is 0 (keep the input's length) or 2-10 seconds."""
    return value == 0 or MIN_DURATION <= value <= MAX_DURATION
