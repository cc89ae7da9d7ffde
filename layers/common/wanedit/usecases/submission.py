"""Getting a QUEUED job to the API: take a slot, create the task exactly once, record it.

A create is made only under its prompt's create lock (`lock_prompt`): the API has no idempotency
key, so a create whose answer is lost is found again by time and prompt (`reconcile`), and the lock
keeps every other job's task of that prompt out of the times it searches.

Shared by the SubmitFunction (right after a pair is validated) and the PollFunction (queued jobs
as slots free, and reconciliation of creates whose outcome was lost).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.dashscope import (
    CreateOutcomeUnknown,
    CreateTaskRequest,
    FinalError,
    Media,
    QuotaExhaustedError,
    RetryableError,
    TaskInput,
    ThrottledError,
)
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import MODEL
from wanedit.domain.request import BucketImage, InlineImage, StoredImage, UrlImage
from wanedit.domain.timing import (
    CREATE_LOCK_RETRY_SECONDS,
    CREATE_LOCK_SECONDS,
    POLL_INTERVAL_SECONDS,
    QUOTA_PAUSE_SECONDS,
    STALE_SUBMITTING_SECONDS,
    backoff,
)
from wanedit.metrics import API_ERRORS, SUBMISSIONS_PAUSED, TASKS_CREATED
from wanedit.reports import DETAIL_PAUSED, event_detail, iso
from wanedit.sidecar_document import load_document
from wanedit.usecases.budget import admit, hold, needs_admission
from wanedit.usecases.ending import Failure, fail

logger = Logger(child=True)


def build_create_request(svc: Services, job: Job) -> CreateTaskRequest:
    """The API request for a job; inputs go as short-lived presigned URLs pinned to the validated versions."""
    video_url = svc.objects.presign_get_version(
        job.video.key, job.video.version_id, svc.settings.presign_ttl_seconds
    )
    media = [Media(type="video", url=video_url)]
    media += [Media(type="reference_image", url=_image_url(svc, image)) for image in job.request.images]
    parameters = job.request.parameters
    return CreateTaskRequest(
        model=MODEL,
        input=TaskInput(prompt=job.prompt, negative_prompt=job.request.negative_prompt or None, media=media),
        parameters=parameters if parameters.as_dict() else None,
    )


def _image_url(svc: Services, image: StoredImage) -> str:
    if isinstance(image, BucketImage):
        return svc.objects.presign_get_version(image.key, image.version_id, svc.settings.presign_ttl_seconds)
    if isinstance(image, UrlImage):
        return image.url
    return _inline_image(svc, image)


def _inline_image(svc: Services, image: InlineImage) -> str:
    """A data: URI from the sidecar or defaults file version it was validated in (a JSON path)."""
    info = svc.objects.head(image.key, image.version_id)
    if info is None:
        raise RetryableError(None, None, "the file holding an inline image vanished before submission", None)
    value: Any = load_document(svc.objects.read_head(info, info.size))[0]
    for step in image.path:
        value = value[step]
    return str(value)


def try_submit(svc: Services, job: Job) -> Job:
    """Submit a QUEUED job if the budgets admit it and a slot is free; returns the job as it now stands.

    The job takes its prompt's create lock (`lock_prompt`) before it leaves QUEUED: a job that finds
    the lock held by another stays QUEUED (so a crash there never leaves it SUBMITTING, to be
    reconciled against the other job's task), and the attempt the lock covers starts at the same
    time as the one reconciliation measures from (`submitting_since`).
    """
    if job.state is not JobState.QUEUED:
        return job
    if needs_admission(job):
        admitted = admit(svc, job)
        if admitted is None:
            return hold(svc, job)
        job = admitted
    now = svc.clock.now()
    if svc.store.submissions_paused_until(now) is not None:
        return job  # the account's quota is used up: the poller submits it once the pause ends
    if not svc.store.acquire_slot(job.job_id, svc.settings.max_concurrent_tasks, now):
        return job  # stays QUEUED; the poller submits it when a slot frees
    if not lock_prompt(svc, job, now):
        return _wait_for_lock(svc, job, now)
    claimed = svc.store.transition(
        job.job_id,
        [JobState.QUEUED],
        JobState.SUBMITTING,
        now=now,
        next_poll_at=now + STALE_SUBMITTING_SECONDS,
        submitting_since=now,
        submit_attempts=job.submit_attempts + 1,
    )
    if claimed is None:
        # Another worker moved the job on; it owns the slot lease (and the create lock) under this
        # job id, and the poller reaps leases of jobs that do not hold one.
        return svc.store.get(job.job_id) or job
    withdrawn = _withdrawn(svc, claimed)
    if withdrawn:
        return _withdraw(svc, claimed, withdrawn)
    return _create(svc, claimed)


def _withdraw(svc: Services, job: Job, why: str) -> Job:
    """An input was withdrawn before the create: CANCELED with a report; nothing was sent."""
    svc.store.release_slot(job.job_id)
    ended = fail(svc, job, [JobState.SUBMITTING], Failure("InputWithdrawn", why, to=JobState.CANCELED))
    release_prompt(svc, job)
    return ended


def _create(svc: Services, job: Job) -> Job:
    """The one create call of a SUBMITTING job, and what its outcome makes of the job.

    Made under its prompt's create lock, which this job releases once the outcome is known for
    sure: the task recorded and claimed (`record_created`), or a refusal that made nothing (released
    after the job has left SUBMITTING, so a crash in between keeps the lock rather than letting
    another create into a window this job may yet reconcile). An uncertain outcome keeps the lock
    until it expires.
    """
    try:
        created = svc.api.create_task(build_create_request(svc, job))
    except CreateOutcomeUnknown as error:
        svc.metrics.emit(API_ERRORS, dimension=error.code or str(error.status))
        logger.warning(
            "create outcome unknown; reconciling", extra={"job_id": job.job_id, "error": str(error)}
        )
        return to_reconcile(svc, job, [JobState.SUBMITTING])  # the lock stays until it expires
    except (RetryableError, FinalError) as error:
        ended = _refused(svc, job, error)
        release_prompt(svc, job)
        return ended
    svc.metrics.emit(TASKS_CREATED)
    return record_created(svc, job, created.output.task_id, created.request_id, [JobState.SUBMITTING])


def _refused(svc: Services, job: Job, error: RetryableError | FinalError) -> Job:
    """The service refused the create and made nothing: wait (quota, throttle, blip) or fail."""
    throttled = isinstance(error, ThrottledError)
    svc.metrics.emit(API_ERRORS, dimension=error.code or ("429" if throttled else str(error.status)))
    if isinstance(error, QuotaExhaustedError):
        return _pause(svc, job, error)
    if isinstance(error, RetryableError):
        return _requeue(svc, job, throttled=throttled)
    svc.store.release_slot(job.job_id)
    return fail(
        svc, job, [JobState.SUBMITTING], Failure(error.code, error.message, request_id=error.request_id)
    )


def prompt_fingerprint(prompt: str) -> str:
    """The create lock's key: a hash of the prompt exactly as sent, which is what the service echoes
    as `orig_prompt` and reconciliation compares (`reconcile._judge`). Never the prompt itself."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def lock_prompt(svc: Services, job: Job, since: float) -> bool:
    """Take (or renew) the create lock of the job's prompt for an attempt at `since`; False: another
    job holds it.

    Reconciliation can tell a lost create's task from another job's only by time and prompt, so
    while one job's create of a prompt may be unresolved, no other job creates a task of that
    prompt close enough in time to be confused with it: the lock lasts CREATE_LOCK_SECONDS from
    the attempt, the span after which neither attempt's reconciliation can list the other's task.
    """
    return svc.store.acquire_create_lock(
        prompt_fingerprint(job.prompt), job.job_id, now=since, until=since + CREATE_LOCK_SECONDS
    )


def release_prompt(svc: Services, job: Job) -> None:
    """The attempt's outcome is known for sure: other jobs of its prompt may create again."""
    svc.store.release_create_lock(prompt_fingerprint(job.prompt), job.job_id)


def _wait_for_lock(svc: Services, job: Job, now: float) -> Job:
    """Another job's create of this prompt is unresolved: the job stays QUEUED, creates nothing and
    gives its slot back.

    Looked at again in CREATE_LOCK_RETRY_SECONDS, or when the lock expires if sooner, so a job never
    waits longer than the lock lasts. The slot is given back once the job is rescheduled (a crash
    in between leaves a lease the poller reaps: a QUEUED job holds none).
    """
    held = svc.store.create_lock(prompt_fingerprint(job.prompt), now)
    retry = now + CREATE_LOCK_RETRY_SECONDS
    if held is not None:
        retry = max(now, min(retry, held.until))
    logger.info(
        "another job's create of the same prompt is unresolved: waiting",
        extra={"job_id": job.job_id, "other_job_id": held.holder if held else None, "retry_at": retry},
    )
    waiting = svc.store.reschedule(job.job_id, JobState.QUEUED, now=now, next_poll_at=retry)
    if waiting is None:
        return svc.store.get(job.job_id) or job  # another worker moved it on: the lease is its
    svc.store.release_slot(job.job_id)
    return waiting


def _pause(svc: Services, job: Job, error: QuotaExhaustedError) -> Job:
    """The account's quota is used up: no create for a while (retrying soon would only add load).

    The job goes back to the queue for when the pause ends; the first worker to begin the pause
    announces it. A create after the pause that is refused again begins the next one.
    """
    now = svc.clock.now()
    until = now + QUOTA_PAUSE_SECONDS
    if svc.store.pause_submissions(until, error.code or "Throttling.AllocationQuota", now):
        svc.metrics.emit(SUBMISSIONS_PAUSED)
        waiting = job.model_copy(update={"state": JobState.QUEUED})
        detail = event_detail(
            waiting, error_code=error.code, error_message=error.message, paused_until=iso(until)
        )
        svc.notifier.publish(DETAIL_PAUSED, detail)
        logger.warning("the account's quota is used up: submissions paused", extra={"until": iso(until)})
    svc.store.release_slot(job.job_id)
    return (
        svc.store.transition(
            job.job_id,
            [JobState.SUBMITTING],
            JobState.QUEUED,
            now=now,
            next_poll_at=until,
            submitting_since=None,
        )
        or job
    )


def to_reconcile(svc: Services, job: Job, expected: Collection[JobState]) -> Job:
    """A create may have made a task: find it before ever creating another (the poller's reconcile)."""
    now = svc.clock.now()
    return (
        svc.store.transition(
            job.job_id, expected, JobState.RECONCILING, now=now, next_poll_at=now + POLL_INTERVAL_SECONDS
        )
        or job
    )


def _withdrawn(svc: Services, job: Job) -> str | None:
    """Why the job's inputs are no longer what the user wants submitted (None: they still are).

    A clip or sidecar deleted while its job waited is the user withdrawing it; one replaced by a
    newer version has a newer job of its own. Either way, creating this (billed) task would be
    waste, so the job ends CANCELED with a report. Once a task exists, the job runs to its end.
    """
    for source in (job.video, job.sidecar):
        current = svc.objects.head(source.key)
        if current is None:
            return f"{source.key} was deleted before the job was submitted; nothing was sent"
        if current.identity != source.identity:
            return (
                f"{source.key} was replaced by a newer version before the job was submitted; "
                "the newer version is a job of its own"
            )
    return None


def record_created(
    svc: Services,
    job: Job,
    task_id: str,
    request_id: str | None,
    expected: Collection[JobState],
    status: str = "PENDING",
) -> Job:
    """The API has a task for this job: claim it (one job per task) and start polling it."""
    now = svc.clock.now()
    svc.store.claim_task(task_id, job.job_id, now)
    updated = svc.store.transition(
        job.job_id,
        expected,
        JobState.SUBMITTED,
        now=now,
        next_poll_at=now + POLL_INTERVAL_SECONDS,
        task_id=task_id,
        task_status=status,
        request_ids=job.with_request_id(request_id),
        submitted_at=now,
        submitting_since=None,
    )
    logger.info("task created", extra={"job_id": job.job_id, "task_id": task_id})
    release_prompt(svc, job)  # recorded and claimed: the create's outcome is known
    return updated or job


def _requeue(svc: Services, job: Job, *, throttled: bool) -> Job:
    """Nothing was created: back to the queue, behind a jittered backoff (longer after each throttle)."""
    now = svc.clock.now()
    svc.store.release_slot(job.job_id)
    attempts = job.throttled + 1 if throttled else job.submit_attempts
    return (
        svc.store.transition(
            job.job_id,
            [JobState.SUBMITTING],
            JobState.QUEUED,
            now=now,
            next_poll_at=now + backoff(attempts),
            throttled=job.throttled + (1 if throttled else 0),
            submitting_since=None,
        )
        or job
    )
