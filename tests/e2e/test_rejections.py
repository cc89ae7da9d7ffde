"""The bad-input corpus through the whole local stack: every case reported in failed/, no task created.

The cases are those of tests/unit/test_rejection_corpus.py (real files on both sides of every limit);
here each one is uploaded to the bucket as a user would, in a folder of its own, and the proof that
nothing reached the API is the emulator's own counter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_rejection_corpus import BAD, GOOD, Case
from wanedit.container import services
from wanedit.domain.lifecycle import JobState

pytestmark = pytest.mark.xdist_group("e2e")

DEFAULT_FOLDER = "incoming/shoot/"
# Cases about the keys themselves cannot be paired by name in a bucket (that is their point): the
# unit corpus covers them; here only cases uploaded under the usual names.
UPLOADABLE = {
    name: case
    for name, case in BAD.items()
    if case[0].video_key.startswith(DEFAULT_FOLDER) and case[0].sidecar_key.startswith(DEFAULT_FOLDER)
}


def _upload(stack: Any, folder: str, case: Case, tmp: Path) -> None:
    s3, bucket = stack.client("s3"), stack.resources.bucket

    def move(key: str) -> str:
        return folder + key[len(DEFAULT_FOLDER) :]

    video = case.video(tmp)
    s3.put_object(Bucket=bucket, Key=move(case.video_key), Body=video.read(0, video.size))
    for key, source in case.images.items():
        image = source(tmp)
        s3.put_object(Bucket=bucket, Key=move(key), Body=image.read(0, image.size))
    s3.put_object(
        Bucket=bucket,
        Key=move(case.sidecar_key),
        Body=case.sidecar.replace(DEFAULT_FOLDER.encode(), folder.encode()),
    )


def test_every_bad_input_is_reported_and_none_reaches_the_api(stack, outcomes, tmp_path):
    assert len(UPLOADABLE) >= 40
    for index, (name, (case, _)) in enumerate(UPLOADABLE.items()):
        case_tmp = tmp_path / str(index)
        case_tmp.mkdir()
        _upload(stack, f"incoming/corpus/{name}/", case, case_tmp)
        stack.pump.drain()
    stack.pump.tick()

    s3, bucket = stack.client("s3"), stack.resources.bucket
    for name, (case, expected_fields) in UPLOADABLE.items():
        stem = case.video_key[len(DEFAULT_FOLDER) :].rsplit(".", 1)[0]
        report_key = f"failed/corpus/{name}/{stem}.json"
        report = json.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())
        assert report["status"] == "REJECTED", name
        assert sorted(p["field"] for p in report["problems"]) == sorted(expected_fields), name
        assert all(p["fix"] and p["limit"] for p in report["problems"]), name
    jobs = services().store.list_jobs()
    assert len(jobs) == len(UPLOADABLE)
    assert {job.state for job in jobs} == {JobState.REJECTED}
    assert stack.emulator.counters["tasks_created"] == 0
    assert stack.emulator.counters["creates"] == 0
    assert s3.list_objects_v2(Bucket=bucket, Prefix="edited/").get("KeyCount", 0) == 0
    announced = outcomes.bus_events()
    assert [e["detail-type"] for e in announced] == ["Video Edit Rejected"] * len(UPLOADABLE)
    assert {e["detail"]["job_id"] for e in announced} == {job.job_id for job in jobs}
    assert all(e["detail"]["report_key"].startswith("failed/corpus/") for e in announced)
    assert len(outcomes.topic_messages()) == len(UPLOADABLE)


def test_the_good_side_of_each_bound_is_submitted(stack, tmp_path):
    """The same path accepts what is just inside the limits (a control for the test above)."""
    names = ["video-2.0s", "video-10.0s", "prompt-5000-cjk", "image-png-opaque", "image-240px", "duration-0"]
    for index, name in enumerate(names):
        case_tmp = tmp_path / str(index)
        case_tmp.mkdir()
        _upload(stack, f"incoming/good/{name}/", GOOD[name], case_tmp)
    stack.pump.drain()

    jobs = services().store.list_jobs()
    assert len(jobs) == len(names)
    assert all(not job.state.is_terminal for job in jobs), [(job.stem, job.state) for job in jobs]
    assert stack.emulator.counters["creates"] >= 1
