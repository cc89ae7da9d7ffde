"""The spend guard: a job is admitted against the daily and monthly budgets before its create, or held.

- Admission commits the job's estimate in today's and this month's ledger (one conditional
  transaction: concurrent submitters can never together pass a budget). A long clip is admitted as
  a whole, before it is split; its segments are covered by it.
- Over budget, the job waits HELD (announced once, by the move that holds it). The poller releases
  held jobs in arrival order as soon as they fit: a new UTC day or month, or a budget raised by a
  redeploy.
- Every end settles the job: the estimate is replaced by the task's usage, or released when no
  task was billed. Commits and settles are once per job, so a crash between steps loses or doubles
  nothing; the poller's sweep settles what a crash left committed for a job that has ended.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.budget import Period, periods_at
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.usage import Usage
from wanedit.events import DETAIL_HELD
from wanedit.metrics import BUDGET_SPENT, JOBS_HELD
from wanedit.reports import event_detail

logger = Logger(child=True)

HELD_LOOK_LIMIT = 100  # held jobs looked at per pass, oldest first
SWEEP_LIMIT = 200  # committed jobs looked at per sweep


def limits_now(svc: Services, now: float) -> list[tuple[Period, float]]:
    """The periods a job admitted now counts in, each with its budget (a budget of 0 is off)."""
    day, month = periods_at(now)
    budgets = ((day, svc.settings.daily_budget), (month, svc.settings.monthly_budget))
    return [(period, limit) for period, limit in budgets if limit > 0]


def needs_admission(job: Job) -> bool:
    """Jobs the budgets count: those with an estimate, not yet admitted; a segment counts with its clip."""
    return job.estimate is not None and job.admitted_at is None and not job.is_segment


def admit(svc: Services, job: Job) -> Job | None:
    """Commit the job's estimate; the job as admitted, or None when it does not fit a budget."""
    if not needs_admission(job):
        return job
    now = svc.clock.now()
    limits = limits_now(svc, now)
    if not limits:
        return job  # budgets off: nothing to count
    if not svc.ledger.commit(job.job_id, job.estimate.amount if job.estimate else 0.0, limits):
        return None
    admitted = svc.store.reschedule(
        job.job_id, job.state, now=now, next_poll_at=job.next_poll_at or now, admitted_at=now
    )
    return admitted or svc.store.get(job.job_id)


def hold(svc: Services, job: Job) -> Job:
    """Over budget: HELD until it fits, in arrival order; announced once, by the move that wins."""
    now = svc.clock.now()
    held = svc.store.transition(job.job_id, [job.state], JobState.HELD, now=now, next_poll_at=job.created_at)
    if held is None:
        return svc.store.get(job.job_id) or job
    svc.metrics.emit(JOBS_HELD)
    svc.notifier.publish(
        DETAIL_HELD, event_detail(held, estimate=held.estimate, budgets=budget_view(svc, now))
    )
    logger.info("job held: over budget", extra={"job_id": job.job_id})
    return held


def release_held(svc: Services) -> list[Job]:
    """Admit held jobs in arrival order while they fit; returns those sent back to their queue."""
    released: list[Job] = []
    for job in svc.store.held(HELD_LOOK_LIMIT):
        now = svc.clock.now()
        limits = limits_now(svc, now)
        if limits and not svc.ledger.commit(job.job_id, job.estimate.amount if job.estimate else 0.0, limits):
            break  # arrival order: a later job never overtakes an earlier one that does not fit
        back = JobState.SPLITTING if job.long_clip else JobState.QUEUED
        moved = svc.store.transition(
            job.job_id, [JobState.HELD], back, now=now, next_poll_at=now, admitted_at=now
        )
        if moved is not None:
            released.append(moved)
    return released


def settle(svc: Services, job: Job) -> None:
    """An ended job's estimate becomes what it really cost: its usage, or its saved segments'."""
    if job.estimate is None or job.admitted_at is None or job.is_segment:
        return
    usage = job.usage
    if job.segments:
        children = [svc.store.get(segment.job_id) for segment in job.segments]
        usage = Usage.summed(c.usage for c in children if c is not None and c.state is JobState.PERSISTED)
    actual = job.estimate.actual(usage, svc.settings.prices)
    for period in periods_at(job.admitted_at):
        svc.ledger.settle(job.job_id, actual, period)
        svc.metrics.emit(BUDGET_SPENT, actual, dimension=period.kind)


def sweep(svc: Services) -> int:
    """Settle jobs a crash left committed after their end (the ledger of today and this month)."""
    settled = 0
    for period in periods_at(svc.clock.now()):
        for job_id in list(svc.ledger.entry(period).jobs)[:SWEEP_LIMIT]:
            job = svc.store.get(job_id)
            if job is None:
                svc.ledger.settle(job_id, 0.0, period)
                settled += 1
            elif job.state.is_terminal:
                settle(svc, job)
                settled += 1
    return settled


def budget_view(svc: Services, now: float) -> dict[str, dict[str, float | str]]:
    """Spent, committed and remaining of today and this month (events and `wanedit budget` show it)."""
    view: dict[str, dict[str, float | str]] = {}
    for period, limit in limits_now(svc, now):
        entry = svc.ledger.entry(period)
        view[period.kind] = {
            "period": period.label,
            "budget": limit,
            "spent": entry.spent,
            "committed": entry.committed,
            "remaining": round(limit - entry.spent - entry.committed, 6),
            "unit": svc.settings.prices.unit,
        }
    return view
