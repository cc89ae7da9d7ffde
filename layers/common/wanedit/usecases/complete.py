"""The CompleteFunction's work: stream a finished edit into the bucket, write its manifest, announce it.

At-least-once safe: the SUCCEEDED -> PERSISTING claim lets one worker at a time persist a job; a
worker that dies leaves PERSISTING behind, which the poller re-announces and a later worker takes
over once the claim is stale. Writes are idempotent overwrites of the same keys.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from wanedit.adapters.download import ResultDownloadError, ResultUnavailable
from wanedit.container import Services
from wanedit.dashscope import DashScopeError, TaskStatus
from wanedit.jobs import Job, JobState
from wanedit.paths import FOLDER_DEFAULTS_NAME
from wanedit.reports import DETAIL_SUCCEEDED, event_detail, manifest
from wanedit.usecases.submission import backoff, fail

logger = Logger(child=True)

MAX_PERSIST_ATTEMPTS = 5
STALE_PERSISTING_SECONDS = 15 * 60.0  # the CompleteFunction's timeout
RESEND_COMPLETION_AFTER = 20 * 60.0


class PersistRetry(Exception):
    """Persisting failed for a transient reason; the message is redelivered and tried again."""


def persist_result(svc: Services, job_id: str) -> JobState | None:
    """Persist one finished job; returns its end state (None: unknown job, nothing to do)."""
    job = svc.store.get(job_id)
    if job is None:
        logger.warning("completion for an unknown job", extra={"job_id": job_id})
        return None
    claimed = _claim(svc, job)
    if claimed is None:
        return job.state  # done already, or another worker is on it
    try:
        size = _stream(svc, claimed)
    except ResultUnavailable as error:
        return _result_unavailable(svc, claimed, error)
    except (ResultDownloadError, OSError) as error:
        _release(svc, claimed, reason=str(error))
        raise PersistRetry(str(error)) from None
    except Exception as error:
        # S3 refusing a part or similar: release the claim so the redelivery can retry.
        _release(svc, claimed, reason=type(error).__name__)
        raise
    return _finish(svc, claimed, size)


def _claim(svc: Services, job: Job) -> Job | None:
    now = svc.clock.now()
    changes: dict[str, Any] = {"persist_attempts": job.persist_attempts + 1, "persist_started_at": now}
    if job.state is JobState.SUCCEEDED:
        return svc.store.transition(
            job.job_id,
            [JobState.SUCCEEDED],
            JobState.PERSISTING,
            now=now,
            next_poll_at=now + RESEND_COMPLETION_AFTER,
            **changes,
        )
    if job.state is JobState.PERSISTING and now - (job.persist_started_at or 0) >= STALE_PERSISTING_SECONDS:
        return svc.store.transition(
            job.job_id,
            [JobState.PERSISTING],
            JobState.PERSISTING,
            now=now,
            next_poll_at=now + RESEND_COMPLETION_AFTER,
            condition_extra=("persist_started_at = :old", {":old": job.persist_started_at}),
            **changes,
        )
    return None


def _output_key(svc: Services, job: Job) -> str:
    """edited/<stem>.mp4; a long clip's segment waits in the working prefix to be stitched."""
    if job.parent_id is not None and job.segment_index is not None:
        return svc.layout.edited_segment_key(job.parent_id, job.segment_index)
    return svc.layout.edited_video_key(job.stem)


def _stream(svc: Services, job: Job) -> int:
    if not job.video_url:
        raise ResultUnavailable(404, "no result URL recorded")
    key = _output_key(svc, job)
    tags = {"wanedit-job": job.job_id, "wanedit-state": JobState.PERSISTED.value}
    with svc.downloader.open(job.video_url) as (length, chunks):
        size = svc.objects.upload_stream(key, chunks, content_type="video/mp4", tags=tags)
    if length is not None and size != length:
        raise ResultDownloadError(f"result truncated: {size} of {length} bytes")
    return size


