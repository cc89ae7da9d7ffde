"""Where to cut a long clip: 2-10 s segments on frame boundaries, at keyframes when possible.

Pure Python (no PyAV) so the plan is cheap to import and to test. The plan is a shortest path over
cut candidates with a lexicographic cost, in this order:

1. the fewest segments (each is one API task, billed and waited for);
2. the fewest re-encoded frames (a segment is stream-copied only when both of its boundaries are
   keyframes or the stream's ends; re-encoding costs time and a generation of quality);
3. balanced lengths (the smallest sum of squared durations).

Candidates are every keyframe plus the frame boundaries either side of every 1/4 s mark, which keeps
long, high frame rate clips fast to plan (a 300 s 60 fps clip: ~0.1 s); when that grid cannot reach
the fewest segments possible, every frame boundary becomes a candidate (seconds for such a clip).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["MAX_SEGMENT_SECONDS", "MIN_SEGMENT_SECONDS", "Cut", "plan_cuts"]

MIN_SEGMENT_SECONDS = 2.0
MAX_SEGMENT_SECONDS = 10.0

# Durations come from rational timestamps converted to float: compare with a little slack.
EPSILON = 1e-6
GRID_SECONDS = 0.25


@dataclass(frozen=True)
class Cut:
    """One segment of the source: frames [first_frame, end_frame) in presentation order."""

    index: int
    first_frame: int
    end_frame: int
    start: float
    end: float
    copy: bool

    @property
    def duration(self) -> float:
        return self.end - self.start


def plan_cuts(
    frame_times: Sequence[float],
    keyframes: Sequence[int],
    end_time: float,
    *,
    min_seconds: float = MIN_SEGMENT_SECONDS,
    max_seconds: float = MAX_SEGMENT_SECONDS,
) -> list[Cut]:
    """Cut a clip into the fewest segments of ``min_seconds``..``max_seconds`` (see the module doc)."""
    n = len(frame_times)
    if n == 0:
        raise ValueError("the clip has no video frames")
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds, got {min_seconds} and {max_seconds}")
    origin = frame_times[0]
    times = [t - origin for t in frame_times] + [end_time - origin]
    if any(b <= a for a, b in pairwise(times)):
        raise ValueError("frame times must be strictly ascending and end before end_time")
    total = times[-1]
    if total < min_seconds - EPSILON:
        raise ValueError(
            f"the clip is {total:.3f} s long: shorter than the {min_seconds:g} s minimum of one segment"
        )
    # The stream's start and end are clean boundaries, like keyframes.
    clean = {k for k in keyframes if 0 <= k < n} | {0, n}
    if total <= max_seconds + EPSILON:
        return [Cut(0, 0, n, 0.0, total, True)]
    fewest = _fewest_segments(times, max_seconds)
    bounds = _best_path(times, _grid(times, clean), clean, min_seconds, max_seconds)
    if bounds is None or len(bounds) - 1 > fewest:
        bounds = _best_path(times, range(n + 1), clean, min_seconds, max_seconds) or bounds
    if bounds is None:
        raise ValueError(
            f"the clip ({total:.3f} s) cannot be cut on frame boundaries into segments of "
            f"{min_seconds:g}-{max_seconds:g} s"
        )
    return [
        Cut(i, a, b, times[a], times[b], a in clean and b in clean)
        for i, (a, b) in enumerate(pairwise(bounds))
    ]


def _fewest_segments(times: list[float], high: float) -> int:
    """A lower bound on the segment count: greedy cuts at the latest boundary each maximum allows."""
    count, at = 0, 0
    while at < len(times) - 1:
        reach = bisect_right(times, times[at] + high + EPSILON) - 1
        if reach == at:  # one frame longer than a segment may be: no plan exists at all
            return len(times)
        count, at = count + 1, reach
    return count


def _grid(times: list[float], clean: set[int]) -> list[int]:
    """Every clean boundary plus the frame boundaries either side of each multiple of GRID_SECONDS."""
    picked = set(clean)
    last = len(times) - 1
    for step in range(math.ceil(times[-1] / GRID_SECONDS) + 1):
        before = bisect_right(times, step * GRID_SECONDS + EPSILON) - 1
        picked.update((before, min(before + 1, last)))
    return sorted(picked)


def _best_path(
    times: list[float], candidates: Sequence[int], clean: set[int], low: float, high: float
) -> list[int] | None:
    """The cheapest chain of boundaries from frame 0 to the end, or None when none fits the bounds."""
    at = [times[c] for c in candidates]
    best: list[tuple[int, int, float] | None] = [None] * len(candidates)
    back = [-1] * len(candidates)
    best[0] = (0, 0, 0.0)
    for j in range(1, len(candidates)):
        b = candidates[j]
        lo = bisect_left(at, at[j] - high - EPSILON, 0, j)
        hi = bisect_right(at, at[j] - low + EPSILON, 0, j)
        for i in range(lo, hi):
            cost = best[i]
            if cost is None:
                continue
            a = candidates[i]
            duration = at[j] - at[i]
            reencoded = 0 if a in clean and b in clean else b - a
            option = (cost[0] + 1, cost[1] + reencoded, cost[2] + duration * duration)
            current = best[j]
            if current is None or option < current:
                best[j], back[j] = option, i
    if best[-1] is None:
        return None
    path = [len(candidates) - 1]
    while path[-1] != 0:
        path.append(back[path[-1]])
    return [candidates[i] for i in reversed(path)]
