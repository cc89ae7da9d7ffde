"""Long-clip decisions without media: segment jobs, retries, the clip's end, stitch triggering, claims."""

from __future__ import annotations

import pytest

from tests.unit.fakes import World, make_job, world
from wanedit.dashscope import TaskStatus
from wanedit.domain.job import Job, Segment, segment_job_id
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import RESEND_AFTER_SECONDS, STALE_WORK_SECONDS
from wanedit.events import DETAIL_FAILED
from wanedit.messages import LongClipMessage
from wanedit.usecases.complete import persist_result
from wanedit.usecases.longclip import run_action
from wanedit.usecases.longclip.segments import MAX_TASK_RETRIES, check_segments, ensure_segment_jobs, resend
from wanedit.usecases.longclip.work import MAX_WORK_ATTEMPTS, LongClipRetry, WorkEnded, claim_work, transient
from wanedit.usecases.poll import PollReport, poll_once

PARENT = "j-long"


def segmented(w: World, count: int = 3) -> Job:
    """A long clip split into `count` segments of 8 s, its segment jobs made (and submitted)."""
    parent = make_job(w, job_id=PARENT, state=JobState.SPLITTING)
    w.store.put_new(parent)
    segments = []
    for i in range(count):
        stored = w.objects.put(f"work/{PARENT}/segments/{i:03d}.mp4", b"segment")
        segments.append(
            Segment(
                index=i,
                job_id=segment_job_id(PARENT, i),
                key=stored.key,
                version_id=stored.version_id,
                etag=stored.etag,
                start=8.0 * i,
                duration=8.0,
                frames=200,
                copied=True,
                size=stored.size,
            )
        )
    now = w.clock.now()
    moved = w.store.transition(
        PARENT, [JobState.SPLITTING], JobState.SEGMENTED, now=now, next_poll_at=now + 300, segments=segments
    )
    assert moved is not None
    ensure_segment_jobs(w.svc, moved)
    return moved


def poll(w: World, after: float = 15.0) -> None:
    w.clock.advance(after)
    poll_once(w.svc, PollReport())


def test_segment_jobs_share_the_cap_and_are_made_once() -> None:
    w = world(MAX_CONCURRENT_TASKS=2)
    parent = segmented(w)
    states = [w.store.state(s.job_id) for s in parent.segments]
    assert states == [JobState.SUBMITTED, JobState.SUBMITTED, JobState.QUEUED]
    ensure_segment_jobs(w.svc, parent)  # a repeated split makes no new jobs, no new tasks
    assert w.api.calls["create"] == 2 and w.store.state(PARENT) is JobState.SEGMENTED


def test_a_failed_segment_task_is_retried_within_bounds() -> None:
    w = world()
    parent = segmented(w, count=1)
    child = parent.segments[0].job_id
    for retry in range(1, MAX_TASK_RETRIES + 1):
        job = w.store.get(child)
        assert job is not None and job.task_id
        w.api.finish(job.task_id, TaskStatus.FAILED, code="InternalError")
        poll(w)
        assert w.store.state(child) is JobState.QUEUED and w.store.jobs[child].task_retries == retry
        poll(w, 60)  # past the backoff: submitted again
        assert w.store.state(child) is JobState.SUBMITTED
    w.api.finish(w.store.jobs[child].task_id or "", TaskStatus.FAILED, code="InternalError")
    poll(w)
    assert w.store.state(child) is JobState.FAILED
    assert w.api.calls["create"] == 1 + MAX_TASK_RETRIES


def test_a_segment_failing_for_good_ends_the_clip_once_naming_it() -> None:
    w = world(MAX_CONCURRENT_TASKS=1)
    parent = segmented(w, count=3)
    first = w.store.jobs[parent.segments[0].job_id]
    w.store.jobs[first.job_id] = first.model_copy(update={"task_retries": MAX_TASK_RETRIES})
    w.api.finish(first.task_id or "", TaskStatus.FAILED, code="DataInspectionFailed")
    poll(w)  # the segment ends quietly and wakes its parent...
    assert w.notifier.published == [] and w.store.state(PARENT) is JobState.SEGMENTED
    assert w.store.jobs[PARENT].next_poll_at == w.clock.now()
    poll(w, 1)  # ...whose look ends the clip
    assert w.store.state(PARENT) is JobState.FAILED
    # the segment that took the freed slot meanwhile runs on (unused); the queued one is withdrawn
    assert [w.store.state(s.job_id) for s in parent.segments[1:]] == [JobState.SUBMITTED, JobState.CANCELED]
    report = w.objects.json("failed/team/clip.json")
    assert report["failed_segment"] == 0 and report["error"]["code"] == "DataInspectionFailed"
    failed_events = [d for t, d in w.notifier.published if t == DETAIL_FAILED]
    assert len(failed_events) == 1 and failed_events[0]["segment"] == 0
    assert w.api.calls["create"] == 2  # the withdrawn segment never reached the API


