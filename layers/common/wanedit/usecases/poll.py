"""The PollFunction's work: follow every active job to its end, and fill free slots from the queue.

One invocation loops until its deadline, so a finished task is noticed in seconds rather than at
the next scheduled run. Each pass (`poll_once`) looks at the due jobs by state:

  SUBMITTED            their tasks, by one list call or a query each (`tracking`)
  SUBMITTING (stale)   its worker died between create and record: reconcile it
  RECONCILING          find the task a lost create may have made (`reconcile`)
  SEGMENTED            a long clip waiting for its segments (`longclip.segments.check_segments`)
  SPLITTING/STITCHING  a long-clip message may be lost: send it again
  SUCCEEDED/PERSISTING a completion message may be lost, or its worker died: send it again

then submits queued jobs as slots allow. API queries run concurrently; state changes are applied
one by one, each a conditional write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from wanedit.container import Services
from wanedit.dashscope import TaskResponse
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import (
    POLL_INTERVAL_SECONDS,
    RESEND_AFTER_SECONDS,
    STALE_SUBMITTING_SECONDS,
)
from wanedit.messages import CompletionMessage
from wanedit.metrics import (
    BUDGET_COMMITTED,
    HELD_WAITING,
    JOBS_RELEASED,
    SLOTS_IN_USE,
    TASK_LISTS,
    TASKS_IN_FLIGHT,
    TASKS_QUERIED,
    TASKS_SUCCEEDED,
)
from wanedit.usecases.budget import HELD_LOOK_LIMIT, budget_view, release_held, sweep
from wanedit.usecases.longclip.segments import begin, check_segments, resend
from wanedit.usecases.reconcile import reconcile
from wanedit.usecases.submission import to_reconcile, try_submit
from wanedit.usecases.tracking import (
    LIST_MIN_TASKS,
    LIST_MIN_WAKE_SECONDS,
    Seen,
    apply_status,
    in_flight,
    list_in_flight,
    query_all,
    query_failed,
    to_query_after_list,
)

SLOT_LEASE_GRACE_SECONDS = 60.0  # a lease newer than this may belong to a submit in progress
MAX_WAKE_SECONDS = POLL_INTERVAL_SECONDS
MIN_WAKE_SECONDS = 1.0


@dataclass
class PollReport:
    """What one invocation did (logged, returned by the handler, used by tests and benchmarks)."""

    iterations: int = 0
    queried: int = 0
    lists: int = 0  # task-list calls made to detect ends
    watching: int = 0  # tasks the last list covered (0: per-task queries only)
    submitted: int = 0
    succeeded: int = 0
    ended: int = 0
    reconciled: int = 0
    released: int = 0  # held jobs that fit the budgets again
    skipped: bool = False  # another invocation held the poller's lease: this one did nothing
    lost_lease: bool = False
    in_flight: int = 0  # jobs holding a slot at the last pass
    states: dict[str, int] = field(default_factory=dict)

    def saw(self, seen: Seen, response: TaskResponse | None) -> None:
        self.queried += 1
        if response is not None:
            status = response.output.task_status.value
            self.states[status] = self.states.get(status, 0) + 1
        self.succeeded += seen is Seen.SUCCEEDED
        self.ended += seen in (Seen.ENDED, Seen.RETRIED)


def run_poll(
    svc: Services, *, deadline: float, holder: str, on_iteration: Callable[[], None] | None = None
) -> PollReport:
    """Poll until `deadline` (clock seconds) or until nothing is left to do before it.

    Only while holding the poller's lease (`holder`: this invocation): another invocation already
    polling makes this one return at once (`report.skipped`).
    """
    report = PollReport()
    if not svc.lease.acquire(holder, svc.clock.now(), deadline):
        report.skipped = True
        return report
    try:
        _poll_until(svc, deadline, holder, report, on_iteration)
    finally:
        svc.lease.release(holder)
    _emit(svc, report)
    return report


def _emit(svc: Services, report: PollReport) -> None:
    """One run's figures for the dashboard: the counts, and where the slots and budgets stand."""
    svc.metrics.emit(TASKS_QUERIED, report.queried)
    svc.metrics.emit(TASK_LISTS, report.lists)
    svc.metrics.emit(TASKS_SUCCEEDED, report.succeeded)
    svc.metrics.emit(JOBS_RELEASED, report.released)
    svc.metrics.emit(SLOTS_IN_USE, len(svc.store.slot_holders()))
    svc.metrics.emit(TASKS_IN_FLIGHT, report.in_flight)
    svc.metrics.emit(HELD_WAITING, len(svc.store.held(HELD_LOOK_LIMIT)))
    for kind, figures in budget_view(svc, svc.clock.now()).items():
        svc.metrics.emit(BUDGET_COMMITTED, float(figures["committed"]), dimension=kind)


