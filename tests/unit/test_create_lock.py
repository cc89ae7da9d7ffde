"""The per-prompt create lock: every branch, and the chaos suite's three swaps as unit scenarios.

A create whose answer is lost is found again by time and prompt (`usecases.reconcile`), so no two
jobs of one prompt may create close together while either outcome is unresolved. The scenarios at
the end are seeds 1216, 1823 and 2856 of the chaos suite: before the lock, each ended with a job
publishing another job's edit (or paying for a second task); here each job ends with its own.
"""

from __future__ import annotations

import logging

import pytest

from tests.unit.fakes import World, make_job, world
from wanedit.dashscope import (
    CreateOutcomeUnknown,
    CreateTaskRequest,
    CreateTaskResponse,
    FinalError,
    QuotaExhaustedError,
    RetryableError,
    TaskStatus,
    ThrottledError,
)
from wanedit.domain.job import Job, Segment, segment_job_id
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import (
    CREATE_LOCK_RETRY_SECONDS,
    CREATE_LOCK_SECONDS,
    CREATE_SEND_WINDOW,
    LIST_MARGIN_SECONDS,
    RECONCILE_SKEW,
    STALE_SUBMITTING_SECONDS,
)
from wanedit.ports import CreateLock
from wanedit.usecases.longclip.segments import ensure_segment_jobs
from wanedit.usecases.poll import SLOT_LEASE_GRACE_SECONDS, PollReport, poll_once, reap_slots
from wanedit.usecases.reconcile import CLAIM_GRACE_SECONDS, RECONCILE_WINDOW_SECONDS, reconcile
from wanedit.usecases.submission import prompt_fingerprint, try_submit

PROMPT = "make it snow"  # make_job's: every job below shares it unless it says otherwise
FINGERPRINT = prompt_fingerprint(PROMPT)


def queued(w: World, stem: str, **fields: object) -> str:
    job = make_job(w, stem=stem, **fields)
    assert w.store.put_new(job)
    return job.job_id


def submit(w: World, job_id: str) -> Job:
    return try_submit(w.svc, w.store.get(job_id))  # type: ignore[arg-type]


def lock(w: World) -> CreateLock | None:
    return w.store.create_lock(FINGERPRINT, w.clock.now())


def lose_next_create(w: World, *, made: bool) -> None:
    """The next create's answer is lost (a read timeout); the service made its task, or not."""
    w.api.fail_next("create", CreateOutcomeUnknown(None, "ReadTimeout", "no answer", None))
    w.api.made_despite_error = made


def lose_creates(w: World, monkeypatch: pytest.MonkeyPatch, made_by_video: dict[str, bool]) -> None:
    """Lose the answer of the first create for each video (a key fragment), whenever it is made."""
    original = w.api.create_task

    def create(request: CreateTaskRequest) -> CreateTaskResponse:
        url = request.input.media[0].url
        for fragment, made in list(made_by_video.items()):
            if fragment in url:
                del made_by_video[fragment]
                lose_next_create(w, made=made)
        return original(request)

    monkeypatch.setattr(w.api, "create_task", create)


def video_of_task(w: World, task_id: str | None) -> str:
    """The video a task was made from: the presigned URL its create sent."""
    request = w.api.tasks[task_id or ""].request
    assert request is not None
    return request.input.media[0].url


def run_until_succeeded(w: World, job_ids: list[str], *, step: float = 5.0, limit: int = 200) -> None:
    """The service finishes every task at once; the poller runs every `step` s until all succeeded."""
    for _ in range(limit):
        for task in w.api.tasks.values():
            if task.status is TaskStatus.PENDING:
                w.api.finish(task.task_id)
        if all(w.store.state(job_id) is JobState.SUCCEEDED for job_id in job_ids):
            return
        w.clock.advance(step)
        poll_once(w.svc, PollReport())
    raise AssertionError({job_id: w.store.state(job_id) for job_id in job_ids})


def assert_each_has_its_own_task(w: World, job_ids: list[str]) -> None:
    jobs = [w.store.jobs[job_id] for job_id in job_ids]
    assert len({job.task_id for job in jobs}) == len(jobs)
    for job in jobs:
        assert job.video.key in video_of_task(w, job.task_id), job.job_id
        assert w.store.task_owner(job.task_id or "") == job.job_id


# --------------------------------------------------------------------------- the span


