"""Getting a QUEUED job to the API: take a slot, create the task exactly once, record it.

Shared by the SubmitFunction (right after a pair is validated) and the PollFunction (queued jobs
as slots free, and reconciliation of creates whose outcome was lost).
"""

from __future__ import annotations

import random
from typing import Any

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.dashscope import (
    CreateOutcomeUnknown,
    CreateTaskRequest,
    FinalError,
    RetryableError,
    ThrottledError,
)
from wanedit.jobs import Job, JobState
from wanedit.reports import DETAIL_FAILED, event_detail, failure_report
from wanedit.sidecar import load_document

logger = Logger(child=True)

POLL_INTERVAL_SECONDS = 15.0  # the reference's recommended query interval
# A SUBMITTING job older than this lost its worker between "create" and "record": reconcile it.
STALE_SUBMITTING_SECONDS = 120.0
THROTTLE_BACKOFF_BASE = 2.0
THROTTLE_BACKOFF_CAP = 60.0


def backoff(attempt: int, *, base: float = THROTTLE_BACKOFF_BASE, cap: float = THROTTLE_BACKOFF_CAP) -> float:
    """Exponential backoff with full jitter: spreads a burst of throttled jobs over time."""
    return random.uniform(0, min(cap, base * 2 ** max(attempt, 0)))


def build_create_request(svc: Services, job: Job) -> CreateTaskRequest:
    """The API request for a job; inputs go as short-lived presigned URLs pinned to the validated versions."""
    video_url = svc.objects.presign_get_version(
        job.video.key, job.video.version_id, svc.settings.presign_ttl_seconds
    )
    media: list[dict[str, str]] = [{"type": "video", "url": video_url}]
    images: list[dict[str, Any]] = job.request.get("reference_images", [])
    for image in images:
        if "key" in image:
            url = svc.objects.presign_get_version(
                image["key"], image.get("version_id"), svc.settings.presign_ttl_seconds
            )
        elif "url" in image:
            url = image["url"]
        else:
            # data: URIs are too big for the job item; read them back from the version-pinned file.
            url = _inline_image(svc, image["data_from"])
        media.append({"type": "reference_image", "url": url})
    body: dict[str, Any] = {"model": "wan2.7-videoedit", "input": {"prompt": job.prompt, "media": media}}
    if job.request.get("negative_prompt"):
        body["input"]["negative_prompt"] = job.request["negative_prompt"]
    if job.request.get("parameters"):
        body["parameters"] = job.request["parameters"]
    return CreateTaskRequest.model_validate(body)


def _inline_image(svc: Services, where: dict[str, Any]) -> str:
    """A data: URI from the sidecar or defaults file version it was validated in (a JSON path)."""
    info = svc.objects.head(where["key"], where.get("version_id"))
    if info is None:
        raise RetryableError(None, None, "the file holding an inline image vanished before submission", None)
    value: Any = load_document(svc.objects.read_head(info, info.size))[0]
    for step in where["path"]:
        value = value[step]
    return str(value)


def try_submit(svc: Services, job: Job) -> Job:
    """Submit a QUEUED job if a slot is free; returns the job as it now stands."""
    now = svc.clock.now()
    if not svc.store.acquire_slot(job.job_id, svc.settings.max_concurrent_tasks, now):
        return job  # stays QUEUED; the poller submits it when a slot frees
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
        # Another worker moved the job on; it owns the slot lease under this job id, and the
        # poller reaps leases of jobs that do not hold one.
        return svc.store.get(job.job_id) or job
    withdrawn = _withdrawn(svc, claimed)
    if withdrawn:
        svc.store.release_slot(job.job_id)
        return fail(svc, claimed, [JobState.SUBMITTING], "InputWithdrawn", withdrawn, to=JobState.CANCELED)
    try:
        request = build_create_request(svc, claimed)
        created = svc.api.create_task(request)
    except ThrottledError:
        return _requeue(svc, claimed, throttled=True)
    except CreateOutcomeUnknown as error:
        logger.warning(
            "create outcome unknown; reconciling", extra={"job_id": job.job_id, "error": str(error)}
        )
        return (
            svc.store.transition(
                job.job_id,
                [JobState.SUBMITTING],
                JobState.RECONCILING,
                now=now,
                next_poll_at=now + POLL_INTERVAL_SECONDS,
            )
            or claimed
        )
    except RetryableError:
        return _requeue(svc, claimed, throttled=False)
    except FinalError as error:
        svc.store.release_slot(job.job_id)
        return fail(
            svc, claimed, [JobState.SUBMITTING], error.code, error.message, request_id=error.request_id
        )
    return record_created(svc, claimed, created.output.task_id, created.request_id, [JobState.SUBMITTING])


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
        if (current.version_id or current.etag) != source.identity:
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
    expected: list[JobState],
    status: str = "PENDING",
) -> Job:
    """The API has a task for this job: claim it (one job per task) and start polling it."""
    now = svc.clock.now()
    svc.store.claim_task(task_id, job.job_id, now)
    request_ids = [*job.request_ids, request_id] if request_id else job.request_ids
    updated = svc.store.transition(
        job.job_id,
        expected,
        JobState.SUBMITTED,
        now=now,
        next_poll_at=now + POLL_INTERVAL_SECONDS,
        task_id=task_id,
        task_status=status,
        request_ids=request_ids,
        submitted_at=now,
        submitting_since=None,
    )
    logger.info("task created", extra={"job_id": job.job_id, "task_id": task_id})
    return updated or job


