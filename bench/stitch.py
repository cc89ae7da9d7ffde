"""Stitch memory: peak RSS growth while stitching ~100 MB of edited segments into one MP4.

The edited segments are 1280x720 H.264 made of random noise, every frame intra-coded at qp 0, so a
few seconds of video weigh ~100 MB and encode in about a second. The originals are small clips with
an AAC tone, so the stitch copies the video packets and the original audio (``origin``), the path
a long clip takes when the API returns segments with the same parameters.

As in bench/persist.py, the measurement runs in a fresh interpreter with PyAV and the stitch module
already imported: peak growth is VmHWM (peak RSS) after the stitch minus VmRSS before it, from
/proc/self/status. A second child re-encodes the same segments (one of them has other x264
settings, so the extradata differ) for an informational figure: libx264's lookahead holds frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Row, noise_video, proc_status, workdir

GOAL_GROWTH_MB = 64.0
TARGET_BYTES = 100_000_000
SEGMENTS = 3
FPS = 8
WIDTH, HEIGHT = 1280, 720
REPO = Path(__file__).resolve().parents[1]
LOSSLESS = {"preset": "ultrafast", "qp": "0", "x264-params": "keyint=1"}  # noise stays ~2 MB a frame


def _noise_segment(path: Path, frames: int, x264: dict[str, str]) -> Path:
    """Random frames (every frame intra-coded with these options, so each weighs the same)."""
    return noise_video(path, size=(WIDTH, HEIGHT), fps=FPS, frames=frames, x264=x264)


def build_parts(frames_per_segment: int, odd_one: bool) -> list[tuple[Path, Path]]:
    """(edited, original) pairs: originals split from one clip with audio, edited ones of noise; with
    ``odd_one`` the middle edited segment has other x264 settings."""
    from local.samplemedia import make_clip
    from wanedit.segments.split import split_clip

    base = workdir() / "stitch"
    base.mkdir(exist_ok=True)
    seconds = SEGMENTS * frames_per_segment / FPS
    source = make_clip(
        base / f"source-{frames_per_segment}.mp4",
        seconds=seconds,
        width=320,
        height=240,
        fps=FPS,
        gop=frames_per_segment,
    )
    originals = split_clip(
        source,
        base / f"originals-{frames_per_segment}",
        min_seconds=seconds / SEGMENTS - 0.5,
        max_seconds=seconds / SEGMENTS,
    )
    parts = []
    for original in originals:
        x264 = (
            {**LOSSLESS, "x264-params": "keyint=1:cabac=1"} if odd_one and original.index == 1 else LOSSLESS
        )
        edited = base / f"edited-{frames_per_segment}-{int(odd_one)}-{original.index}.mp4"
        if not edited.exists():
            _noise_segment(edited, frames_per_segment, x264)
        parts.append((edited, original.path))
    return parts


def child(out: str, pairs: list[list[str]]) -> dict[str, Any]:
    """One stitch, in this (fresh) process."""
    from wanedit.segments.stitch import StitchPart, stitch

    parts = [StitchPart(Path(edited), Path(original)) for edited, original in pairs]
    rss_before = proc_status("VmRSS")
    t0 = time.perf_counter()
    result = stitch(parts, Path(out), audio_setting="origin")
    seconds = time.perf_counter() - t0
    return {
        "rss_before": rss_before,
        "hwm_after": proc_status("VmHWM"),
        "seconds": seconds,
        "bytes": Path(out).stat().st_size,
        "frames": result.frames,
        "video_copied": result.video_copied,
        "audio": result.audio,
    }


def _run_child(parts: list[tuple[Path, Path]], out: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'layers' / 'common'}{os.pathsep}{REPO}")
    pairs = json.dumps([[str(e), str(o)] for e, o in parts])
    done = subprocess.run(
        [sys.executable, "-m", "bench.stitch", "child", str(out), pairs],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def stitch_memory_row() -> Row:
    base = workdir() / "stitch"
    base.mkdir(exist_ok=True)
    per_frame = _noise_segment(base / "probe.mp4", 2, LOSSLESS).stat().st_size / 2
    frames = max(2 * FPS, round(TARGET_BYTES / SEGMENTS / per_frame))  # segments of at least 2 s
    copied = _run_child(build_parts(frames, odd_one=False), workdir() / "stitch" / "copied.mp4")
    encoded = _run_child(build_parts(frames, odd_one=True), workdir() / "stitch" / "encoded.mp4")
    if not (copied["video_copied"] and not encoded["video_copied"] and copied["audio"] == "original"):
        raise RuntimeError(f"the stitches did not take the paths measured: {copied}, {encoded}")
    growth = (copied["hwm_after"] - copied["rss_before"]) / 1e6
    encoded_growth = (encoded["hwm_after"] - encoded["rss_before"]) / 1e6
    size = copied["bytes"] / 1e6
    return Row(
        figure=f"stitch memory ({size:.0f} MB result)",
        goal=f"peak growth < {GOAL_GROWTH_MB:.0f} MB",
        measured=(
            f"+{growth:.1f} MB peak RSS stitching {SEGMENTS} segments ({SEGMENTS * frames} frames"
            f" {WIDTH}x{HEIGHT}) by stream copy into {size:.1f} MB in {copied['seconds']:.1f} s;"
            f" re-encoding them instead: +{encoded_growth:.1f} MB in {encoded['seconds']:.1f} s"
        ),
        passed=growth < GOAL_GROWTH_MB,
        note=(
            "VmHWM after - VmRSS before, in a fresh interpreter; video packets and original audio copied"
            " (origin); the re-encode figure (libx264 lookahead and frame threads) is information"
        ),
        data={
            "growth_mb": growth,
            "reencode_growth_mb": encoded_growth,
            "bytes": copied["bytes"],
            "seconds": copied["seconds"],
            "reencode_seconds": encoded["seconds"],
        },
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        print(json.dumps(child(sys.argv[2], json.loads(sys.argv[3]))))
    else:
        row = stitch_memory_row()
        print(f"{row.figure} | {row.goal} | {row.measured} | {row.verdict}")
        print(f"- {row.note}")
