"""Finding the task a lost create may have made, before ever creating another one.

The API has no idempotency key and its list shows no prompt, so a task is recognised by:
- time: its creation time (the service's clock) within [-RECONCILE_SKEW, +CREATE_SEND_WINDOW] of
  the attempt (ours), which keeps other attempts' tasks out;
- ownership: no other job has claimed it (TASK#<id>, written right after every create);
- age: at least CLAIM_GRACE old, so a create still being answered to its own worker (read timeout
  15 s) is never taken from it;
- key: it was made with one of our keys, when the service has already shown which those are (the
  account's other workloads — another application, a colleague's key — list their tasks too);
- fingerprint: once it SUCCEEDED, its orig_prompt (the prompt as sent: a prompt_extend rewrite
  does not change it) equals ours. PENDING/RUNNING/FAILED tasks show no prompt.

Why a match is this job's and no other's: no two jobs of one prompt create tasks close enough in
time to be confused. Every create is made under its prompt's create lock (`submission.lock_prompt`,
keyed by a hash of the prompt exactly as compared here); the lock is released only once its
create's outcome is known for sure (the task recorded and claimed, or a refusal that made
nothing), and otherwise lasts CREATE_LOCK_SECONDS from the attempt, the span after which neither of
two attempts' lists (`timing.CREATE_LOCK_SECONDS` derives it from RECONCILE_SKEW, CREATE_SEND_WINDOW
and LIST_MARGIN_SECONDS) can hold the other's task. So, for an attempt whose outcome is unknown,
every other task of its prompt in its list is either claimed (its creator knew it) or was made
outside its window; a same-prompt job that found the lock held did not create at all, and waits.
Two clips sharing a folder's defaults, a sidecar's several edits, a long clip's segments: each
lost create adopts its own task only.

A task this job claimed itself before a crash is adopted at once; a SUCCEEDED match is adopted
(the closest in time if several, as another workload's task of the same prompt may be one while
our keys are not yet known). An unfinished candidate makes the job wait (it holds the slot its task
occupies) until it shows its prompt. With nothing left after RECONCILE_WINDOW, no task was made:
the job is queued again (its lock, until it lapses, is still its own: it may create again at once).
Adopting a task releases the job's lock; the other ends leave it to expire.

Exits, so a job never waits forever: a list the service refuses for good (a key that may not list
tasks, say) past RECONCILE_WINDOW ends the job FAILED, and an attempt older than the task
lifetime ends it EXPIRED (any task it made has expired too). Both say so in the report: wanedit
cannot tell whether a task was made, so it does not create another that might be billed twice.

A candidate that ended FAILED/CANCELED without showing a prompt is never adopted: the job is queued
again and creates one more task, a bounded cost preferred to ending the wrong job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from wanedit.container import Services
from wanedit.dashscope import DashScopeError, FinalError, TaskListItem, TaskStatus
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import MODEL, TASK_LIFETIME_SECONDS
from wanedit.domain.timing import (  # the windows, beside the create lock they bound (timing.py)
    CREATE_SEND_WINDOW,
    LIST_MARGIN_SECONDS,
    POLL_INTERVAL_SECONDS,
    RECONCILE_SKEW,
)
from wanedit.usecases.ending import Failure, fail
from wanedit.usecases.submission import record_created

RECONCILE_WINDOW_SECONDS = 120.0  # how long a lost create may take to show up in the task list
CLAIM_GRACE_SECONDS = 30.0  # a live creator claims its task within its read timeout (15 s)


@dataclass
class _Search:
    """What the list showed about one attempt."""

    own: TaskListItem | None = None  # a task this job claimed before a crash
    matches: list[tuple[float, str, str | None]] = field(default_factory=list)  # (distance, task, request)
    waiting: bool = False  # a candidate cannot be judged yet


def reconcile(svc: Services, job: Job) -> bool:
    """One look for a RECONCILING job's task; True when it was found and adopted."""
    now = svc.clock.now()
    since = job.submitting_since or job.updated_at
    if now - since >= TASK_LIFETIME_SECONDS:
        _give_up(svc, job, JobState.EXPIRED, "ReconcileExpired", "no task could be confirmed within 24 h")
        return False
    try:
        listed = list(
            svc.api.iter_tasks(
                start=_at(since - LIST_MARGIN_SECONDS), end=_window_end(since, now), model_name=MODEL
            )
        )
    except FinalError as error:
        if now - since >= RECONCILE_WINDOW_SECONDS:
            _give_up(
                svc,
                job,
                JobState.FAILED,
                error.code,
                f"the task list was refused ({error.code}: {error.message})",
            )
        else:
            _look_again(svc, job, now)
        return False
    except DashScopeError:
        _look_again(svc, job, now)
        return False
    return _settle(svc, job, _search(svc, job, listed, since, now), since, now)


