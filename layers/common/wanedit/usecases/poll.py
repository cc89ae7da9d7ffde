"""The PollFunction's work: follow every active job to its end, and fill free slots from the queue.

One invocation loops until its deadline, so a finished task is noticed in seconds rather than at
the next scheduled run. How ends are detected:

- Two or more tasks in flight: one task-list call (newest first, the window from the earliest
  in-flight submission to now) tells which of them ended; only those are queried (for
  ``video_url``, ``usage``, ``orig_prompt``). The list is repeated every POLL_INTERVAL_SECONDS /
  in-flight seconds (at least LIST_MIN_WAKE_SECONDS): each slot is seen about as often as a
  15 s per-task query would see one task, but a freed slot waits ~1/in-flight as long, and the
  calls per task stay about (task time / 15 s) + 2 (one create, list shares, one final query).
- One task in flight, a list that fails, or a task the list does not show (too old for the
  window, beyond the pages read, lost by the service): the task is queried on its own schedule,
  about every 15 s, exactly as with a single task. A task the list shows running is not queried;
  its own schedule moves LIST_COVERED_RECHECK_SECONDS ahead, so a poller that dies leaves every
  job due again soon. The 24 h lifetime and UNKNOWN handling are those of the per-task query.

API queries run concurrently; state changes are applied one by one, each a conditional write.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.dashscope import DashScopeError, FinalError, TaskResponse, TaskStatus
from wanedit.jobs import Job, JobState
from wanedit.usecases.longclip import MAX_TASK_RETRIES, check_segments, resend
from wanedit.usecases.submission import (
    POLL_INTERVAL_SECONDS,
    STALE_SUBMITTING_SECONDS,
    backoff,
    fail,
    record_created,
    try_submit,
)

logger = Logger(child=True)

TASK_LIFETIME_SECONDS = 24 * 3600  # task ids and result URLs live 24 h (the reference)
UNKNOWN_GRACE_SECONDS = 300.0  # an UNKNOWN this long before 24 h means the service lost the task
RESEND_COMPLETION_AFTER = 20 * 60.0  # longer than the CompleteFunction's 15 min timeout
RECONCILE_WINDOW_SECONDS = 120.0  # how long a lost create may take to show up in the task list
RECONCILE_SKEW = 30.0  # our clock vs the service's (both NTP-synced; generous)
CREATE_SEND_WINDOW = 60.0  # a create reaches the service within this of the attempt (timeouts 3+15 s)
CLAIM_GRACE_SECONDS = 30.0  # a live creator claims its task within its read timeout (15 s)
SLOT_LEASE_GRACE_SECONDS = 60.0  # a lease newer than this may belong to a submit in progress
MAX_WAKE_SECONDS = POLL_INTERVAL_SECONDS
MIN_WAKE_SECONDS = 1.0
QUERY_WORKERS = 8
LIST_MIN_TASKS = 2  # fewer in flight: a per-task query costs what a list call costs
LIST_MIN_WAKE_SECONDS = 3.5  # the list cadence with many tasks in flight (API calls stay in budget)
LIST_HORIZON_SECONDS = 3600.0  # tasks older than this are queried one by one (keeps the window small)
LIST_WINDOW_MARGIN = 60.0  # clock skew and the list's whole-second times
LIST_PAGE_SIZE = 100  # the API's maximum
LIST_MAX_PAGES = 2  # newest first; what is not found in these pages falls back to its own query
LIST_COVERED_RECHECK_SECONDS = 60.0  # a listed running task's own schedule (the fallback) moves this far
_ENDED = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED)


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
    states: dict[str, int] = field(default_factory=dict)


def run_poll(svc: Services, *, deadline: float, on_iteration: Callable[[], None] | None = None) -> PollReport:
    """Poll until `deadline` (clock seconds) or until nothing is left to do before it."""
    report = PollReport()
    reap_slots(svc)
    while True:
        poll_once(svc, report)
        report.iterations += 1
        if on_iteration:
            on_iteration()
        now = svc.clock.now()
        wake = _next_wake(svc, now, report.watching)
        if wake is None or wake >= deadline:
            return report
        svc.clock.sleep(wake - now)


def _next_wake(svc: Services, now: float, watching: int = 0) -> float | None:
    candidates = [t for t in (svc.store.next_due_at(),) if t is not None]
    if watching >= LIST_MIN_TASKS:
        candidates.append(now + max(LIST_MIN_WAKE_SECONDS, POLL_INTERVAL_SECONDS / watching))
    if free_slots(svc) > 0:
        queued_at = svc.store.next_due_at("queue")
        if queued_at is not None:
            candidates.append(queued_at)
    if not candidates:
        return None
    return min(max(min(candidates), now + MIN_WAKE_SECONDS), now + MAX_WAKE_SECONDS)


def free_slots(svc: Services) -> int:
    return max(0, svc.settings.max_concurrent_tasks - len(svc.store.slot_holders()))


def poll_once(svc: Services, report: PollReport) -> None:
    now = svc.clock.now()
    # One index query: every active job (most overdue first), of which the due ones as before.
    active = svc.store.due(now + TASK_LIFETIME_SECONDS + LIST_HORIZON_SECONDS)
    due = [job for job in active if job.next_poll_at is None or job.next_poll_at <= now]
    to_query = [job for job in due if job.state is JobState.SUBMITTED and job.task_id]
    listed = _list_in_flight(svc, now, active, report)
    if listed is not None:
        to_query = _after_list(svc, now, to_query, *listed)
    for job, outcome in zip(to_query, _query_all(svc, to_query), strict=True):
        report.queried += 1
        if isinstance(outcome, TaskResponse):
            _apply_status(svc, job, outcome, report)
        else:
            _query_failed(svc, job, outcome)
    for job in due:
        if (
            job.state is JobState.SUBMITTING
            and now - (job.submitting_since or now) >= STALE_SUBMITTING_SECONDS
        ):
            moved = svc.store.transition(
                job.job_id, [JobState.SUBMITTING], JobState.RECONCILING, now=now, next_poll_at=now
            )
            if moved:
                _reconcile(svc, moved, report)
        elif job.state is JobState.RECONCILING:
            _reconcile(svc, job, report)
        elif job.state is JobState.SEGMENTED:
            check_segments(svc, job)
        elif job.state in (JobState.SPLITTING, JobState.STITCHING):
            resend(svc, job)
        elif job.state in (JobState.SUCCEEDED, JobState.PERSISTING):
            # The completion message was lost or its worker died: hand it over again (idempotent).
            svc.completion.send(job.job_id)
            svc.store.transition(
                job.job_id, [job.state], job.state, now=now, next_poll_at=now + RESEND_COMPLETION_AFTER
            )
    for job in svc.store.queued(now, free_slots(svc)):
        if try_submit(svc, job).state is JobState.SUBMITTED:
            report.submitted += 1


def _list_in_flight(
    svc: Services, now: float, active: list[Job], report: PollReport
) -> tuple[list[Job], dict[str, TaskStatus]] | None:
    """(the in-flight jobs the list could cover, task id -> listed status), or None: no list now."""
    report.watching = 0
    recent = [
        job
        for job in active
        if job.state is JobState.SUBMITTED
        and job.task_id
        and job.submitted_at is not None
        and now - job.submitted_at < LIST_HORIZON_SECONDS
    ]
    if len(recent) < LIST_MIN_TASKS:
        return None
    wanted = {job.task_id for job in recent}
    start = datetime.fromtimestamp(min(job.submitted_at or now for job in recent) - LIST_WINDOW_MARGIN, UTC)
    end = datetime.fromtimestamp(now + LIST_WINDOW_MARGIN, UTC)
    seen: dict[str, TaskStatus] = {}
    try:
        for page_no in range(1, LIST_MAX_PAGES + 1):
            report.lists += 1
            page = svc.api.list_tasks(start=start, end=end, page_no=page_no, page_size=LIST_PAGE_SIZE)
            for item in page.data:
                if item.task_id in wanted:
                    seen[item.task_id] = item.status
            last = (
                page.total_page
                if page.total_page is not None
                else page_no + (len(page.data) >= LIST_PAGE_SIZE)
            )
            if wanted <= seen.keys() or not page.data or page_no >= last:
                break
    except DashScopeError as error:
        logger.info("task list failed; querying tasks one by one", extra={"code": error.code})
        return None
    report.watching = len(recent)
    return recent, seen


def _after_list(
    svc: Services, now: float, due: list[Job], recent: list[Job], seen: dict[str, TaskStatus]
) -> list[Job]:
    """The jobs to query after a list: those it shows ended, and those it could not vouch for."""
    to_query: dict[str, Job] = {}
    for job in recent:
        status = seen.get(job.task_id or "")
        if status in _ENDED:
            to_query[job.job_id] = job
    for job in due:
        if job.job_id in to_query:
            continue
        status = seen.get(job.task_id or "")
        if status not in (TaskStatus.PENDING, TaskStatus.RUNNING) or _too_old(job, now):
            to_query[job.job_id] = job  # not listed (or expiring): its own query decides, as always
            continue
        # Listed running: no query; its own schedule (the fallback) moves on.
        _still_running(svc, job, status, now + LIST_COVERED_RECHECK_SECONDS)
    return list(to_query.values())


def _still_running(svc: Services, job: Job, status: TaskStatus, next_poll_at: float) -> None:
    """Record a PENDING/RUNNING task's status and when to look at it again."""
    svc.store.transition(
        job.job_id,
        [JobState.SUBMITTED],
        JobState.SUBMITTED,
        now=svc.clock.now(),
        next_poll_at=next_poll_at,
        task_status=status.value,
        first_unknown_at=None,
    )


