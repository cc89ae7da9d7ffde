"""The long-clip rules that need no media: when to split, one seed for all segments, summed usage."""

from __future__ import annotations

import pytest

from wanedit.domain.job import segment_job_id
from wanedit.domain.limits import MAX_SEED
from wanedit.domain.request import EditParameters, EditRequest, FieldOrigin
from wanedit.domain.usage import Usage
from wanedit.media import ProbeError, VideoInfo
from wanedit.paths import Layout
from wanedit.sidecar import Sidecar
from wanedit.usecases.longclip.segments import needs_split, with_fixed_seed


def clip(seconds: float) -> VideoInfo:
    return VideoInfo("mp4", "isom", seconds, 1280, 720, True, True, "avc1", 3_000_000)


@pytest.mark.parametrize(
    ("long_clip", "seconds", "split"),
    [
        ("split", 27.0, True),
        ("split", 10.5, True),
        ("split", 10.0, False),
        ("split", 9.0, False),
        ("reject", 27.0, False),
        (None, 27.0, False),
    ],
)
def test_only_clips_over_10_s_that_ask_for_it_are_split(
    long_clip: str | None, seconds: float, split: bool
) -> None:
    sidecar = Sidecar(prompt="p", long_clip=long_clip)  # type: ignore[arg-type]
    assert needs_split(sidecar, clip(seconds)) is split


def test_no_split_without_a_readable_clip_or_sidecar() -> None:
    assert not needs_split(None, clip(27.0))
    assert not needs_split(Sidecar(prompt="p", long_clip="split"), ProbeError("not a video"))


def test_every_segment_gets_one_seed_fixed_by_the_job() -> None:
    request = EditRequest(
        parameters=EditParameters(resolution="720P"),
        origins={"resolution": FieldOrigin(key="incoming/a.json")},
    )
    first = with_fixed_seed(request, "j-abc")
    assert first == with_fixed_seed(request, "j-abc")  # the same job always gets the same seed
    seed = first.parameters.seed
    assert seed is not None and 0 <= seed <= MAX_SEED and first.parameters.resolution == "720P"
    assert str(first.origins["seed"]).startswith("wanedit")
    assert request.parameters.as_dict() == {"resolution": "720P"}  # not mutated
    assert with_fixed_seed(request, "j-abd").parameters.seed != seed


def test_a_users_seed_is_kept() -> None:
    request = EditRequest(parameters=EditParameters(seed=7))
    assert with_fixed_seed(request, "j-abc") is request


def test_usage_adds_seconds_over_segments() -> None:
    usages = [
        {
            "duration": 18.0,
            "input_video_duration": 9.0,
            "output_video_duration": 9.0,
            "SR": 720,
            "video_count": 1,
        },
        {
            "duration": 18.0,
            "input_video_duration": 9.0,
            "output_video_duration": 9.0,
            "SR": 720,
            "video_count": 1,
        },
        {
            "duration": 18.04,
            "input_video_duration": 9.02,
            "output_video_duration": 9.02,
            "SR": 720,
            "video_count": 1,
        },
    ]
    total = Usage.summed(Usage.model_validate(u) for u in usages)
    assert total is not None and total.as_dict() == {
        "duration": 54.04,
        "input_video_duration": 27.02,
        "output_video_duration": 27.02,
        "SR": 720,
        "video_count": 3,
    }
    assert Usage.summed([None, None]) is None


def test_segment_ids_and_keys_follow_from_the_parent_and_place() -> None:
    layout = Layout()
    assert segment_job_id("j-1", 2) == "j-1-s002"
    assert layout.segment_key("j-1", 2) == "work/j-1/segments/002.mp4"
    assert layout.edited_segment_key("j-1", 2) == "work/j-1/edited/002.mp4"
    # the working prefix is never an input: nothing there starts a job
    assert layout.classify(layout.segment_key("j-1", 2)) is None