def _finish(svc: Services, job: Job, size: int) -> JobState:
    if job.parent_id is not None:
        return _segment_saved(svc, job)
    now = svc.clock.now()
    output_key = svc.layout.edited_video_key(job.stem)
    manifest_key = svc.layout.edited_manifest_key(job.stem)
    tags = {"wanedit-job": job.job_id, "wanedit-state": JobState.PERSISTED.value}
    svc.objects.put_json(
        manifest_key,
        manifest(
            job,
            output_key=output_key,
            output_size=size,
            now=now,
            estimated_cost=svc.settings.estimated_cost(job.usage),
        ),
        tags=tags,
    )
    tag_sources(svc, job, tags)
    # Announce before marking done: a crash in between repeats the event (at least once) rather
    # than losing it.
    done = job.model_copy(
        update={"state": JobState.PERSISTED, "output_key": output_key, "manifest_key": manifest_key}
    )
    svc.notifier.publish(
        DETAIL_SUCCEEDED,
        event_detail(done, output_key=output_key, manifest_key=manifest_key, size=size, usage=job.usage),
    )
    svc.store.transition(
        job.job_id,
        [JobState.PERSISTING],
        JobState.PERSISTED,
        now=now,
        output_key=output_key,
        manifest_key=manifest_key,
        video_url=None,  # a bearer link; no reason to keep it once the file is ours
    )
    logger.info("edit persisted", extra={"job_id": job.job_id, "key": output_key, "bytes": size})
    return JobState.PERSISTED


def tag_sources(svc: Services, job: Job, tags: dict[str, str]) -> None:
    """Tag a finished job's clip and sidecar, so the bucket's lifecycle rules may archive them.

    A defaults file serves other clips: it is never tagged.
    """
    for source in (job.video, job.sidecar):
        if not source.key.endswith(FOLDER_DEFAULTS_NAME):
            svc.objects.tag_version(source.key, source.version_id, tags)


def _segment_saved(svc: Services, job: Job) -> JobState:
    """A long clip's segment is saved (no manifest or event: the clip gets those); the last asks to stitch."""
    now = svc.clock.now()
    saved = svc.store.transition(
        job.job_id,
        [JobState.PERSISTING],
        JobState.PERSISTED,
        now=now,
        output_key=_output_key(svc, job),
        video_url=None,
    )
    parent = svc.store.get(job.parent_id or "")
    if saved is None or parent is None or parent.state is not JobState.SEGMENTED:
        return JobState.PERSISTED
    if all_saved(segment_jobs(svc, parent)):
        svc.long_clips.stitch(parent.job_id)
    logger.info("segment persisted", extra={"job_id": job.job_id, "parent": parent.job_id})
    return JobState.PERSISTED


def segment_jobs(svc: Services, parent: Job) -> list[Job | None]:
    """A long clip's segment jobs, in order (None where one is missing)."""
    return [svc.store.get(segment.job_id) for segment in parent.segments]


def all_saved(segments: list[Job | None]) -> bool:
    return all(segment is not None and segment.state is JobState.PERSISTED for segment in segments)


def _result_unavailable(svc: Services, job: Job, error: ResultUnavailable) -> JobState:
    """The link refused us: ask the API for a fresh one; if the task is gone too, the edit is lost."""
    try:
        fresh = svc.api.get_task(job.task_id or "")
    except DashScopeError as query_error:
        _release(
            svc, job, reason=f"result refused ({error.status}) and task query failed ({query_error.code})"
        )
        raise PersistRetry(str(error)) from None
    output = fresh.output
    if output.task_status is TaskStatus.SUCCEEDED and output.video_url and output.video_url != job.video_url:
        _release(
            svc, job, reason="result link refused; retrying with a fresh link", video_url=output.video_url
        )
        raise PersistRetry("result link refreshed") from None
    if job.persist_attempts < MAX_PERSIST_ATTEMPTS and output.task_status is TaskStatus.SUCCEEDED:
        _release(svc, job, reason=f"result refused ({error.status})")
        raise PersistRetry(str(error)) from None
    return fail(
        svc,
        job,
        [JobState.PERSISTING],
        "ResultExpired",
        f"The finished video could not be downloaded (HTTP {error.status}); the service no longer has it.",
        to=JobState.EXPIRED,
    ).state


def _release(svc: Services, job: Job, *, reason: str, video_url: str | None = None) -> None:
    """Hand the job back (SUCCEEDED) so the redelivered message can claim it again."""
    now = svc.clock.now()
    logger.warning("persist attempt failed", extra={"job_id": job.job_id, "reason": reason})
    if job.persist_attempts >= MAX_PERSIST_ATTEMPTS:
        fail(
            svc,
            job,
            [JobState.PERSISTING],
            "PersistFailed",
            f"The edit finished but could not be saved after {job.persist_attempts} attempts: {reason}",
        )
        raise PersistRetry("gave up") from None
    changes: dict[str, Any] = {"video_url": video_url} if video_url else {}
    svc.store.transition(
        job.job_id,
        [JobState.PERSISTING],
        JobState.SUCCEEDED,
        now=now,
        next_poll_at=now + backoff(job.persist_attempts, base=5.0, cap=300.0),
        persist_started_at=None,
        **changes,
    )
