"""Canceling on a user's request, without moto or HTTP."""

from __future__ import annotations

import pytest

from tests.unit.fakes import World, make_job, world
from wanedit.dashscope import TaskStatus
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.events import DETAIL_FAILED
from wanedit.usecases.cancel import CancelRefused, cancel_job
from wanedit.usecases.submission import try_submit


def queued(w: World, stem: str = "team/clip") -> Job:
    job = make_job(w, stem=stem)
    w.store.put_new(job)
    return job


def test_a_queued_job_is_canceled_before_any_call() -> None:
    w = world(MAX_CONCURRENT_TASKS=1)
    try_submit(w.svc, queued(w, "a/first"))
    job = queued(w)
    assert cancel_job(w.svc, job.job_id).state is JobState.CANCELED
    assert w.api.calls["create"] == 1 and w.notifier.types() == [DETAIL_FAILED]
    assert w.objects.json("failed/team/clip.json")["status"] == "CANCELED"


def test_a_pending_task_is_canceled_at_the_api_and_frees_its_slot() -> None:
    w = world()
    job = try_submit(w.svc, queued(w))
    assert cancel_job(w.svc, job.job_id).state is JobState.CANCELED
    assert w.api.tasks[job.task_id or ""].status is TaskStatus.CANCELED and w.store.slot_holders() == {}


def test_a_running_task_cannot_be_canceled_and_says_so() -> None:
    w = world()
    job = try_submit(w.svc, queued(w))
    w.api.tasks[job.task_id or ""].status = TaskStatus.RUNNING
    with pytest.raises(CancelRefused, match="has started"):
        cancel_job(w.svc, job.job_id)
    assert w.store.state(job.job_id) is JobState.SUBMITTED


@pytest.mark.parametrize("job_id", ["j-nobody", None])
def test_unknown_or_finished_jobs_are_refused(job_id: str | None) -> None:
    w = world()
    if job_id is None:
        job = queued(w)
        cancel_job(w.svc, job.job_id)
        job_id = job.job_id
    with pytest.raises(CancelRefused):
        cancel_job(w.svc, job_id)
