"""What every benchmark shares: the result row, percentiles, a small sample clip."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

# Handlers build their Logger/Metrics/Tracer at import time: give them the template's environment.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "wanedit")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "wanedit")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Loopback only: dummy credentials, never a real account.
os.environ["AWS_ACCESS_KEY_ID"] = "local"
os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
os.environ.pop("AWS_PROFILE", None)


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    goal: str
    measured: str
    passed: bool | None  # None: informational, no pass/fail
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "info"}[self.passed]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@lru_cache(maxsize=1)
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="wanedit-bench-"))


@lru_cache(maxsize=1)
def sample_clip() -> Path:
    """A small valid clip (2 s, 320x240, audio): reused as every upload and as the pre-rendered result."""
    from local.samplemedia import make_clip

    return Path(make_clip(workdir() / "clip.mp4", seconds=2, width=320, height=240, fps=8))


def fmt_ratio(x: float) -> str:
    return f"{x:.3f}x"


def proc_status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS now, VmHWM the peak): the memory figures."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def noise_video(
    path: Path,
    *,
    size: tuple[int, int],
    fps: int,
    frames: int,
    x264: dict[str, str],
    container: dict[str, str] | None = None,
) -> Path:
    """An H.264 MP4 of random frames (four, cycled): as heavy per frame as video gets, for memory figures."""
    import av

    width, height = size
    pictures = []
    for _ in range(4):
        picture = av.VideoFrame(width, height, "yuv420p")
        for plane in picture.planes:
            plane.update(os.urandom(plane.buffer_size))
        pictures.append(picture)
    with av.open(str(path), "w", format="mp4", options=container or {}) as oc:
        stream = oc.add_stream("libx264", rate=fps, options=x264)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            picture = pictures[i % len(pictures)]
            picture.pts, picture.time_base = i, Fraction(1, fps)
            oc.mux(stream.encode(picture))
        oc.mux(stream.encode(None))
    return path
