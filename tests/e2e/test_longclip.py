"""Long clips on the whole local stack: split into 2-10 s tasks, edited, stitched back seamlessly.

The clip carries its frame number drawn in every frame and a beep at every whole second, so the
edited result can be checked frame by frame (no frame duplicated or dropped at a boundary) and for
sync (each beep still starts on its second).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.samplemedia import beep_onsets, make_clip, probe, read_frame_marks
from tests.e2e.steps import get_object, keys, put, run_to_end
from tests.e2e.test_pipeline import sidecar
from wanedit.domain.job import Job, JobState

pytestmark = pytest.mark.xdist_group("e2e")

FPS = 12
FRAME = 1 / FPS


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("longclip")


def clip(media: Path, name: str, seconds: float, **options: Any) -> bytes:
    path = make_clip(
        media / name, seconds=seconds, width=640, height=360, fps=FPS, frame_marks=True, beeps=True, **options
    )
    return Path(path).read_bytes()


def jobs_by_kind(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    parents = [job for job in jobs if job.parent_id is None]
    segments = sorted((job for job in jobs if job.parent_id), key=lambda job: job.segment_index or 0)
    return parents, segments


def test_a_27_s_clip_comes_back_as_one_seamless_edited_mp4(stack, outcomes, media, tmp_path):
    put(stack, "incoming/long/walk.json", sidecar(long_clip="split"))
    put(stack, "incoming/long/walk.mp4", clip(media, "walk.mp4", 27.0, gop=FPS))

    [parent], segments = jobs_by_kind(run_to_end(stack, ticks=24))

    assert parent.state is JobState.PERSISTED, parent.error_message
    assert len(segments) >= 3 and all(s.state is JobState.PERSISTED for s in segments)
    assert stack.emulator.counters["tasks_created"] == len(segments)
    assert stack.emulator.counters["max_running_seen"] <= 5  # segments share the account's cap
    assert all(2.0 <= s.duration <= 10.0 for s in parent.segments)
    assert all(s.copied for s in parent.segments)  # keyframes every second: no re-encoding to split
    # One seed, prompt and parameter set for every task.
    bodies = stack.emulator.counters["created_bodies"]
    assert len({json.dumps(b["parameters"], sort_keys=True) for b in bodies}) == 1
    assert bodies[0]["parameters"]["seed"] == parent.request.parameters.seed
    assert {b["input"]["prompt"] for b in bodies} == {parent.prompt}

    out = tmp_path / "walk.mp4"
    out.write_bytes(get_object(stack, "edited/long/walk.mp4"))
    info = probe(out)
    assert (info["width"], info["height"]) == (1280, 720)
    total_frames = 27 * FPS
    assert info["duration_s"] == pytest.approx(27.0, abs=len(segments) * FRAME)
    marks = read_frame_marks(out)
    assert marks == list(range(total_frames))  # every frame once, in order: seamless boundaries
    assert info["has_audio"]
    onsets = beep_onsets(out)
    assert len(onsets) == 27
    assert all(abs(onset - round(onset)) <= FRAME for onset in onsets)  # audio in sync with video

    manifest = json.loads(get_object(stack, "edited/long/walk.json"))
    assert [s["task_id"] for s in manifest["segments"]] == [s.task_id for s in segments]
    assert manifest["task_ids"] == [s.task_id for s in segments]
    assert manifest["stitch"]["audio"] == "original"
    assert sum(manifest["stitch"]["segment_frames"]) == total_frames
    assert manifest["usage"]["input_video_duration"] == pytest.approx(
        sum(s.usage.input_video_duration or 0.0 for s in segments if s.usage)
    )
    [announced] = outcomes.bus_events()
    assert announced["detail-type"] == "Video Edit Succeeded"
    assert announced["detail"]["segments"] == len(segments)
    assert keys(stack, "work/") == []  # working files go once the clip is stitched
    assert keys(stack, "edited/") == [f"edited/long/walk.{ext}" for ext in ("json", "mp4", "preview.jpg")]


def test_a_10_5_s_clip_splits_into_segments_of_at_least_2_s(stack, media):
    put(stack, "incoming/tail/c.json", sidecar(long_clip="split", audio_setting="origin"))
    put(stack, "incoming/tail/c.mp4", clip(media, "c.mp4", 10.5))  # a keyframe only at frame 0

    [parent], segments = jobs_by_kind(run_to_end(stack, ticks=16))

    assert parent.state is JobState.PERSISTED, parent.error_message
    assert len(parent.segments) == 2 and all(s.duration >= 2.0 for s in parent.segments)
    assert not all(s.copied for s in parent.segments)  # no keyframe to cut at: re-encoded
    assert len(segments) == 2


def test_a_9_s_clip_is_not_split(stack, media):
    put(stack, "incoming/short/c.json", sidecar(long_clip="split"))
    put(stack, "incoming/short/c.mp4", clip(media, "short.mp4", 9.0))

    jobs = run_to_end(stack, ticks=8)

    assert [(job.state, job.segments, job.parent_id) for job in jobs] == [(JobState.PERSISTED, [], None)]
    assert stack.emulator.counters["tasks_created"] == 1


def test_a_segment_whose_task_fails_is_retried(stack, media):
    stack.emulator.faults.fail_next(1, code="InternalError.Algo", message="The model failed.")
    put(stack, "incoming/retry/c.json", sidecar(long_clip="split"))
    put(stack, "incoming/retry/c.mp4", clip(media, "retry.mp4", 10.5, gop=FPS))

    [parent], segments = jobs_by_kind(run_to_end(stack, ticks=16))

    assert parent.state is JobState.PERSISTED, parent.error_message
    assert stack.emulator.counters["tasks_created"] == 3
    assert sorted(s.task_retries for s in segments) == [0, 1]
    manifest = json.loads(get_object(stack, "edited/retry/c.json"))
    assert sorted(s["task_retries"] for s in manifest["segments"]) == [0, 1]


def test_a_segment_that_keeps_failing_fails_the_clip_with_a_report_naming_it(stack, outcomes, media):
    stack.emulator.faults.fail_next(100, code="InternalError.Algo", message="The model failed.")
    put(stack, "incoming/bad/c.json", sidecar(long_clip="split"))
    put(stack, "incoming/bad/c.mp4", clip(media, "bad.mp4", 10.5, gop=FPS))

    [parent], segments = jobs_by_kind(run_to_end(stack, ticks=24))

    assert parent.state is JobState.FAILED
    assert stack.emulator.counters["tasks_created"] == 2 * 3  # each segment: its task and 2 retries
    report = json.loads(get_object(stack, "failed/bad/c.json"))
    assert report["failed_segment"] in (0, 1)
    assert f"segment {report['failed_segment']} " in report["error"]["message"]
    assert [s["index"] for s in report["segments"]] == [0, 1]
    assert keys(stack, "edited/") == []  # nothing published as if complete
    failed = [e for e in outcomes.bus_events() if e["detail-type"] == "Video Edit Failed"]
    assert [e["detail"]["segment"] for e in failed] == [report["failed_segment"]]
    assert all(s.state.is_terminal for s in segments)


def _take_messages(stack: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete what a queue holds: the message is lost, as if never sent."""
    sqs = stack.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def _settle(stack: Any, rounds: int = 12) -> None:
    for _ in range(rounds):
        stack.pump.drain()
        stack.pump.tick()
    stack.pump.drain()