def test_the_lock_outlasts_every_reconcile_window_that_could_hold_the_other_attempts_task() -> None:
    # a's task is created by a + SEND (ours) + SKEW (the service's clock); b's list begins at
    # b - max(SKEW, LIST_MARGIN) and keeps from b - SKEW: both must begin after it.
    latest_a = CREATE_SEND_WINDOW + RECONCILE_SKEW
    assert CREATE_LOCK_SECONDS - max(RECONCILE_SKEW, LIST_MARGIN_SECONDS) > latest_a
    # b's task is created from b - SKEW on; a's list ends at a + SEND + LIST_MARGIN.
    assert CREATE_LOCK_SECONDS - RECONCILE_SKEW > CREATE_SEND_WINDOW + LIST_MARGIN_SECONDS


def test_the_fingerprint_is_a_hash_of_the_prompt_as_sent_never_the_prompt() -> None:
    assert FINGERPRINT == prompt_fingerprint("make it snow") != prompt_fingerprint("make it snow ")
    assert PROMPT not in FINGERPRINT and len(FINGERPRINT) == 64


# --------------------------------------------------------------------------- each branch


def test_a_free_lock_is_held_for_the_create_and_released_once_the_task_is_claimed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    job_id = queued(w, "team/a")
    during: list[CreateLock | None] = []
    original = w.api.create_task

    def create(request: CreateTaskRequest) -> CreateTaskResponse:
        during.append(lock(w))
        return original(request)

    monkeypatch.setattr(w.api, "create_task", create)
    job = submit(w, job_id)
    assert during == [CreateLock(job_id, w.clock.now() + CREATE_LOCK_SECONDS)]
    assert job.state is JobState.SUBMITTED and w.store.task_owner(job.task_id or "") == job_id
    assert lock(w) is None and w.store.create_locks == {}


def test_a_lock_another_job_holds_means_no_create_and_a_look_again_in_a_few_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world()
    now = w.clock.now()
    assert w.store.acquire_create_lock(FINGERPRINT, "j-other", now=now, until=now + CREATE_LOCK_SECONDS)
    job_id = queued(w, "team/a")
    with caplog.at_level(logging.INFO):
        job = submit(w, job_id)
    assert job.state is JobState.QUEUED and w.api.calls["create"] == 0
    assert job.next_poll_at == now + CREATE_LOCK_RETRY_SECONDS and w.store.queued(now, 10) == []
    assert w.store.slot_holders() == {} and job.submitting_since is None and job.submit_attempts == 0
    assert w.store.moves == []  # it never left QUEUED: a crash here cannot leave it to be reconciled
    assert lock(w) == CreateLock("j-other", now + CREATE_LOCK_SECONDS)  # untouched
    [line] = [r for r in caplog.records if "same prompt" in r.getMessage()]
    assert line.levelno == logging.INFO and getattr(line, "other_job_id", None) == "j-other"


def test_a_blocked_job_looks_again_when_the_lock_expires_if_that_is_sooner() -> None:
    w = world()
    now = w.clock.now()
    w.store.acquire_create_lock(FINGERPRINT, "j-other", now=now - CREATE_LOCK_SECONDS + 2, until=now + 2)
    job = submit(w, queued(w, "team/a"))
    assert job.state is JobState.QUEUED and job.next_poll_at == now + 2


def test_a_job_of_another_prompt_is_never_blocked() -> None:
    w = world()
    now = w.clock.now()
    w.store.acquire_create_lock(FINGERPRINT, "j-other", now=now, until=now + CREATE_LOCK_SECONDS)
    job = submit(w, queued(w, "team/a", prompt="make it rain"))
    assert job.state is JobState.SUBMITTED and w.api.calls["create"] == 1


def test_a_lock_the_job_holds_itself_after_a_crash_is_renewed_and_the_create_made() -> None:
    w = world()
    job_id = queued(w, "team/a")
    earlier = w.clock.now() - 100
    w.store.acquire_create_lock(FINGERPRINT, job_id, now=earlier, until=earlier + CREATE_LOCK_SECONDS)
    job = submit(w, job_id)
    assert job.state is JobState.SUBMITTED and w.api.calls["create"] == 1 and lock(w) is None


def test_an_uncertain_answer_keeps_the_lock_until_it_expires_then_another_job_creates() -> None:
    w = world()
    first, second = queued(w, "team/a"), queued(w, "team/b")
    lose_next_create(w, made=True)
    since = w.clock.now()
    assert submit(w, first).state is JobState.RECONCILING
    assert lock(w) == CreateLock(first, since + CREATE_LOCK_SECONDS)
    w.clock.advance(CREATE_LOCK_SECONDS - 0.5)
    assert submit(w, second).state is JobState.QUEUED and w.api.calls["create"] == 1
    w.clock.advance(0.5)  # the lock has expired: no window of the first attempt holds a task made now
    assert submit(w, second).state is JobState.SUBMITTED and w.api.calls["create"] == 2
    assert lock(w) is None


