"""The poller's decisions, without moto or HTTP: task statuses, UNKNOWN, expiry, list mode, backstops."""

from __future__ import annotations

import pytest

from tests.unit.fakes import World, make_job, world
from wanedit.dashscope import FinalError, RetryableError, TaskStatus
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import TASK_LIFETIME_SECONDS
from wanedit.domain.timing import RESEND_AFTER_SECONDS, STALE_SUBMITTING_SECONDS
from wanedit.events import DETAIL_FAILED
from wanedit.messages import CompletionMessage
from wanedit.usecases.poll import PollReport, poll_once, reap_slots, run_poll
from wanedit.usecases.submission import try_submit
from wanedit.usecases.tracking import UNKNOWN_GRACE_SECONDS


def submitted(w: World, stem: str = "team/clip", **fields: object) -> Job:
    job = make_job(w, stem=stem, **fields)
    assert w.store.put_new(job)
    return try_submit(w.svc, job)


def poll(w: World, after: float = 15.0) -> PollReport:
    w.clock.advance(after)
    report = PollReport()
    poll_once(w.svc, report)
    return report


def test_a_running_task_is_looked_at_again_in_15_s() -> None:
    w = world()
    job = submitted(w)
    w.api.tasks[job.task_id or ""].status = TaskStatus.RUNNING
    report = poll(w)
    now = w.clock.now()
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.SUBMITTED and after.task_status == "RUNNING"
    assert after.next_poll_at == now + 15.0 and report.queried == 1 and report.states == {"RUNNING": 1}


def test_success_hands_the_job_to_the_completion_queue_and_frees_its_slot() -> None:
    w = world()
    job = submitted(w)
    w.api.finish(job.task_id or "")
    report = poll(w)
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.SUCCEEDED and after.video_url
    assert after.usage is not None and after.usage.duration == 8.0 and after.orig_prompt == "make it snow"
    assert w.completion.sent == [CompletionMessage(job_id=job.job_id)] and w.store.slot_holders() == {}
    assert after.next_poll_at == w.clock.now() + RESEND_AFTER_SECONDS and report.succeeded == 1


@pytest.mark.parametrize(
    "status, state, code",
    [(TaskStatus.FAILED, JobState.FAILED, "InternalError"), (TaskStatus.CANCELED, JobState.CANCELED, None)],
)
def test_a_task_that_ends_otherwise_ends_the_job_with_a_report(
    status: TaskStatus, state: JobState, code: str | None
) -> None:
    w = world()
    job = submitted(w)
    w.api.finish(job.task_id or "", status, code=code)
    report = poll(w)
    after = w.store.get(job.job_id)
    assert after is not None and after.state is state and report.ended == 1
    assert after.error_code == (code or "Canceled") and w.store.slot_holders() == {}
    assert w.objects.json("failed/team/clip.json")["status"] == state.value
    assert w.notifier.types() == [DETAIL_FAILED]


def test_unknown_is_given_a_grace_before_the_job_expires_and_keeps_its_slot_meanwhile() -> None:
    w = world()
    job = submitted(w)
    del w.api.tasks[job.task_id or ""]  # the service lost it
    poll(w)
    during = w.store.get(job.job_id)
    assert during is not None and during.state is JobState.SUBMITTED and during.first_unknown_at is not None
    assert job.job_id in w.store.slot_holders()  # the task may still be alive: its slot stays taken
    poll(w, UNKNOWN_GRACE_SECONDS)
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.EXPIRED and after.error_code == "TaskExpired"
    assert w.store.slot_holders() == {}


def test_unknown_that_turns_out_to_be_a_blip_is_forgotten() -> None:
    w = world()
    job = submitted(w)
    task = w.api.tasks.pop(job.task_id or "")
    poll(w)
    w.api.tasks[task.task_id] = task
    task.status = TaskStatus.RUNNING
    poll(w)
    after = w.store.get(job.job_id)
    assert after is not None and after.first_unknown_at is None and after.task_status == "RUNNING"


def test_a_task_still_running_after_24_h_expires() -> None:
    w = world()
    job = submitted(w)
    w.api.tasks[job.task_id or ""].status = TaskStatus.RUNNING
    poll(w, TASK_LIFETIME_SECONDS)
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.EXPIRED and w.store.slot_holders() == {}


@pytest.mark.parametrize(
    "error, delay",
    [(RetryableError(503, None, "busy", None), 15.0), (FinalError(403, "AccessDenied", "no", None), 60.0)],
)
def test_a_failed_query_is_tried_again_later(error: Exception, delay: float) -> None:
    w = world()
    job = submitted(w)
    w.api.fail_next("get", error)
    poll(w)
    after = w.store.get(job.job_id)
    assert (
        after is not None
        and after.state is JobState.SUBMITTED
        and after.next_poll_at == w.clock.now() + delay
    )


def test_a_query_failing_past_the_task_lifetime_expires_the_job() -> None:
    w = world()
    job = submitted(w)
    w.api.fail_next("get", RetryableError(503, None, "busy", None))
    poll(w, TASK_LIFETIME_SECONDS)
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.EXPIRED and w.store.slot_holders() == {}


