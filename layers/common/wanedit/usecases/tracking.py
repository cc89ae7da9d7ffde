"""Following SUBMITTED jobs' tasks: which ended (one list call, or a query each), and what that makes of them.

- Two or more tasks in flight: one task-list call (newest first, the window from the earliest
  in-flight submission to now) tells which of them ended; only those are queried (for
  ``video_url``, ``usage``, ``orig_prompt``). The poller repeats the list every
  POLL_INTERVAL_SECONDS / in-flight seconds (at least LIST_MIN_WAKE_SECONDS): each slot is seen
  about as often as a 15 s per-task query would see one task, but a freed slot waits ~1/in-flight
  as long, and the calls per task stay about (task time / 15 s) + 2.
- One task in flight, a list that fails, or a task the list does not show (too old for the
  window, beyond the pages read, lost by the service): the task is queried on its own schedule,
  about every 15 s. A task the list shows running is not queried; its own schedule moves
  LIST_COVERED_RECHECK_SECONDS ahead, so a poller that dies leaves every job due again soon.
  The 24 h lifetime and UNKNOWN handling are those of the per-task query.

The list also shows tasks that other workloads of the account made; only our jobs' task ids are
looked at, so those are never adopted nor counted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.dashscope import DashScopeError, FinalError, TaskOutput, TaskResponse, TaskStatus
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import MODEL, TASK_LIFETIME_SECONDS
from wanedit.domain.timing import POLL_INTERVAL_SECONDS, RESEND_AFTER_SECONDS, backoff
from wanedit.messages import CompletionMessage
from wanedit.metrics import API_ERRORS, DETECTION_DELAY, TASK_LISTS
from wanedit.usecases.ending import Failure, fail
from wanedit.usecases.longclip.segments import MAX_TASK_RETRIES

logger = Logger(child=True)

UNKNOWN_GRACE_SECONDS = 300.0  # an UNKNOWN this long before 24 h means the service lost the task
QUERY_WORKERS = 8
LIST_MIN_TASKS = 2  # fewer in flight: a per-task query costs what a list call costs
LIST_MIN_WAKE_SECONDS = 3.5  # the list cadence with many tasks in flight (API calls stay in budget)
LIST_HORIZON_SECONDS = 3600.0  # tasks older than this are queried one by one (keeps the window small)
LIST_WINDOW_MARGIN = 60.0  # clock skew and the list's whole-second times
LIST_PAGE_SIZE = 100  # the API's maximum
LIST_MAX_PAGES = 2  # newest first; what is not found in these pages falls back to its own query
LIST_COVERED_RECHECK_SECONDS = 60.0  # a listed running task's own schedule (the fallback) moves this far


class Seen(StrEnum):
    """What one look at a task made of its job."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ENDED = "ended"  # failed, canceled or expired for good
    RETRIED = "retried"  # a long clip's segment queued for a new task


@dataclass(frozen=True)
class Listed:
    """One list pass: the in-flight jobs it could vouch for, the statuses seen, the calls made."""

    recent: list[Job]
    statuses: dict[str, TaskStatus]
    calls: int


def in_flight(jobs: list[Job], now: float) -> list[Job]:
    """SUBMITTED jobs recent enough for the list window."""
    return [
        job
        for job in jobs
        if job.state is JobState.SUBMITTED
        and job.task_id
        and job.submitted_at is not None
        and now - job.submitted_at < LIST_HORIZON_SECONDS
    ]


