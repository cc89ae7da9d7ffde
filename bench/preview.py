"""Preview sheets: peak RSS growth, time and bytes read making a sheet of a ~100 MB 1080P result.

The result is 1920x1080 H.264 at 24 fps made of random noise (a few pictures, cycled), with
B-frames, at a qp that makes it ~100 MB in a few seconds: what a clip at the API's size limit
weighs. Two GOP layouts: a keyframe every 2 s, and a single keyframe (x264's default keyint of 250
is longer than the clip), where every cell must be decoded from the start. The sheet compares the
file with itself, so both inputs are at the limit.

Every measurement runs in a fresh interpreter with PyAV, Pillow and the preview module imported, as
in bench/stitch.py: peak growth is VmHWM (peak RSS) after minus VmRSS before, from /proc/self/status.

- baseline: open the result and decode its first frame, the least any look at a video costs;
- sheet: `make_preview` from the paths (first layout);
- ranged: the same over `RangeFile(CountingReader(FileRangeReader(...)))` per input (1 MiB blocks,
  4 kept), as a use case would read from S3: bytes and GETs per input (both layouts);
- full decode: every frame of both inputs in order, what a sheet that did not seek would decode.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Row, noise_video, proc_status, workdir

TARGET_BYTES = 100_000_000
WIDTH, HEIGHT = 1920, 1080
FPS = 24
GOAL_RATIO = 2.0  # peak growth of a sheet vs decoding one frame: what is decoded must not add up
NOISE = {"preset": "ultrafast", "qp": "46"}  # noise at 1080P: ~0.5 MB a frame
LAYOUTS = {"keyframe every 2 s": f"keyint={2 * FPS}:min-keyint={2 * FPS}", "one keyframe": "keyint=250"}
REPO = Path(__file__).resolve().parents[1]


def build_results(base: Path) -> dict[str, Path]:
    """One ~100 MB result per GOP layout, with the same number of frames."""
    probe = _noise_result(base / "probe.mp4", 2 * FPS, LAYOUTS["keyframe every 2 s"])
    frames = round(TARGET_BYTES / (probe.stat().st_size / (2 * FPS)))
    return {
        name: _noise_result(base / f"result-{number}.mp4", frames, keyframes)
        for number, (name, keyframes) in enumerate(LAYOUTS.items())
    }


def child(mode: str, path: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process: PyAV, Pillow and the preview module imported first."""
    import av

    from wanedit.media.reader import CountingReader, FileRangeReader, RangeFile
    from wanedit.segments.preview import make_preview

    out: dict[str, Any] = {}
    rss_before = proc_status("VmRSS")
    t0 = time.perf_counter()
    if mode == "baseline":
        with av.open(path) as ic:
            next(ic.decode(video=0)).to_image()
    elif mode == "full":
        out["frames"] = 0
        for _ in ("source", "edited"):
            with av.open(path) as ic:
                out["frames"] += sum(1 for _ in ic.decode(video=0))
    elif mode == "sheet":
        sheet = make_preview(path, path)
        out["frame_times"] = sheet.edited.frame_times
        out["decoded"] = sheet.edited.decoded
    else:
        readers = [CountingReader(FileRangeReader(path)) for _ in range(2)]
        with RangeFile(readers[0]) as source, RangeFile(readers[1]) as edited:
            sheet = make_preview(source, edited)
        out["frame_times"] = sheet.edited.frame_times
        out["decoded"] = sheet.edited.decoded
        out["bytes_read"] = [r.bytes_read for r in readers]
        out["calls"] = [r.calls for r in readers]
    out["seconds"] = time.perf_counter() - t0
    out["growth"] = proc_status("VmHWM") - rss_before
    return out


def _run_child(mode: str, path: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'layers' / 'common'}{os.pathsep}{REPO}")
    done = subprocess.run(
        [sys.executable, "-m", "bench.preview", "child", mode, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def preview_rows() -> list[Row]:
    base = workdir() / "preview"
    base.mkdir(exist_ok=True)
    try:
        return _measure(build_results(base))
    finally:
        shutil.rmtree(base)  # ~200 MB


def _measure(results: dict[str, Path]) -> list[Row]:
    first, worst_case = LAYOUTS
    # the one-frame baseline and the sheet from paths once (same size and codec in both layouts)
    measured = {first: {m: _run_child(m, results[first]) for m in ("baseline", "sheet", "ranged", "full")}}
    measured[worst_case] = {m: _run_child(m, results[worst_case]) for m in ("ranged", "full")}
    baseline, sheet = measured[first]["baseline"], measured[first]["sheet"]
    if sheet["frame_times"] != measured[first]["ranged"]["frame_times"] or len(sheet["frame_times"]) != 6:
        raise RuntimeError(f"the sheets differ: {sheet}, {measured[first]['ranged']}")
    rows = []
    for name, runs in measured.items():
        size = results[name].stat().st_size
        ranged, full = runs["ranged"], runs["full"]
        growths = [runs[m]["growth"] for m in ("sheet", "ranged") if m in runs]
        ratio = max(growths) / baseline["growth"]
        read = ranged["bytes_read"][1]
        paths = f"+{runs['sheet']['growth'] / 1e6:.1f} MB peak RSS from paths, " if "sheet" in runs else ""
        rows.append(
            Row(
                figure=f"preview sheet ({size / 1e6:.0f} MB 1080P result, {name})",
                goal=f"peak growth <= {GOAL_RATIO:.0f}x decoding one frame",
                measured=(
                    f"{paths}+{ranged['growth'] / 1e6:.1f} MB over ranged reads, vs"
                    f" +{baseline['growth'] / 1e6:.1f} MB for one frame ({ratio:.2f}x); reads"
                    f" {read / 1e6:.1f} MB of {size / 1e6:.1f} MB per input ({read / size:.0%}) in"
                    f" {ranged['calls'][1]} GETs, {ranged['decoded']} of {full['frames'] // 2} frames"
                    " decoded;"
                    f" {ranged['seconds']:.1f} s vs {full['seconds']:.1f} s decoding both inputs whole"
                    f" ({ranged['seconds'] / full['seconds']:.2f}x)"
                ),
                passed=ratio <= GOAL_RATIO,
                note=(
                    "VmHWM after - VmRSS before, in a fresh interpreter; the sheet compares the file with"
                    " itself (6 instants); ranged reads: RangeFile over a counting file reader, 1 MiB blocks"
                ),
                data={
                    "bytes": size,
                    "baseline_growth_mb": baseline["growth"] / 1e6,
                    "growth_mb": {m: runs[m]["growth"] / 1e6 for m in ("sheet", "ranged") if m in runs},
                    "ratio": ratio,
                    "ranged_seconds": ranged["seconds"],
                    "full_decode_seconds": full["seconds"],
                    "bytes_read_per_input": read,
                    "gets_per_input": ranged["calls"][1],
                    "decoded_per_input": ranged["decoded"],
                    "frames_per_input": full["frames"] // 2,
                },
            )
        )
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
    else:
        for row in preview_rows():
            print(f"{row.figure} | {row.goal} | {row.measured} | {row.verdict}")


def _noise_result(path: Path, frames: int, keyframes: str) -> Path:
    x264 = {**NOISE, "x264-params": f"{keyframes}:scenecut=0:bframes=3"}
    return noise_video(
        path, size=(WIDTH, HEIGHT), fps=FPS, frames=frames, x264=x264, container={"movflags": "+faststart"}
    )
