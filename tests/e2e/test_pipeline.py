"""Upload a clip and a sidecar, get the edited MP4 back: the whole local stack, on a manual clock."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from local.samplemedia import make_clip, probe
from tests.e2e.steps import get_object, keys, put, run_to_end
from wanedit.domain.lifecycle import JobState

pytestmark = pytest.mark.xdist_group("e2e")


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=3, width=320, height=240, fps=8)
    return Path(path).read_bytes()


def sidecar(**fields: Any) -> bytes:
    return json.dumps(
        {"prompt": "Turn the scene into a claymation style", "resolution": "720P", **fields}
    ).encode()


@pytest.mark.parametrize("order", ["sidecar-first", "video-first"])
def test_pair_in_either_order_gives_one_edited_mp4_and_manifest(stack, outcomes, clip_bytes, order, tmp_path):
    uploads = [("incoming/team/clip.json", sidecar(ratio="1:1")), ("incoming/team/clip.mp4", clip_bytes)]
    if order == "video-first":
        uploads.reverse()
    put(stack, *uploads[0])
    stack.pump.drain()
    from wanedit.container import services

    assert services().store.list_jobs() == []  # the first half waits for its partner
    assert [h.key for h in services().store.waiting_halves()] == [uploads[0][0]]
    put(stack, *uploads[1])

    jobs = run_to_end(stack)

    assert [job.state for job in jobs] == [JobState.PERSISTED]
    assert keys(stack, "edited/") == [
        "edited/team/clip.json",
        "edited/team/clip.mp4",
        "edited/team/clip.preview.jpg",
    ]
    with Image.open(io.BytesIO(get_object(stack, "edited/team/clip.preview.jpg"))) as sheet:
        assert sheet.format == "JPEG"  # its grid, frame by frame: tests/integration/test_preview.py
    out = tmp_path / "out.mp4"
    out.write_bytes(get_object(stack, "edited/team/clip.mp4"))
    info = probe(out)
    assert (info["width"], info["height"]) == (960, 960)
    assert info["duration_s"] == pytest.approx(3.0, abs=0.2)
    manifest = json.loads(get_object(stack, "edited/team/clip.json"))
    assert manifest["job_id"] == jobs[0].job_id
    assert manifest["task_id"] == jobs[0].task_id
    assert manifest["prompt"] == manifest["orig_prompt"]
    assert manifest["parameters"] == {"resolution": "720P", "ratio": "1:1"}
    assert manifest["usage"]["SR"] == 720
    assert manifest["request_ids"]
    assert manifest["source"]["video"]["key"] == "incoming/team/clip.mp4"
    assert stack.emulator.counters["tasks_created"] == 1
    assert services().store.waiting_halves() == []
    [announced] = outcomes.bus_events()
    assert announced["detail-type"] == "Video Edit Succeeded"
    assert announced["detail"]["output_key"] == "edited/team/clip.mp4"
    assert announced["detail"]["preview_key"] == "edited/team/clip.preview.jpg"
    assert announced["detail"]["usage"]["SR"] == 720
    [message] = outcomes.topic_messages()
    assert message["job_id"] == jobs[0].job_id
    # Sources and outputs carry the tags the bucket's lifecycle rules filter on.
    for key in (
        "incoming/team/clip.mp4",
        "incoming/team/clip.json",
        "edited/team/clip.mp4",
        "edited/team/clip.json",
    ):
        tagging = stack.client("s3").get_object_tagging(Bucket=stack.resources.bucket, Key=key)["TagSet"]
        assert {t["Key"]: t["Value"] for t in tagging} == {
            "wanedit-job": jobs[0].job_id,
            "wanedit-state": "PERSISTED",
        }


def test_the_same_event_three_times_creates_one_task(stack, clip_bytes):
    put(stack, "incoming/dup/clip.json", sidecar())
    stack.pump.drain()
    put(stack, "incoming/dup/clip.mp4", clip_bytes)
    sqs = stack.client("sqs")
    message = sqs.receive_message(QueueUrl=stack.resources.ingest_queue_url)["Messages"][0]
    sqs.delete_message(QueueUrl=stack.resources.ingest_queue_url, ReceiptHandle=message["ReceiptHandle"])
    for _ in range(3):
        sqs.send_message(QueueUrl=stack.resources.ingest_queue_url, MessageBody=message["Body"])

    jobs = run_to_end(stack)

    assert stack.emulator.counters["tasks_created"] == 1
    assert [job.state for job in jobs] == [JobState.PERSISTED]


def test_a_reuploaded_sidecar_is_a_second_job(stack, clip_bytes):
    put(stack, "incoming/again/clip.mp4", clip_bytes)
    put(stack, "incoming/again/clip.json", sidecar())
    run_to_end(stack)
    put(stack, "incoming/again/clip.json", sidecar(watermark=True))

    jobs = run_to_end(stack)

    assert sorted(job.state for job in jobs) == [JobState.PERSISTED, JobState.PERSISTED]
    assert len({job.sidecar.identity for job in jobs}) == 2
    assert stack.emulator.counters["tasks_created"] == 2


def test_a_nested_path_keeps_its_path_under_edited(stack, clip_bytes):
    put(stack, "incoming/a/b c/ü+1/clip.mp4", clip_bytes)
    put(stack, "incoming/a/b c/ü+1/clip.json", sidecar())

    jobs = run_to_end(stack)

    assert [job.state for job in jobs] == [JobState.PERSISTED]
    assert keys(stack, "edited/") == [
        "edited/a/b c/ü+1/clip.json",
        "edited/a/b c/ü+1/clip.mp4",
        "edited/a/b c/ü+1/clip.preview.jpg",
    ]


def test_a_task_that_ends_failed_gives_a_report_and_no_mp4(stack, outcomes, clip_bytes):
    stack.emulator.faults.fail_next(1, code="InvalidParameter", message="The size is not match the media")
    put(stack, "incoming/bad/clip.mp4", clip_bytes)
    put(stack, "incoming/bad/clip.json", sidecar())

    jobs = run_to_end(stack)

    assert [job.state for job in jobs] == [JobState.FAILED]
    assert keys(stack, "edited/") == []
    report = json.loads(get_object(stack, "failed/bad/clip.json"))
    assert report["status"] == "FAILED"
    assert report["error"] == {"code": "InvalidParameter", "message": "The size is not match the media"}
    assert "fix" in report and report["task_id"] == jobs[0].task_id
    [announced] = outcomes.bus_events()
    assert announced["detail-type"] == "Video Edit Failed"
    assert announced["detail"]["error_code"] == "InvalidParameter"
    assert announced["detail"]["report_key"] == "failed/bad/clip.json"


def test_bad_input_is_rejected_with_a_report_and_never_reaches_the_api(stack, clip_bytes):
    put(stack, "incoming/reject/clip.mp4", clip_bytes)
    put(stack, "incoming/reject/clip.json", json.dumps({"prompt": "x", "ratio": "2:1", "seed": -1}).encode())

    jobs = run_to_end(stack)

    assert [job.state for job in jobs] == [JobState.REJECTED]
    report = json.loads(get_object(stack, "failed/reject/clip.json"))
    assert report["status"] == "REJECTED"
    assert {p["field"] for p in report["problems"]} >= {"sidecar.ratio", "sidecar.seed"}
    assert stack.emulator.counters["tasks_created"] == 0