def list_in_flight(svc: Services, now: float, recent: list[Job]) -> Listed | None:
    """Read the statuses of `recent`'s tasks from the task list (None: too few to list, or it failed).

    Until the service has shown which key our tasks carry, a lone task still PENDING is listed too,
    only to learn it (it is queried as usual): the reconciler tells another workload's tasks from
    ours by that key (`reconcile`).
    """
    if len(recent) < LIST_MIN_TASKS:
        if len(recent) == 1 and recent[0].task_status == "PENDING" and not svc.store.key_identities():
            _learn_keys(svc, now, recent)
        return None
    wanted = {job.task_id for job in recent}
    start = datetime.fromtimestamp(min(job.submitted_at or now for job in recent) - LIST_WINDOW_MARGIN, UTC)
    end = datetime.fromtimestamp(now + LIST_WINDOW_MARGIN, UTC)
    statuses: dict[str, TaskStatus] = {}
    keys: set[str] = set()
    calls = 0
    try:
        for page_no in range(1, LIST_MAX_PAGES + 1):
            calls += 1
            page = svc.api.list_tasks(
                start=start, end=end, model_name=MODEL, page_no=page_no, page_size=LIST_PAGE_SIZE
            )
            ours = [item for item in page.data if item.task_id in wanted]
            statuses.update({item.task_id: item.status for item in ours})
            keys |= {item.api_key_id for item in ours if item.api_key_id}
            last = (
                page.total_page
                if page.total_page is not None
                else page_no + (len(page.data) >= LIST_PAGE_SIZE)
            )
            if wanted <= statuses.keys() or not page.data or page_no >= last:
                break
    except DashScopeError as error:
        svc.metrics.emit(API_ERRORS, dimension=error.code or str(error.status))
        logger.info("task list failed; querying tasks one by one", extra={"code": error.code})
        return None
    svc.store.note_key_identities(keys, now)
    return Listed(recent=recent, statuses=statuses, calls=calls)


def _learn_keys(svc: Services, now: float, recent: list[Job]) -> None:
    listed = list_in_flight(svc, now, recent * LIST_MIN_TASKS)
    if listed is not None:
        svc.metrics.emit(TASK_LISTS, listed.calls)


def to_query_after_list(svc: Services, now: float, due: list[Job], listed: Listed) -> list[Job]:
    """The jobs to query after a list: those it shows ended, and those it could not vouch for."""
    to_query = {job.job_id: job for job in listed.recent if _ended(listed.statuses.get(job.task_id or ""))}
    for job in due:
        if job.job_id in to_query:
            continue
        status = listed.statuses.get(job.task_id or "")
        if status is None or not status.is_active or too_old(job, now):
            to_query[job.job_id] = job  # not listed (or expiring): its own query decides, as always
        else:
            still_running(svc, job, status, now + LIST_COVERED_RECHECK_SECONDS)
    return list(to_query.values())


def _ended(status: TaskStatus | None) -> bool:
    return status is not None and status.is_terminal


