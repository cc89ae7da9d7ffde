"""How the split and stitch workers hold a parent: claims, bounded retries of S3 steps, giving up."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.job import Claim, Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import RESEND_AFTER_SECONDS, STALE_WORK_SECONDS, backoff
from wanedit.usecases.ending import Failure, fail

logger = Logger(child=True)

MAX_WORK_ATTEMPTS = 5  # split or stitch attempts that failed for a transient reason

P = ParamSpec("P")
R = TypeVar("R")


class LongClipRetry(Exception):
    """A split or stitch failed for a transient reason and the parent was handed back: redeliver."""


class WorkEnded(Exception):
    """The step ended the clip for good (failed, or gave up retrying); `state` is where it stands."""

    def __init__(self, state: JobState) -> None:
        super().__init__(state.value)
        self.state = state


def claim_work(svc: Services, job: Job, waiting: JobState, working: JobState) -> Job | None:
    """Take the parent for a split or stitch; None when another worker holds a fresh claim."""
    now = svc.clock.now()
    started = job.work_started_at
    attempt = job.work_attempts + 1
    if job.state is working:
        if started is not None and now - started < STALE_WORK_SECONDS:
            return None
        return svc.store.claim(
            job.job_id,
            working,
            Claim("work_started_at", started),
            now=now,
            next_poll_at=now + RESEND_AFTER_SECONDS,
            work_started_at=now,
            work_attempts=attempt,
        )
    if job.state is waiting:
        return svc.store.transition(
            job.job_id,
            [waiting],
            working,
            now=now,
            next_poll_at=now + RESEND_AFTER_SECONDS,
            work_started_at=now,
            work_attempts=attempt,
        )
    return None


def transient(
    svc: Services, job: Job, what: str, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run an S3 step; on failure hand the parent back for a retry (`LongClipRetry`), within bounds.

    Past MAX_WORK_ATTEMPTS the clip ends FAILED instead (`WorkEnded`): an outage that outlasts the
    retries is reported, never retried forever.
    """
    try:
        return call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - whatever S3 raised, the step is retried (bounded)
        reason = f"could not {what}: {type(error).__name__}"
        if job.work_attempts >= MAX_WORK_ATTEMPTS:
            raise WorkEnded(
                end_work(svc, job, "LongClipWorkFailed", f"{reason}, {job.work_attempts} times")
            ) from None
        _hand_back(svc, job)
        logger.warning("long-clip step failed; will retry", extra={"job_id": job.job_id, "reason": reason})
        raise LongClipRetry(reason) from None


def _hand_back(svc: Services, job: Job) -> None:
    """Release the claim: a stitch goes back to waiting (SEGMENTED), a split stays SPLITTING."""
    now = svc.clock.now()
    at = now + backoff(job.work_attempts, base=5.0, cap=300.0)
    if job.state is JobState.STITCHING:
        svc.store.transition(
            job.job_id,
            [JobState.STITCHING],
            JobState.SEGMENTED,
            now=now,
            next_poll_at=at,
            work_started_at=None,
        )
    else:
        svc.store.reschedule(job.job_id, job.state, now=now, next_poll_at=at, work_started_at=None)


def end_work(svc: Services, job: Job, code: str, message: str, *, segment: int | None = None) -> JobState:
    """End the clip FAILED with a report (the split or stitch cannot be done)."""
    return fail(svc, job, [job.state], Failure(code, message, segment=segment)).state
