"""Canceling a job on a user's request: before submission, or while its task is still PENDING.

A long clip is canceled segment by segment, then as a whole.

The API cancels only PENDING tasks (a RUNNING one is refused with UnsupportedOperation), so a job
whose task runs cannot be stopped; it is told to the user rather than pretended.
"""

from __future__ import annotations

from wanedit.container import Services
from wanedit.dashscope import FinalError
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.usecases.ending import Failure, fail


class CancelRefused(Exception):
    """The job cannot be canceled (unknown, already ended, or its task already running)."""


def cancel_job(svc: Services, job_id: str) -> Job:
    """Cancel a QUEUED or HELD job, or a SUBMITTED one whose task is PENDING; returns the CANCELED job."""
    job = svc.store.get(job_id)
    if job is None:
        raise CancelRefused(f"no job {job_id}")
    if job.state in (JobState.QUEUED, JobState.HELD):
        return fail(
            svc,
            job,
            [job.state],
            Failure("Canceled", "canceled before submission", to=JobState.CANCELED),
        )
    if job.state is JobState.SUBMITTED and job.task_id:
        try:
            svc.api.cancel_task(job.task_id)
        except FinalError as error:
            raise CancelRefused(
                f"the service refused to cancel task {job.task_id} ({error.code}): only PENDING tasks can be "
                "canceled, and this one has started"
            ) from None
        svc.store.release_slot(job.job_id)
        return fail(
            svc,
            job,
            [JobState.SUBMITTED],
            Failure("Canceled", "canceled while PENDING", to=JobState.CANCELED),
        )
    if job.state in (JobState.SPLITTING, JobState.SEGMENTED):
        return _cancel_long_clip(svc, job)
    raise CancelRefused(f"job {job_id} is {job.state.value}; only queued or pending jobs can be canceled")


def _cancel_long_clip(svc: Services, job: Job) -> Job:
    """Cancel a long clip: its queued segments, those whose task is still PENDING, and the clip.

    Segments already running cannot be stopped; they finish into the working prefix, which expires.
    """
    started = 0
    for segment in job.segments:
        child = svc.store.get(segment.job_id)
        if child is None or child.state.is_terminal:
            continue
        try:
            cancel_job(svc, child.job_id)
        except CancelRefused:
            started += 1
    note = f"; {started} segment(s) already running finish unused" if started else ""
    return fail(svc, job, [job.state], Failure("Canceled", f"long clip canceled{note}", to=JobState.CANCELED))
