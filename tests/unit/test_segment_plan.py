"""plan_cuts: the fewest 2-10 s segments, keyframe cuts when they allow it, balanced, honest copy flags."""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest

from wanedit.segments.plan import EPSILON, MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS, Cut, plan_cuts


def clip(seconds: float, fps: float = 12, every: float | None = None) -> tuple[list[float], list[int], float]:
    """Frame times, keyframes (frame 0 and then every ``every`` seconds) and end of a constant-rate clip."""
    frames = round(seconds * fps)
    step = round(every * fps) if every else frames
    return [i / fps for i in range(frames)], list(range(0, frames, step)), frames / fps


def check(cuts: list[Cut], times: list[float], keyframes: list[int], end: float) -> None:
    """The invariants every plan keeps."""
    n = len(times)
    assert [c.index for c in cuts] == list(range(len(cuts)))
    assert cuts[0].first_frame == 0 and cuts[-1].end_frame == n
    for before, after in pairwise(cuts):
        assert before.end_frame == after.first_frame  # every frame exactly once, in order
    clean = set(keyframes) | {0, n}
    for c in cuts:
        assert c.first_frame < c.end_frame
        assert c.start == pytest.approx(times[c.first_frame] - times[0])
        assert c.end == pytest.approx((times[c.end_frame] if c.end_frame < n else end) - times[0])
        assert c.copy == (c.first_frame in clean and c.end_frame in clean)
        if len(cuts) > 1:
            assert MIN_SEGMENT_SECONDS - EPSILON <= c.duration <= MAX_SEGMENT_SECONDS + EPSILON


def test_a_9_s_clip_is_one_copied_segment() -> None:
    times, keys, end = clip(9)
    assert plan_cuts(times, keys, end) == [Cut(0, 0, 108, 0.0, 9.0, True)]


def test_exactly_10_s_is_not_split() -> None:
    times, keys, end = clip(10)
    cuts = plan_cuts(times, keys, end)
    assert len(cuts) == 1 and cuts[0].duration == 10.0 and cuts[0].copy


def test_10_5_s_is_two_balanced_segments_never_a_short_tail() -> None:
    times, keys, end = clip(10.5)
    cuts = plan_cuts(times, keys, end)
    check(cuts, times, keys, end)
    assert [c.duration for c in cuts] == [5.25, 5.25]
    assert not any(c.copy for c in cuts)  # keyframe only at 0: the middle cut is re-encoded


def test_27_s_with_a_keyframe_every_second_is_three_copied_segments() -> None:
    times, keys, end = clip(27, every=1)
    cuts = plan_cuts(times, keys, end)
    check(cuts, times, keys, end)
    assert [(c.start, c.end, c.copy) for c in cuts] == [(0, 9, True), (9, 18, True), (18, 27, True)]


def test_keyframes_only_at_frame_0_marks_every_segment_for_re_encoding() -> None:
    times, keys, end = clip(27)
    cuts = plan_cuts(times, keys, end)
    check(cuts, times, keys, end)
    assert len(cuts) == 3 and not any(c.copy for c in cuts)
    assert [c.duration for c in cuts] == [9.0, 9.0, 9.0]


def test_keyframe_cuts_win_over_balance_when_they_fit() -> None:
    """Keyframes every 4 s on 21 s: 8+8+5 (all copied) beats 7+7+7 (all re-encoded)."""
    times, keys, end = clip(21, every=4)
    cuts = plan_cuts(times, keys, end)
    check(cuts, times, keys, end)
    assert all(c.copy for c in cuts) and len(cuts) == 3
    assert sorted(c.duration for c in cuts) == [5.0, 8.0, 8.0]


def test_keyframes_every_10_s_on_20_5_s_keep_what_they_can_and_balance_the_rest() -> None:
    """Keyframe-only cuts would leave a 0.5 s tail: cut at 10 s, then split the rest evenly."""
    times, keys, end = clip(20.5, every=10)
    cuts = plan_cuts(times, keys, end)
    check(cuts, times, keys, end)
    assert [(c.start, c.end, c.copy) for c in cuts] == [
        (0, 10, True),
        (10, 15.25, False),
        (15.25, 20.5, False),
    ]


def test_ntsc_rate_that_cannot_fill_10_s_exactly_still_gets_valid_segments() -> None:
    """At 29.97 fps 10 s is not a whole number of frames: 299.93 s needs 31 segments, not 30."""
    times, keys, end = clip(299.95, fps=30000 / 1001, every=2)
    cuts = plan_cuts(times, keys, end)
    check(cuts, times, keys, end)
    assert len(cuts) == 31


def test_shorter_than_the_minimum_is_refused() -> None:
    times, keys, end = clip(1.9)
    with pytest.raises(ValueError, match=r"shorter than the 2 s minimum"):
        plan_cuts(times, keys, end)


def test_a_frame_longer_than_a_segment_makes_a_plan_impossible() -> None:
    with pytest.raises(ValueError, match="cannot be cut"):
        plan_cuts([0.0, 12.0], [0, 1], 14.0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no video frames"):
        plan_cuts([], [], 5.0)
    with pytest.raises(ValueError, match="ascending"):
        plan_cuts([0.0, 2.0, 1.0], [0], 12.0)


def test_times_relative_to_the_first_frame() -> None:
    times, keys, end = clip(27, every=1)
    shifted = plan_cuts([t + 5 for t in times], keys, end + 5)
    assert shifted == plan_cuts(times, keys, end)


@pytest.mark.parametrize("seed", range(200))
def test_invariants_on_random_clips(seed: int) -> None:
    rng = random.Random(seed)
    fps = rng.choice([5, 8, 10, 12, 24, 25, 30])
    frames = rng.randint(round(2 * fps), round(75 * fps))
    times = [i / fps for i in range(frames)]
    if rng.random() < 0.3:  # variable frame rate: jittered times, still ascending
        times = [t + rng.uniform(0, 0.4) / fps for t in times]
    end = times[-1] + 1 / fps
    keyframes = sorted({0, *rng.sample(range(frames), rng.randint(0, frames // max(1, fps)))})
    cuts = plan_cuts(times, keyframes, end)
    check(cuts, times, keyframes, end)
    total = end - times[0]
    assert sum(c.duration for c in cuts) == pytest.approx(total)
    if total <= MAX_SEGMENT_SECONDS:
        assert len(cuts) == 1
    elif times == [i / fps for i in range(frames)]:  # 10 s is a whole number of frames: no waste
        assert len(cuts) == math.ceil(total / MAX_SEGMENT_SECONDS - EPSILON)
    assert all(c.copy for c in cuts) == keyframe_plan_exists(times, keyframes, end, len(cuts))


def keyframe_plan_exists(times: list[float], keyframes: list[int], end: float, segments: int) -> bool:
    """Brute force: can ``segments`` segments of 2-10 s be cut at keyframes only?"""
    bounds = [*(k for k in keyframes if k > 0), len(times)]
    at = [*times, end]
    reached = {0}
    for _ in range(segments):
        reached = {
            b
            for a in reached
            for b in bounds
            if MIN_SEGMENT_SECONDS - EPSILON <= at[b] - at[a] <= MAX_SEGMENT_SECONDS + EPSILON
        }
    return len(times) in reached