def _requeue(svc: Services, job: Job, *, throttled: bool) -> Job:
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


def fail(
    svc: Services,
    job: Job,
    expected: list[JobState],
    code: str | None,
    message: str | None,
    *,
    to: JobState = JobState.FAILED,
    request_id: str | None = None,
    segment: int | None = None,
) -> Job:
    """End a job for good with a report in failed/ and a notification.

    A long clip's segment gets neither: its parent is told (woken for the poller), which ends the
    whole clip with one report naming the segment (`segment`, also in the event).

    Report, then event, then the terminal transition: a crash before the transition leaves the job
    in one of `expected`, so the next run ends it again (the report is rewritten, the event repeated:
    at least once); the transition itself decides which worker ends the job. Marking it terminal
    first would let a crash lose the report and the event for good (nothing revisits a terminal job).

    That order needs the caller to hold the job (SUBMITTING, SUBMITTED under the single poller,
    PERSISTING under its claim). A QUEUED job is not held (any submitter may take it at any moment):
    there the transition goes first, so a lost race never announces an end that did not happen.
    """
    now = svc.clock.now()
    if job.state not in expected:
        return job
    if job.parent_id is not None:
        return _end_segment(svc, job, expected, code, message, to=to, request_id=request_id)
    if JobState.QUEUED in expected:
        return _fail_unheld(svc, job, expected, code, message, to=to, request_id=request_id)
    report_key = svc.layout.failed_report_key(job.stem)
    request_ids = [*job.request_ids, request_id] if request_id else job.request_ids
    changes: dict[str, Any] = {
        "error_code": code,
        "error_message": message,
        "request_ids": request_ids,
        "finished_at": now,
        "report_key": report_key,
    }
    ending = job.model_copy(update={"state": to, "updated_at": now, **changes})
    svc.objects.put_json(
        report_key,
        failure_report(ending, now, segment=segment),
        tags={"wanedit-job": job.job_id, "wanedit-state": to.value},
    )
    svc.notifier.publish(
        DETAIL_FAILED,
        event_detail(ending, error_code=code, error_message=message, report_key=report_key, segment=segment),
    )
    ended = svc.store.transition(job.job_id, expected, to, now=now, **changes)
    if ended is None:
        logger.warning("job ended elsewhere meanwhile", extra={"job_id": job.job_id, "state": to.value})
        return svc.store.get(job.job_id) or job
    logger.info("job ended", extra={"job_id": job.job_id, "state": to.value, "code": code})
    return ended


def _end_segment(
    svc: Services,
    job: Job,
    expected: list[JobState],
    code: str | None,
    message: str | None,
    *,
    to: JobState,
    request_id: str | None,
) -> Job:
    """End a segment's job quietly and wake its parent, whose poller look ends the whole clip."""
    ended = _transition_to_end(svc, job, expected, code, message, to=to, request_id=request_id)
    if ended is None:
        return svc.store.get(job.job_id) or job
    now = svc.clock.now()
    svc.store.transition(
        job.parent_id or "", [JobState.SEGMENTED], JobState.SEGMENTED, now=now, next_poll_at=now
    )
    logger.info("segment ended", extra={"job_id": job.job_id, "state": to.value, "code": code})
    return ended


def _transition_to_end(
    svc: Services,
    job: Job,
    expected: list[JobState],
    code: str | None,
    message: str | None,
    *,
    to: JobState,
    request_id: str | None,
    report_key: str | None = None,
) -> Job | None:
    """The terminal transition with the error recorded (None: another worker moved the job first)."""
    now = svc.clock.now()
    request_ids = [*job.request_ids, request_id] if request_id else job.request_ids
    return svc.store.transition(
        job.job_id,
        expected,
        to,
        now=now,
        error_code=code,
        error_message=message,
        request_ids=request_ids,
        finished_at=now,
        report_key=report_key,
    )


def _fail_unheld(
    svc: Services,
    job: Job,
    expected: list[JobState],
    code: str | None,
    message: str | None,
    *,
    to: JobState,
    request_id: str | None,
) -> Job:
    now = svc.clock.now()
    report_key = svc.layout.failed_report_key(job.stem)
    ended = _transition_to_end(
        svc, job, expected, code, message, to=to, request_id=request_id, report_key=report_key
    )
    if ended is None:
        return svc.store.get(job.job_id) or job
    svc.objects.put_json(
        report_key, failure_report(ended, now), tags={"wanedit-job": job.job_id, "wanedit-state": to.value}
    )
    svc.notifier.publish(
        DETAIL_FAILED, event_detail(ended, error_code=code, error_message=message, report_key=report_key)
    )
    logger.info("job ended", extra={"job_id": job.job_id, "state": to.value, "code": code})
    return ended