@pytest.mark.parametrize(
    "error",
    [
        ThrottledError(429, "Throttling", "slow down", "r-1"),
        QuotaExhaustedError(429, "Throttling.AllocationQuota", "quota used up", "r-1"),
        RetryableError(None, None, "connection refused before sending", None),
        FinalError(400, "InvalidParameter", "bad prompt", "r-1"),
    ],
    ids=["throttled", "quota", "never-sent", "refused"],
)
def test_a_definite_refusal_made_nothing_and_releases_the_lock(error: Exception) -> None:
    w = world()
    job_id = queued(w, "team/a")
    w.api.fail_next("create", error)
    job = submit(w, job_id)
    assert job.state in (JobState.QUEUED, JobState.FAILED) and lock(w) is None
    assert w.store.slot_holders() == {}


def test_a_crash_after_the_lock_and_before_the_create_keeps_it_only_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    first, second = queued(w, "team/a"), queued(w, "team/b")

    def crash(request: CreateTaskRequest) -> CreateTaskResponse:
        raise RuntimeError("the worker died")

    monkeypatch.setattr(w.api, "create_task", crash)
    with pytest.raises(RuntimeError):
        submit(w, first)
    monkeypatch.undo()
    held = lock(w)
    assert w.store.state(first) is JobState.SUBMITTING and held is not None and held.holder == first
    assert submit(w, second).state is JobState.QUEUED  # it might have been sent: no other create
    w.clock.advance(CREATE_LOCK_SECONDS)
    assert submit(w, second).state is JobState.SUBMITTED  # never leaked: it expired


def test_a_crash_after_the_lock_and_before_the_job_leaves_queued_keeps_it_for_the_job_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    first, second = queued(w, "team/a"), queued(w, "team/b")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the worker died")

    monkeypatch.setattr(w.store, "transition", crash)
    with pytest.raises(RuntimeError):
        submit(w, first)
    monkeypatch.undo()
    assert w.store.state(first) is JobState.QUEUED and lock(w) == CreateLock(
        first, w.clock.now() + CREATE_LOCK_SECONDS
    )
    assert submit(w, second).state is JobState.QUEUED
    assert submit(w, first).state is JobState.SUBMITTED and lock(w) is None  # its own lock: it goes on
    assert submit(w, second).state is JobState.SUBMITTED


def test_a_crash_while_waiting_leaves_the_job_queued_and_its_lease_to_the_reaper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    now = w.clock.now()
    w.store.acquire_create_lock(FINGERPRINT, "j-other", now=now, until=now + CREATE_LOCK_SECONDS)
    job_id = queued(w, "team/a")

    def crash(job_id: str) -> None:
        raise RuntimeError("the worker died")

    monkeypatch.setattr(w.store, "release_slot", crash)
    with pytest.raises(RuntimeError):
        submit(w, job_id)
    monkeypatch.undo()
    assert w.store.state(job_id) is JobState.QUEUED and job_id in w.store.slot_holders()
    w.clock.advance(SLOT_LEASE_GRACE_SECONDS)
    reap_slots(w.svc)
    assert w.store.slot_holders() == {} and w.store.moves == []


def test_a_job_withdrawn_before_its_create_releases_the_lock() -> None:
    w = world()
    job_id = queued(w, "team/a")
    w.objects.delete("incoming/team/a.json")
    job = submit(w, job_id)
    assert job.state is JobState.CANCELED and w.api.calls["create"] == 0 and lock(w) is None


def test_reconciliation_that_adopts_its_task_releases_the_lock() -> None:
    w = world()
    job_id = queued(w, "team/a")
    lose_next_create(w, made=True)
    submit(w, job_id)
    [task] = w.api.tasks
    w.api.finish(task)
    w.clock.advance(CLAIM_GRACE_SECONDS + 1)
    assert reconcile(w.svc, w.store.get(job_id))  # type: ignore[arg-type]
    assert w.store.jobs[job_id].task_id == task and lock(w) is None


def test_reconciliation_that_finds_nothing_keeps_the_lock_and_its_job_creates_again() -> None:
    w = world()
    first, second = queued(w, "team/a"), queued(w, "team/b")
    lose_next_create(w, made=False)
    submit(w, first)
    w.clock.advance(RECONCILE_WINDOW_SECONDS)
    assert not reconcile(w.svc, w.store.get(first))  # type: ignore[arg-type]
    assert w.store.state(first) is JobState.QUEUED and lock(w) is not None
    assert submit(w, second).state is JobState.QUEUED  # still the first job's
    again = submit(w, first)  # its own lock: renewed for the new attempt
    assert again.state is JobState.SUBMITTED and again.submit_attempts == 2 and lock(w) is None


