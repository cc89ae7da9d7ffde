"""The spend guard's decisions, without moto: estimates, admission, holding, release, settling."""

from __future__ import annotations

import pytest

from tests.unit.fakes import World, make_job, world
from wanedit.dashscope import TaskStatus
from wanedit.domain.budget import Estimate, Prices, estimate, periods_at
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.events import DETAIL_HELD
from wanedit.usecases.budget import release_held, sweep
from wanedit.usecases.cancel import cancel_job
from wanedit.usecases.complete import persist_result
from wanedit.usecases.poll import PollReport, poll_once, run_poll
from wanedit.usecases.submission import try_submit

DAY = 86400.0


def test_the_estimate_is_input_plus_output_at_the_tiers_price() -> None:
    prices = Prices(per_second_720p=0.1, per_second_1080p=0.2)
    assert estimate(4.0, duration=None, resolution="720P", prices=prices) == Estimate(
        seconds=8.0, amount=0.8, unit="USD", tier="720P"
    )
    cut = estimate(8.0, duration=3, resolution=None, prices=prices)  # the API's default tier: 1080P
    assert (cut.seconds, cut.amount, cut.tier) == (11.0, 2.2, "1080P")
    assert estimate(4.0, duration=None, resolution="720P", prices=Prices()).unit == "seconds"


def queued(w: World, stem: str, seconds: float = 4.0) -> Job:
    job = make_job(
        w,
        stem=stem,
        estimate=estimate(seconds, duration=None, resolution="720P", prices=w.svc.settings.prices),
    )
    w.store.put_new(job)
    w.clock.advance(1)
    return job


def test_jobs_past_the_daily_budget_are_held_once_and_cost_nothing() -> None:
    w = world(DAILY_BUDGET=17, MAX_CONCURRENT_TASKS=5)  # billed seconds: each job is 8
    jobs = [queued(w, f"b/{i}") for i in range(3)]
    states = [try_submit(w.svc, job).state for job in jobs]
    assert states == [JobState.SUBMITTED, JobState.SUBMITTED, JobState.HELD]
    assert w.api.calls["create"] == 2
    [(detail_type, detail)] = w.notifier.published
    assert detail_type == DETAIL_HELD and detail["job_id"] == jobs[2].job_id
    assert detail["budgets"]["day"]["remaining"] == 1.0 and detail["estimate"]["seconds"] == 8.0
    assert try_submit(w.svc, w.store.get(jobs[2].job_id)).state is JobState.HELD  # type: ignore[arg-type]
    assert len(w.notifier.published) == 1  # held once, announced once


def test_a_held_job_is_released_the_next_day_in_arrival_order() -> None:
    w = world(DAILY_BUDGET=8, MAX_CONCURRENT_TASKS=5)
    first, second, third = (queued(w, f"o/{i}") for i in range(3))
    for job in (first, second, third):
        try_submit(w.svc, job)
    assert [w.store.state(j.job_id) for j in (second, third)] == [JobState.HELD, JobState.HELD]
    assert release_held(w.svc) == []  # still today: nothing fits
    w.clock.advance(DAY)
    released = release_held(w.svc)
    assert [j.job_id for j in released] == [second.job_id]  # the oldest first; the next waits again
    assert w.store.state(third.job_id) is JobState.HELD


def test_a_raised_budget_releases_held_jobs_on_the_next_run() -> None:
    w = world(DAILY_BUDGET=8, MAX_CONCURRENT_TASKS=5)
    jobs = [queued(w, f"r/{i}") for i in range(2)]
    for job in jobs:
        try_submit(w.svc, job)
    w.svc.settings = w.svc.settings.model_copy(update={"daily_budget": 16.0})  # a redeploy
    report = run_poll(w.svc, deadline=w.clock.now() + 1, holder="inv-1")
    assert report.released == 1 and report.submitted == 1
    assert w.store.state(jobs[1].job_id) is JobState.SUBMITTED


def test_the_monthly_budget_holds_too() -> None:
    w = world(MONTHLY_BUDGET=10, MAX_CONCURRENT_TASKS=5)
    jobs = [queued(w, f"m/{i}") for i in range(2)]
    assert [try_submit(w.svc, j).state for j in jobs] == [JobState.SUBMITTED, JobState.HELD]


def test_completion_replaces_the_estimate_with_usage_and_a_failure_releases_it() -> None:
    w = world(DAILY_BUDGET=100, MAX_CONCURRENT_TASKS=5)
    ok, bad = queued(w, "s/ok"), queued(w, "s/bad")
    ok, bad = try_submit(w.svc, ok), try_submit(w.svc, bad)
    day, _ = periods_at(w.clock.now())
    assert w.ledger.entry(day).committed == 16.0
    w.api.finish(ok.task_id or "")  # usage.duration 8.0
    w.api.tasks[ok.task_id or ""].usage = {"duration": 7.5, "SR": 720}
    w.api.finish(bad.task_id or "", TaskStatus.FAILED, code="InternalError")
    w.clock.advance(15)
    poll_once(w.svc, PollReport())
    persist_result(w.svc, ok.job_id)
    entry = w.ledger.entry(day)
    assert (entry.spent, entry.committed, entry.jobs) == (7.5, 0.0, {})


def test_a_canceled_held_job_releases_nothing_it_did_not_commit() -> None:
    w = world(DAILY_BUDGET=8)
    first, second = queued(w, "c/1"), queued(w, "c/2")
    try_submit(w.svc, first)
    try_submit(w.svc, second)
    assert cancel_job(w.svc, second.job_id).state is JobState.CANCELED
    day, _ = periods_at(w.clock.now())
    assert w.ledger.entry(day).committed == 8.0  # only the first's


def test_the_sweep_settles_what_a_crash_left_committed() -> None:
    w = world(DAILY_BUDGET=100)
    job = try_submit(w.svc, queued(w, "x/1"))
    w.store.jobs[job.job_id] = w.store.jobs[job.job_id].model_copy(update={"state": JobState.FAILED})
    assert sweep(w.svc) == 1
    day, _ = periods_at(w.clock.now())
    assert w.ledger.entry(day).jobs == {}


def test_a_repeated_admission_commits_once() -> None:
    w = world(DAILY_BUDGET=100)
    job = queued(w, "a/1")
    day, _ = periods_at(w.clock.now())
    w.ledger.commit(job.job_id, 8.0, [(day, 100.0)])  # committed, then the worker died
    try_submit(w.svc, job)
    assert w.ledger.entry(day).committed == 8.0


@pytest.mark.parametrize("budget", [0.0])
def test_budgets_off_count_nothing(budget: float) -> None:
    w = world(DAILY_BUDGET=budget)
    job = try_submit(w.svc, queued(w, "z/1"))
    assert job.state is JobState.SUBMITTED and job.admitted_at is None and w.ledger.entries == {}