def _poll_until(
    svc: Services, deadline: float, holder: str, report: PollReport, on_iteration: Callable[[], None] | None
) -> None:
    reap_slots(svc)
    report.released = _release_held(svc)
    while True:
        poll_once(svc, report)
        report.iterations += 1
        if on_iteration:
            on_iteration()
        now = svc.clock.now()
        wake = next_wake(svc, now, report.watching)
        if wake is None or wake >= deadline:
            return
        svc.clock.sleep(wake - now)
        if not svc.lease.renew(holder, svc.clock.now(), deadline):
            report.lost_lease = True  # another invocation took over (this one outlived its lease)
            return


def next_wake(svc: Services, now: float, watching: int = 0) -> float | None:
    """When the next pass has work: the earliest due job, the list cadence, a queued job and a slot."""
    candidates = [t for t in (svc.store.next_poll_due(),) if t is not None]
    if watching >= LIST_MIN_TASKS:
        candidates.append(now + max(LIST_MIN_WAKE_SECONDS, POLL_INTERVAL_SECONDS / watching))
    if free_slots(svc) > 0:
        queued_at = svc.store.next_queued_due()
        if queued_at is not None:
            candidates.append(queued_at)
    if not candidates:
        return None
    return min(max(min(candidates), now + MIN_WAKE_SECONDS), now + MAX_WAKE_SECONDS)


def free_slots(svc: Services) -> int:
    return max(0, svc.settings.max_concurrent_tasks - len(svc.store.slot_holders()))


def poll_once(svc: Services, report: PollReport) -> None:
    now = svc.clock.now()
    active = svc.store.active()
    due = [job for job in active if job.next_poll_at is None or job.next_poll_at <= now]
    _follow_tasks(svc, now, active, due, report)
    for job in due:
        step = STEPS.get(job.state)
        if step is not None and step(svc, job):
            report.reconciled += 1
    report.in_flight = sum(1 for job in active if job.state.holds_slot)
    if svc.store.submissions_paused_until(now) is not None:
        return  # the account's quota is used up: nothing is created until the pause ends
    for job in svc.store.queued(now, free_slots(svc)):
        if try_submit(svc, job).state is JobState.SUBMITTED:
            report.submitted += 1


def _follow_tasks(svc: Services, now: float, active: list[Job], due: list[Job], report: PollReport) -> None:
    """Look at the tasks of SUBMITTED jobs: a list call when it covers several, else a query each."""
    to_query = [job for job in due if job.state is JobState.SUBMITTED and job.task_id]
    listed = list_in_flight(svc, now, in_flight(active, now))
    report.watching = 0
    if listed is not None:
        report.lists += listed.calls
        report.watching = len(listed.recent)
        to_query = to_query_after_list(svc, now, to_query, listed)
    for job, outcome in zip(to_query, query_all(svc, to_query), strict=True):
        if isinstance(outcome, TaskResponse):
            report.saw(apply_status(svc, job, outcome), outcome)
        else:
            report.saw(query_failed(svc, job, outcome), None)


def _stale_submitting(svc: Services, job: Job) -> bool:
    """A SUBMITTING job whose worker outlived its timeout may have created a task: reconcile it."""
    if svc.clock.now() - (job.submitting_since or job.updated_at) < STALE_SUBMITTING_SECONDS:
        return False
    moved = to_reconcile(svc, job, [JobState.SUBMITTING])
    return moved.state is JobState.RECONCILING and reconcile(svc, moved)


def _resend_completion(svc: Services, job: Job) -> None:
    """The completion message was lost or its worker died: hand it over again (idempotent)."""
    svc.completion.send(CompletionMessage(job_id=job.job_id))
    now = svc.clock.now()
    svc.store.reschedule(job.job_id, job.state, now=now, next_poll_at=now + RESEND_AFTER_SECONDS)


Step = Callable[[Services, Job], bool | None]
STEPS: Mapping[JobState, Step] = {
    JobState.SUBMITTING: _stale_submitting,
    JobState.RECONCILING: reconcile,
    JobState.SEGMENTED: check_segments,
    JobState.SPLITTING: resend,
    JobState.STITCHING: resend,
    JobState.SUCCEEDED: _resend_completion,
    JobState.PERSISTING: _resend_completion,
}
"""The poller's step for a due job in each state (SUBMITTED jobs are followed by their tasks);
a step returns True when it found a lost create's task."""


def _release_held(svc: Services) -> int:
    """Once a run: held jobs that fit the budgets now go back to their queue (a long clip to its
    split), and what a crash left committed for an ended job is settled."""
    released = release_held(svc)
    for job in released:
        if job.long_clip:
            begin(svc, job)
    sweep(svc)
    return len(released)


def reap_slots(svc: Services) -> None:
    """Free slot leases whose job no longer holds a slot (crashed workers, lost races)."""
    now = svc.clock.now()
    for job_id, leased_at in svc.store.slot_holders().items():
        if now - leased_at < SLOT_LEASE_GRACE_SECONDS:
            continue
        job = svc.store.get(job_id)
        if job is None or not job.state.holds_slot:
            svc.store.release_slot(job_id)


def deadline_from_remaining(svc: Services, remaining_ms: int, margin_seconds: float = 10.0) -> float:
    """The clock time at which an invocation with `remaining_ms` left must stop polling."""
    return svc.clock.now() + max(0.0, remaining_ms / 1000 - margin_seconds)