def _window_end(since: float, now: float) -> datetime:
    """The list window ends where a candidate could still have been created (always well within 24 h)."""
    return _at(min(now, since + CREATE_SEND_WINDOW) + LIST_MARGIN_SECONDS)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _search(svc: Services, job: Job, listed: list[TaskListItem], since: float, now: float) -> _Search:
    search = _Search()
    ours = svc.store.key_identities()
    for item in listed:
        created = item.gmt_create.timestamp() if item.gmt_create else None
        if created is not None and not since - RECONCILE_SKEW <= created <= since + CREATE_SEND_WINDOW:
            continue
        owner = svc.store.task_owner(item.task_id)
        if owner == job.job_id:
            search.own = item
            return search
        if owner is None and not _foreign(item, ours):
            _judge(svc, job, item, since, now, created, search)
    return search


def _foreign(item: TaskListItem, ours: set[str]) -> bool:
    """A task another workload of the account made: created with a key that is not ours.

    The service shows each task's key (`api_key_id`); ours are learned from our own tasks in the
    list (`tracking`). Before the first of them has been seen, nothing tells them apart.
    """
    return bool(ours) and item.api_key_id is not None and item.api_key_id not in ours


def _judge(
    svc: Services,
    job: Job,
    item: TaskListItem,
    since: float,
    now: float,
    created: float | None,
    search: _Search,
) -> None:
    """Is an unclaimed candidate this job's task? Too young or unfinished to tell: wait."""
    if created is not None and now - created < CLAIM_GRACE_SECONDS:
        search.waiting = True
        return
    try:
        detail = svc.api.get_task(item.task_id)
    except DashScopeError:
        search.waiting = True
        return
    status = detail.output.task_status
    if status.is_active:
        search.waiting = True  # cannot tell whose it is until it finishes and shows orig_prompt
    elif status is TaskStatus.SUCCEEDED and detail.output.orig_prompt == job.prompt:
        search.matches.append((abs((created or since) - since), item.task_id, item.request_id))


def _settle(svc: Services, job: Job, search: _Search, since: float, now: float) -> bool:
    if search.own is not None:
        record_created(
            svc, job, search.own.task_id, search.own.request_id, [job.state], status=search.own.status.value
        )
        return True
    for _, task_id, request_id in sorted(search.matches):
        if svc.store.claim_task(task_id, job.job_id, now):
            record_created(svc, job, task_id, request_id, [job.state], status=TaskStatus.RUNNING.value)
            return True
    if search.waiting or now - since < RECONCILE_WINDOW_SECONDS:
        _look_again(svc, job, now)
        return False
    svc.store.release_slot(job.job_id)
    svc.store.transition(
        job.job_id, [job.state], JobState.QUEUED, now=now, next_poll_at=now, submitting_since=None
    )
    return False


def _look_again(svc: Services, job: Job, now: float) -> None:
    svc.store.reschedule(job.job_id, job.state, now=now, next_poll_at=now + POLL_INTERVAL_SECONDS)


def _give_up(svc: Services, job: Job, to: JobState, code: str | None, why: str) -> None:
    svc.store.release_slot(job.job_id)
    message = (
        f"The answer to the create call was lost and {why}. wanedit cannot tell whether the service made a "
        "task, so it does not create another (which could be billed twice). Look for the task in the Model "
        "Studio console; upload the sidecar again to retry."
    )
    fail(svc, job, [JobState.RECONCILING], Failure(code, message, to=to))
