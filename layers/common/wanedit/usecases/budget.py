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
from wanedit.reports import event_detail

logger = Logger(child=True)

HELD_LOOK_LIMIT = 100  # held jobs looked at per pass, oldest first


def limits_now(svc: Services, now: float) -> list[tuple[Period, float]]:
    """The periods a job admitted now counts in, each with its budget (budgets set to 0 are off)."""
    day, month = periods_at(now)
    budgets = ((day, svc.settings.daily_budget), (month, svc.settings.monthly_budget))
    return [(period, limit) for period, limit in budgets if limit > 0]


def admit(svc: Services, job: Job) -> bool:
    """Commit the job's estimate against the budgets (True: it fits, or it was admitted before)."""
    if job.estimate is None or job.is_segment:
        return True  # nothing to count (budgets off at intake), or counted with its long clip
    now = svc.clock.now()
    periods = [period for period, _ in limits_now(svc, now)] or [*periods_at(job.admitted_at or now)]
    if job.admitted_at is not None and all(job.job_id in svc.ledger.entry(p).jobs for p in periods):
        return True
    admitted = svc.ledger.commit(job.job_id, job.estimate.amount, limits_now(svc, now))
    if admitted and job.admitted_at is None:
        svc.store.reschedule(job.job_id, job.state, now=now, next_poll_at=job.next_poll_at or now, admitted_at=now)
    return admitted


def hold(svc: Services, job: Job) -> Job:
    """Over budget: HELD until it fits, announced once (by the move that wins)."""
    now = svc.clock.now()
    held = svc.store.transition(job.job_id, [job.state], JobState.HELD, now=now, next_poll_at=job.created_at)
    if held is None:
        return svc.store.get(job.job_id) or job
    svc.notifier.publish(DETAIL_HELD, event_detail(held, estimate=job.estimate, budgets=budget_view(svc, now)))
    logger.info("job held: over budget", extra={"job_id": job.job_id, "estimate": job.estimate})
    return held


def release_held(svc: Services) -> int:
    """Admit held jobs in arrival order while they fit; returns how many went back to their queue."""
    released = 0
    for job in svc.store.held(HELD_LOOK_LIMIT):
        if not svc.ledger.commit(job.job_id, job.estimate.amount if job.estimate else 0.0, limits_now(svc, svc.clock.now())):
            break  # arrival order: a later job never overtakes an earlier one that does not fit
        now = svc.clock.now()
        back = JobState.SPLITTING if job.segments_planned else JobState.QUEUED
        if svc.store.transition(job.job_id, [JobState.HELD], back, now=now, next_poll_at=now, admitted_at=now):
            released += 1
    return released


def settle(svc: Services, job: Job, children: list[Job] | None = None) -> None:
    """An ended job's estimate becomes what it really cost (its usage, or its segments')."""
    if job.estimate is None or job.admitted_at is None or job.is_segment:
        return
    usage = Usage.summed(c.usage for c in children or [] if c.state is JobState.PERSISTED) if children is not None else job.usage
    actual = job.estimate.actual(usage, svc.settings.prices)
    for period in periods_at(job.admitted_at):
        svc.ledger.settle(job.job_id, actual, period)


def budget_view(svc: Services, now: float) -> dict[str, dict[str, float | str]]:
    """Spent, committed and remaining of today and this month, as events and `wanedit budget` show them."""
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