def query_all(svc: Services, jobs: list[Job]) -> list[TaskResponse | DashScopeError]:
    """Each job's task, queried concurrently (the answer, or the error after the client's retries)."""

    def query(job: Job) -> TaskResponse | DashScopeError:
        try:
            return svc.api.get_task(job.task_id or "")
        except DashScopeError as error:
            return error

    if len(jobs) <= 1:
        return [query(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(QUERY_WORKERS, len(jobs))) as pool:
        return list(pool.map(query, jobs))


def apply_status(svc: Services, job: Job, response: TaskResponse) -> Seen:
    """What the task's status makes of its SUBMITTED job."""
    status = response.output.task_status
    now = svc.clock.now()
    if status.is_active:
        if too_old(job, now):
            return _expire(svc, job, "the task did not finish within the API's 24 h task lifetime")
        still_running(svc, job, status, now + POLL_INTERVAL_SECONDS)
        return Seen.RUNNING
    if status is TaskStatus.SUCCEEDED:
        return _succeeded(svc, job, response)
    if status is TaskStatus.UNKNOWN:
        return _unknown(svc, job, now)
    svc.store.release_slot(job.job_id)
    output = response.output
    if status is TaskStatus.FAILED and job.is_segment and job.task_retries < MAX_TASK_RETRIES:
        _retry_segment(svc, job, output)
        return Seen.RETRIED
    failure = Failure(output.code, output.message)
    if status is TaskStatus.CANCELED:
        failure = Failure(output.code or "Canceled", output.message, to=JobState.CANCELED)
    fail(svc, job, [JobState.SUBMITTED], failure)
    return Seen.ENDED


def still_running(svc: Services, job: Job, status: TaskStatus, next_poll_at: float) -> None:
    """Record a live task's status and when to look at it again."""
    svc.store.reschedule(
        job.job_id,
        JobState.SUBMITTED,
        now=svc.clock.now(),
        next_poll_at=next_poll_at,
        task_status=status.value,
        first_unknown_at=None,
    )


def _succeeded(svc: Services, job: Job, response: TaskResponse) -> Seen:
    now = svc.clock.now()
    output = response.output
    succeeded = svc.store.transition(
        job.job_id,
        [JobState.SUBMITTED],
        JobState.SUCCEEDED,
        now=now,
        next_poll_at=now + RESEND_AFTER_SECONDS,
        task_status=output.task_status.value,
        orig_prompt=output.orig_prompt,
        video_url=output.video_url,
        usage=response.usage,
        task_times=task_times(output),
        finished_at=now,
    )
    svc.store.release_slot(job.job_id)
    if succeeded is None:
        return Seen.RUNNING  # another poller recorded it first; it hands it over
    svc.completion.send(CompletionMessage(job_id=job.job_id))
    if output.end_time is not None:
        svc.metrics.emit(DETECTION_DELAY, max(0.0, now - output.end_time.timestamp()))
    return Seen.SUCCEEDED


def _unknown(svc: Services, job: Job, now: float) -> Seen:
    """UNKNOWN: the task expired, or the service lost it (a short grace rules out a blip)."""
    first = job.first_unknown_at or now
    if too_old(job, now) or now - first >= UNKNOWN_GRACE_SECONDS:
        return _expire(svc, job, "the service no longer knows this task (task ids live 24 h)")
    svc.store.reschedule(
        job.job_id,
        JobState.SUBMITTED,
        now=now,
        next_poll_at=now + POLL_INTERVAL_SECONDS,
        task_status=TaskStatus.UNKNOWN.value,
        first_unknown_at=first,
    )
    return Seen.RUNNING


def _retry_segment(svc: Services, job: Job, output: TaskOutput) -> None:
    """A long clip's segment whose task FAILED goes back to the queue for a new task (bounded).

    One failed segment would otherwise throw away every other segment's paid-for edit.
    """
    now = svc.clock.now()
    logger.warning(
        "segment task failed; submitting it again",
        extra={"job_id": job.job_id, "code": output.code, "retry": job.task_retries + 1},
    )
    svc.store.transition(
        job.job_id,
        [JobState.SUBMITTED],
        JobState.QUEUED,
        now=now,
        next_poll_at=now + backoff(job.task_retries, base=5.0),
        task_retries=job.task_retries + 1,
        error_code=output.code,
        error_message=output.message,
        task_id=None,
        task_status=None,
        submitted_at=None,
        first_unknown_at=None,
    )


def query_failed(svc: Services, job: Job, error: DashScopeError) -> Seen:
    """The query itself failed (after the client's own retries): try again later, never forever."""
    now = svc.clock.now()
    if too_old(job, now):
        return _expire(
            svc, job, f"the task could not be queried before its 24 h lifetime ended ({error.code})"
        )
    svc.metrics.emit(API_ERRORS, dimension=error.code or str(error.status))
    delay = POLL_INTERVAL_SECONDS * (4 if isinstance(error, FinalError) else 1)
    logger.warning(
        "task query failed", extra={"job_id": job.job_id, "code": error.code, "status": error.status}
    )
    svc.store.reschedule(job.job_id, JobState.SUBMITTED, now=now, next_poll_at=now + delay)
    return Seen.RUNNING


def too_old(job: Job, now: float) -> bool:
    return job.submitted_at is not None and now - job.submitted_at >= TASK_LIFETIME_SECONDS


def _expire(svc: Services, job: Job, why: str) -> Seen:
    svc.store.release_slot(job.job_id)
    fail(svc, job, [JobState.SUBMITTED], Failure("TaskExpired", why, to=JobState.EXPIRED))
    return Seen.ENDED


def task_times(output: TaskOutput) -> dict[str, str]:
    """submit/scheduled/end times as the API gave them (the text), for manifests and reports."""
    times: dict[str, str] = {}
    for name in ("submit_time", "scheduled_time", "end_time"):
        value = getattr(output, name, None)
        if value is not None:
            times[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    return times