def test_the_last_segment_saved_asks_for_the_stitch() -> None:
    w = world(MAX_CONCURRENT_TASKS=3)
    parent = segmented(w, count=2)
    for segment in parent.segments:
        task = w.store.jobs[segment.job_id].task_id or ""
        w.api.finish(task)
    poll(w)
    for message in list(w.completion.sent):
        persist_result(w.svc, message.job_id)
    assert w.long_clips.sent == [LongClipMessage(action="stitch", job_id=PARENT)]
    assert w.objects.head(f"work/{PARENT}/edited/000.mp4") is not None
    assert w.objects.head("edited/team/clip.segment-000.mp4") is None  # segments never publish
    assert w.notifier.published == []


def test_the_poller_makes_missing_segment_jobs_and_resends_a_lost_stitch() -> None:
    w = world(MAX_CONCURRENT_TASKS=3)
    parent = segmented(w, count=2)
    del w.store.jobs[parent.segments[1].job_id]  # the split worker died before making it
    check_segments(w.svc, w.store.get(PARENT))  # type: ignore[arg-type]
    assert w.store.get(parent.segments[1].job_id) is not None
    for segment in parent.segments:
        w.store.jobs[segment.job_id] = w.store.jobs[segment.job_id].model_copy(
            update={"state": JobState.PERSISTED}
        )
    check_segments(w.svc, w.store.get(PARENT))  # type: ignore[arg-type]
    assert w.long_clips.sent == [LongClipMessage(action="stitch", job_id=PARENT)]
    assert w.store.jobs[PARENT].next_poll_at == w.clock.now() + RESEND_AFTER_SECONDS


def test_a_lost_split_message_is_sent_again() -> None:
    w = world()
    parent = make_job(w, job_id=PARENT, state=JobState.SPLITTING)
    w.store.put_new(parent)
    resend(w.svc, parent)
    assert w.long_clips.sent == [LongClipMessage(action="split", job_id=PARENT)]


def test_a_fresh_claim_is_respected_and_a_stale_one_taken_over_once() -> None:
    w = world()
    parent = make_job(w, job_id=PARENT, state=JobState.SPLITTING)
    w.store.put_new(parent)
    mine = claim_work(w.svc, parent, JobState.SPLITTING, JobState.SPLITTING)
    assert mine is not None and mine.work_started_at == w.clock.now()
    assert claim_work(w.svc, mine, JobState.SPLITTING, JobState.SPLITTING) is None  # still fresh
    w.clock.advance(STALE_WORK_SECONDS)
    taker = claim_work(w.svc, mine, JobState.SPLITTING, JobState.SPLITTING)
    assert taker is not None and taker.work_attempts == 2
    assert claim_work(w.svc, mine, JobState.SPLITTING, JobState.SPLITTING) is None  # a second taker loses


def test_a_transient_step_hands_the_clip_back_then_gives_up() -> None:
    w = world()
    parent = make_job(w, job_id=PARENT, state=JobState.SPLITTING)
    w.store.put_new(parent)
    claimed = claim_work(w.svc, parent, JobState.SPLITTING, JobState.SPLITTING)
    assert claimed is not None

    def broken() -> None:
        raise ConnectionError("S3 is down")

    with pytest.raises(LongClipRetry):
        transient(w.svc, claimed, "download the clip", broken)
    back = w.store.get(PARENT)
    assert back is not None and back.state is JobState.SPLITTING and back.work_started_at is None
    worn = claimed.model_copy(update={"work_attempts": MAX_WORK_ATTEMPTS})
    with pytest.raises(WorkEnded) as ended:
        transient(w.svc, worn, "download the clip", broken)
    assert ended.value.state is JobState.FAILED
    assert w.objects.json("failed/team/clip.json")["error"]["code"] == "LongClipWorkFailed"


def test_a_message_for_an_unknown_clip_is_dropped() -> None:
    assert run_action(world().svc, LongClipMessage(action="split", job_id="j-nobody")) is None