def _query_all(svc: Services, jobs: list[Job]) -> list[TaskResponse | DashScopeError]:
    def query(job: Job) -> TaskResponse | DashScopeError:
        try:
            return svc.api.get_task(job.task_id or "")
        except DashScopeError as error:
            return error

    if len(jobs) <= 1:
        return [query(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(QUERY_WORKERS, len(jobs))) as pool:
        return list(pool.map(query, jobs))


def _apply_status(svc: Services, job: Job, response: TaskResponse, report: PollReport) -> None:
    now = svc.clock.now()
    output = response.output
    status = output.task_status
    report.states[status.value] = report.states.get(status.value, 0) + 1
    if status in (TaskStatus.PENDING, TaskStatus.RUNNING):
        if _too_old(job, now):
            _expire(svc, job, "the task did not finish within the API's 24 h task lifetime")
            report.ended += 1
            return
        _still_running(svc, job, status, now + POLL_INTERVAL_SECONDS)
        return
    if status is TaskStatus.SUCCEEDED:
        succeeded = svc.store.transition(
            job.job_id,
            [JobState.SUBMITTED],
            JobState.SUCCEEDED,
            now=now,
            next_poll_at=now + RESEND_COMPLETION_AFTER,
            task_status=status.value,
            orig_prompt=output.orig_prompt,
            video_url=output.video_url,
            usage=response.usage.model_dump(mode="json", by_alias=True) if response.usage else None,
            task_times=_task_times(output),
            finished_at=now,
        )
        svc.store.release_slot(job.job_id)
        if succeeded:
            svc.completion.send(job.job_id)
            report.succeeded += 1
        return
    svc.store.release_slot(job.job_id)
    report.ended += 1
    if status is TaskStatus.FAILED and job.parent_id is not None and job.task_retries < MAX_TASK_RETRIES:
        _retry_segment(svc, job, output.code, output.message)
    elif status is TaskStatus.FAILED:
        fail(svc, job, [JobState.SUBMITTED], output.code, output.message)
    elif status is TaskStatus.CANCELED:
        fail(svc, job, [JobState.SUBMITTED], output.code or "Canceled", output.message, to=JobState.CANCELED)
    else:  # UNKNOWN: expired, or lost by the service
        first = job.first_unknown_at or now
        if _too_old(job, now) or now - first >= UNKNOWN_GRACE_SECONDS:
            _expire(svc, job, "the service no longer knows this task (task ids live 24 h)")
        else:
            report.ended -= 1
            svc.store.transition(
                job.job_id,
                [JobState.SUBMITTED],
                JobState.SUBMITTED,
                now=now,
                next_poll_at=now + POLL_INTERVAL_SECONDS,
                task_status=status.value,
                first_unknown_at=first,
            )


def _retry_segment(svc: Services, job: Job, code: str | None, message: str | None) -> None:
    """A long clip's segment whose task FAILED goes back to the queue for a new task (bounded).

    One failed segment would otherwise throw away every other segment's paid-for edit.
    """
    now = svc.clock.now()
    logger.warning(
        "segment task failed; submitting it again",
        extra={"job_id": job.job_id, "code": code, "retry": job.task_retries + 1},
    )
    svc.store.transition(
        job.job_id,
        [JobState.SUBMITTED],
        JobState.QUEUED,
        now=now,
        next_poll_at=now + backoff(job.task_retries, base=5.0),
        task_retries=job.task_retries + 1,
        error_code=code,
        error_message=message,
        task_id=None,
        task_status=None,
        submitted_at=None,
        first_unknown_at=None,
    )


def _query_failed(svc: Services, job: Job, error: DashScopeError) -> None:
    """The query itself failed (after the client's own retries): try again later, never forever."""
    now = svc.clock.now()
    if _too_old(job, now):
        svc.store.release_slot(job.job_id)
        _expire(svc, job, f"the task could not be queried before its 24 h lifetime ended ({error.code})")
        return
    delay = POLL_INTERVAL_SECONDS * (4 if isinstance(error, FinalError) else 1)
    logger.warning(
        "task query failed", extra={"job_id": job.job_id, "code": error.code, "status": error.status}
    )
    svc.store.transition(
        job.job_id, [JobState.SUBMITTED], JobState.SUBMITTED, now=now, next_poll_at=now + delay
    )


def _reconcile(svc: Services, job: Job, report: PollReport) -> None:
    """Find the task a lost create may have made, before ever creating another one.

    The API has no idempotency key, and the list shows no prompt, so the task is recognised by:
    - time: its creation time (the service's clock) within [-RECONCILE_SKEW, +CREATE_SEND_WINDOW]
      of the attempt (ours), which keeps other attempts' tasks out;
    - ownership: no other job has claimed it (TASK#<id>, written right after every create);
    - age: at least CLAIM_GRACE old, so a create still being answered to its own worker (read
      timeout 15 s) is never taken from it;
    - fingerprint: once it SUCCEEDED, its orig_prompt (the prompt as sent: a prompt_extend rewrite
      does not change it) equals ours. PENDING/RUNNING/FAILED tasks show no prompt.
    A task this job claimed itself before a crash is adopted at once. A SUCCEEDED match is adopted
    (the closest in time if several). An unfinished candidate makes the job wait (it holds the slot
    its task occupies) until it shows its prompt. With nothing left after RECONCILE_WINDOW, no task
    was made: the job is queued again.

    Trade-off: two jobs with the same prompt whose creates were both lost within the same few
    seconds could each adopt the other's task (the service shows nothing else to tell them apart).
    A candidate that ended FAILED/CANCELED without showing a prompt is never adopted: the job is
    queued again and creates one more task, a bounded cost preferred to ending the wrong job.
    """
    now = svc.clock.now()
    since = job.submitting_since or job.updated_at
    start = datetime.fromtimestamp(since - 60, UTC)
    end = datetime.fromtimestamp(now + 60, UTC)
    try:
        listed = list(svc.api.iter_tasks(start=start, end=end, model_name="wan2.7-videoedit"))
    except DashScopeError:
        svc.store.transition(
            job.job_id, [job.state], job.state, now=now, next_poll_at=now + POLL_INTERVAL_SECONDS
        )
        return
    waiting = False
    matches: list[tuple[float, str, str | None]] = []  # (distance in time, task id, request id)
    for item in listed:
        created = item.gmt_create.timestamp() if item.gmt_create else None
        if created is not None and not since - RECONCILE_SKEW <= created <= since + CREATE_SEND_WINDOW:
            continue
        owner = svc.store.task_owner(item.task_id)
        if owner == job.job_id:
            record_created(svc, job, item.task_id, item.request_id, [job.state], status=item.status.value)
            report.reconciled += 1
            return
        if owner is not None:
            continue
        if created is not None and now - created < CLAIM_GRACE_SECONDS:
            waiting = True
            continue
        try:
            detail = svc.api.get_task(item.task_id)
        except DashScopeError:
            waiting = True
            continue
        status = detail.output.task_status
        if status in (TaskStatus.PENDING, TaskStatus.RUNNING):
            waiting = True  # cannot tell whose it is until it finishes and shows orig_prompt
        elif status is TaskStatus.SUCCEEDED and detail.output.orig_prompt == job.prompt:
            matches.append((abs((created or since) - since), item.task_id, item.request_id))
    for _, task_id, request_id in sorted(matches):
        if svc.store.claim_task(task_id, job.job_id, now):
            record_created(svc, job, task_id, request_id, [job.state], status=TaskStatus.RUNNING.value)
            report.reconciled += 1
            return
    if waiting or now - since < RECONCILE_WINDOW_SECONDS:
        svc.store.transition(
            job.job_id, [job.state], job.state, now=now, next_poll_at=now + POLL_INTERVAL_SECONDS
        )
        return
    svc.store.release_slot(job.job_id)
    svc.store.transition(
        job.job_id, [job.state], JobState.QUEUED, now=now, next_poll_at=now, submitting_since=None
    )


def reap_slots(svc: Services) -> None:
    """Free slot leases whose job no longer holds a slot (crashed workers, lost races)."""
    now = svc.clock.now()
    for job_id, leased_at in svc.store.slot_holders().items():
        if now - leased_at < SLOT_LEASE_GRACE_SECONDS:
            continue
        job = svc.store.get(job_id)
        if job is None or not job.state.holds_slot:
            svc.store.release_slot(job_id)


def _too_old(job: Job, now: float) -> bool:
    return job.submitted_at is not None and now - job.submitted_at >= TASK_LIFETIME_SECONDS


def _expire(svc: Services, job: Job, why: str) -> None:
    fail(svc, job, [JobState.SUBMITTED], "TaskExpired", why, to=JobState.EXPIRED)


def _task_times(output: object) -> dict[str, str]:
    times: dict[str, str] = {}
    for name in ("submit_time", "scheduled_time", "end_time"):
        value = getattr(output, name, None)
        if value is not None:
            times[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    return times


def deadline_from_remaining(svc: Services, remaining_ms: int, margin_seconds: float = 10.0) -> float:
    """The clock time at which an invocation with `remaining_ms` left must stop polling."""
    return svc.clock.now() + max(0.0, remaining_ms / 1000 - margin_seconds)