def test_a_stale_submitting_job_reconciles_under_the_lock_it_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    w = world()
    first, second = queued(w, "team/a"), queued(w, "team/b")
    original = w.api.create_task

    def create_then_die(request: CreateTaskRequest) -> CreateTaskResponse:
        original(request)  # the task is made; the worker dies before recording it
        raise RuntimeError("the worker died")

    monkeypatch.setattr(w.api, "create_task", create_then_die)
    with pytest.raises(RuntimeError):
        submit(w, first)
    monkeypatch.undo()
    run_until_succeeded(w, [first, second], step=STALE_SUBMITTING_SECONDS / 8)
    assert_each_has_its_own_task(w, [first, second])
    assert len(w.api.tasks) == 2


# --------------------------------------------------------------------------- the chaos seeds


def test_seed_1216_two_clips_of_one_prompt_lose_both_creates_and_each_keeps_its_own_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    a, b = queued(w, "team/a"), queued(w, "team/b")
    lose_creates(w, monkeypatch, {"team/a.mp4": True, "team/b.mp4": True})
    assert submit(w, b).state is JobState.RECONCILING
    assert submit(w, a).state is JobState.QUEUED  # the same moment: it waits, nothing sent
    run_until_succeeded(w, [a, b])
    assert_each_has_its_own_task(w, [a, b])
    assert len(w.api.tasks) == 2 and w.api.calls["create"] == 2  # both were lost, each once


def test_without_the_lock_seed_1216_swaps_the_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario above is the chaos suite's: with every lock granted, the two jobs swap tasks."""
    w = world()
    a, b = queued(w, "team/a"), queued(w, "team/b")
    monkeypatch.setattr(w.store, "acquire_create_lock", lambda *args, **kwargs: True)
    lose_creates(w, monkeypatch, {"team/a.mp4": True, "team/b.mp4": True})
    assert submit(w, b).state is JobState.RECONCILING and submit(w, a).state is JobState.RECONCILING
    run_until_succeeded(w, [a, b])
    assert "team/b.mp4" in video_of_task(w, w.store.jobs[a].task_id)  # a would publish b's edit


def segmented(w: World, count: int) -> list[str]:
    """A long clip split into `count` segments, its segment jobs made (and submitted)."""
    parent = make_job(w, job_id="j-long", stem="team/long", state=JobState.SPLITTING)
    w.store.put_new(parent)
    segments = []
    for i in range(count):
        stored = w.objects.put(f"work/j-long/segments/{i:03d}.mp4", b"segment")
        segments.append(
            Segment(
                index=i,
                job_id=segment_job_id("j-long", i),
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
        "j-long", [JobState.SPLITTING], JobState.SEGMENTED, now=now, next_poll_at=now + 300, segments=segments
    )
    assert moved is not None
    ensure_segment_jobs(w.svc, moved)
    return [segment.job_id for segment in segments]


def test_seed_1823_a_long_clips_two_segments_lose_both_creates_and_keep_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    lose_creates(w, monkeypatch, {"segments/000.mp4": True, "segments/001.mp4": True})
    first, second = segmented(w, 2)
    assert w.store.state(first) is JobState.RECONCILING and w.store.state(second) is JobState.QUEUED
    run_until_succeeded(w, [first, second])
    assert_each_has_its_own_task(w, [first, second])  # halves stitched in their order
    assert "segments/000.mp4" in video_of_task(w, w.store.jobs[first].task_id)


def test_seed_2856_a_refused_create_never_adopts_the_task_of_a_clip_created_15_s_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    a, b = queued(w, "team/a"), queued(w, "team/b")
    lose_creates(w, monkeypatch, {"team/a.mp4": False, "team/b.mp4": True})  # a's 500 made nothing
    assert submit(w, a).state is JobState.RECONCILING
    w.clock.advance(15)
    assert submit(w, b).state is JobState.QUEUED and w.api.calls["create"] == 1  # b waits for a
    run_until_succeeded(w, [a, b])
    assert_each_has_its_own_task(w, [a, b])
    assert len(w.api.tasks) == 2  # no second (billed) task for b
    assert w.store.jobs[a].submit_attempts == 2 and w.store.jobs[b].submit_attempts == 1


def test_many_clips_of_one_prompt_wait_in_turn_behind_one_lost_create(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world(MAX_CONCURRENT_TASKS=3)
    clips = [queued(w, f"team/c{i}") for i in range(4)]
    lose_creates(w, monkeypatch, {f"team/c{i}.mp4": True for i in range(4)})
    states = [submit(w, job_id).state for job_id in clips]
    assert states == [JobState.RECONCILING, JobState.QUEUED, JobState.QUEUED, JobState.QUEUED]
    run_until_succeeded(w, clips)
    assert_each_has_its_own_task(w, clips)
    assert len(w.api.tasks) == 4 and w.store.slot_holders().keys() <= set(clips)