def test_lost_split_and_stitch_messages_are_sent_again_by_the_poller(stack, media):
    from wanedit.domain.timing import RESEND_AFTER_SECONDS

    put(stack, "incoming/lost/c.json", sidecar(long_clip="split"))
    put(stack, "incoming/lost/c.mp4", clip(media, "lost.mp4", 10.5, gop=FPS))
    stack.pump.deliver("submit")
    [lost] = _take_messages(stack, stack.resources.longclip_queue_url)
    assert lost["action"] == "split"

    stack.clock.sleep(RESEND_AFTER_SECONDS)  # nothing happens until the poller's backstop
    stack.pump.tick()
    assert stack.pump.deliver("longclip") == 1  # the split, sent again
    for _ in range(12):  # the segments run; the stitch message is left in its queue
        stack.pump.deliver("submit")
        stack.pump.deliver("complete")
        stack.pump.tick()
    stack.pump.deliver("complete")
    parents, segments = jobs_by_kind(services_jobs())
    assert parents[0].state is JobState.SEGMENTED
    assert all(s.state is JobState.PERSISTED for s in segments)  # finished; their stitch was asked for
    taken = _take_messages(stack, stack.resources.longclip_queue_url)  # ... and is lost too
    assert taken and all(m == {"action": "stitch", "job_id": parents[0].job_id} for m in taken)

    stack.clock.sleep(RESEND_AFTER_SECONDS)  # a stitch may take the function's 15 min: then asked again
    _settle(stack, rounds=2)
    [parent], _ = jobs_by_kind(services_jobs())
    assert parent.state is JobState.PERSISTED
    assert stack.emulator.counters["tasks_created"] == 2  # nothing was submitted twice