def test_several_tasks_are_followed_by_one_list_and_only_ended_ones_are_queried() -> None:
    w = world(MAX_CONCURRENT_TASKS=3)
    jobs = [submitted(w, f"team/clip{i}") for i in range(3)]
    for job in jobs:
        w.api.tasks[job.task_id or ""].status = TaskStatus.RUNNING
    w.api.finish(jobs[0].task_id or "")
    w.api.unclaimed_task(at=w.clock.now(), status=TaskStatus.SUCCEEDED, prompt="make it snow")
    report = poll(w)
    assert report.lists == 1 and report.queried == 1 and report.watching == 3 and w.api.calls["get"] == 1
    states = [w.store.state(job.job_id) for job in jobs]
    assert states == [JobState.SUCCEEDED, JobState.SUBMITTED, JobState.SUBMITTED]
    assert len(w.store.slot_holders()) == 2  # the other workload's task is not ours to count


def test_a_failing_list_falls_back_to_a_query_each() -> None:
    w = world()
    jobs = [submitted(w, f"team/clip{i}") for i in range(2)]
    w.api.fail_next("list", RetryableError(500, None, "oops", None))
    report = poll(w)
    assert report.lists == 0 and report.queried == 2 and all(j.task_id for j in jobs)


def test_a_stale_submitting_job_is_reconciled_with_the_task_it_made() -> None:
    w = world()
    job = make_job(w)
    w.store.put_new(job)
    w.store.acquire_slot(job.job_id, 2, w.clock.now())
    now = w.clock.now()
    w.store.transition(
        job.job_id,
        [JobState.QUEUED],
        JobState.SUBMITTING,
        now=now,
        next_poll_at=now + 120,
        submitting_since=now,
    )
    # the dead worker's create reached the service, which made (and finished) the task
    task = w.api.unclaimed_task(at=now + 1, status=TaskStatus.SUCCEEDED, prompt=job.prompt)
    report = poll(w, STALE_SUBMITTING_SECONDS)
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.SUBMITTED and after.task_id == task.task_id
    assert report.reconciled == 1 and w.api.calls["create"] == 0


def test_a_lost_completion_message_is_sent_again() -> None:
    w = world()
    job = submitted(w)
    w.api.finish(job.task_id or "")
    poll(w)
    w.completion.sent.clear()  # the message was lost
    poll(w, RESEND_AFTER_SECONDS)
    assert w.completion.sent == [CompletionMessage(job_id=job.job_id)]
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.SUCCEEDED
    assert after.next_poll_at == w.clock.now() + RESEND_AFTER_SECONDS


def test_queued_jobs_take_slots_as_they_free_first_come_first_served() -> None:
    w = world(MAX_CONCURRENT_TASKS=1)
    first = submitted(w, "q/a")
    waiting = [make_job(w, stem=f"q/{name}") for name in ("b", "c")]
    for job in waiting:
        w.store.put_new(job)
        w.clock.advance(1)
    w.api.finish(first.task_id or "")
    report = poll(w)
    assert report.submitted == 1
    assert [w.store.state(j.job_id) for j in waiting] == [JobState.SUBMITTED, JobState.QUEUED]


def test_reaping_frees_only_leases_of_jobs_that_no_longer_hold_a_slot() -> None:
    w = world()
    live = submitted(w, "r/live")
    w.store.acquire_slot("j-gone", 2, w.clock.now())
    w.clock.advance(61)
    reap_slots(w.svc)
    assert list(w.store.slot_holders()) == [live.job_id]


def test_run_poll_looks_at_least_every_15_s_until_its_deadline() -> None:
    w = world()
    job = submitted(w)
    w.api.finish(job.task_id or "")
    start = w.clock.now()
    report = run_poll(w.svc, deadline=start + 50, holder="inv-1")
    # passes at 0, 15 (the success), 30 and 45 s: new work is never left waiting longer than 15 s
    assert (report.succeeded, report.iterations, w.clock.now() - start) == (1, 4, 45.0)


def test_run_poll_returns_at_once_when_no_job_is_active() -> None:
    w = world()
    start = w.clock.now()
    assert run_poll(w.svc, deadline=start + 50, holder="inv-1").iterations == 1 and w.clock.now() == start


def test_a_second_poller_exits_at_once_while_the_first_holds_the_lease() -> None:
    w = world()
    job = submitted(w)
    w.api.tasks[job.task_id or ""].status = TaskStatus.RUNNING
    start = w.clock.now()
    assert w.lease.acquire("inv-1", start, start + 50)  # the first invocation, mid-run
    second = run_poll(w.svc, deadline=start + 50, holder="inv-2")
    assert second.skipped and second.iterations == 0 and w.api.calls["get"] == 0
    assert w.clock.now() == start


def test_a_dead_pollers_lease_is_taken_over_at_the_next_tick() -> None:
    w = world()
    start = w.clock.now()
    w.lease.acquire("inv-dead", start, start + 50)  # it crashed: nothing releases its lease
    w.clock.advance(60)  # the schedule's next tick
    report = run_poll(w.svc, deadline=w.clock.now() + 50, holder="inv-next")
    assert not report.skipped and report.iterations == 1
    assert w.lease.holder is None  # released when done


def test_a_poller_that_lost_its_lease_stops_polling() -> None:
    w = world()
    job = submitted(w)
    w.api.tasks[job.task_id or ""].status = TaskStatus.RUNNING
    start = w.clock.now()

    def steal() -> None:
        w.lease.holder, w.lease.until = "inv-other", start + 1000

    report = run_poll(w.svc, deadline=start + 50, holder="inv-1", on_iteration=steal)
    assert report.lost_lease and report.iterations == 1