def test_a_split_worker_that_dies_midway_is_taken_over_after_its_timeout(stack, media):
    from local.pump import SimulatedCrash
    from wanedit.container import services
    from wanedit.domain.timing import RESEND_AFTER_SECONDS

    objects = services().objects
    real_upload = objects.upload_file
    uploads = 0

    def dies_on_the_second_upload(*args: Any, **kwargs: Any) -> Any:
        nonlocal uploads
        uploads += 1
        if uploads == 2:
            raise SimulatedCrash("the split worker died after one segment")
        return real_upload(*args, **kwargs)

    objects.upload_file = dies_on_the_second_upload  # type: ignore[method-assign]
    try:
        put(stack, "incoming/crash/c.json", sidecar(long_clip="split"))
        put(stack, "incoming/crash/c.mp4", clip(media, "crash.mp4", 10.5, gop=FPS))
        _settle(stack, rounds=2)
        [parent] = services_jobs()
        assert parent.state is JobState.SPLITTING and parent.work_started_at is not None
        stack.clock.sleep(RESEND_AFTER_SECONDS)  # the dead worker's claim is stale: the poller resends
        _settle(stack)
    finally:
        objects.upload_file = real_upload  # type: ignore[method-assign]

    [parent], segments = jobs_by_kind(services_jobs())
    assert parent.state is JobState.PERSISTED, parent.error_message
    assert len(segments) == 2
    assert stack.emulator.counters["tasks_created"] == 2


def test_a_long_clip_can_be_canceled_while_its_segments_wait(stack, media):
    from wanedit.container import services
    from wanedit.usecases.cancel import cancel_job

    stack.emulator.faults.task_seconds_queue.extend([600.0] * 5)  # five long tasks hold every slot
    for name in range(5):
        put(stack, f"incoming/busy/{name}.json", sidecar())
        put(stack, f"incoming/busy/{name}.mp4", clip(media, f"busy{name}.mp4", 3.0))
    put(stack, "incoming/cancel/c.json", sidecar(long_clip="split"))
    put(stack, "incoming/cancel/c.mp4", clip(media, "cancel.mp4", 10.5, gop=FPS))
    stack.pump.drain()
    parent = next(j for j in services_jobs() if j.parent_id is None and j.segments)
    assert parent.state is JobState.SEGMENTED

    canceled = cancel_job(services(), parent.job_id)

    assert canceled.state is JobState.CANCELED
    children = [services().store.get(s.job_id) for s in parent.segments]
    assert all(child is not None and child.state is JobState.CANCELED for child in children)
    assert stack.emulator.counters["tasks_created"] == 5  # the segments never reached the API


def services_jobs() -> list[Job]:
    from wanedit.container import services

    return services().store.list_jobs()
