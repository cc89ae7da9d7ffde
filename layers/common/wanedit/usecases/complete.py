"""The CompleteFunction's work: stream a finished edit into the bucket, write its manifest, announce it.

At-least-once safe: the SUCCEEDED -> PERSISTING claim lets one worker at a time persist a job; a
worker that dies leaves PERSISTING behind, which the poller re-announces and a later worker takes
over once the claim is older than the function's timeout. Writes are idempotent overwrites of
the same keys.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.dashscope import DashScopeError, TaskStatus
from wanedit.domain.job import Claim, Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import RESEND_AFTER_SECONDS, STALE_PERSISTING_SECONDS, backoff
from wanedit.messages import LongClipMessage
from wanedit.metrics import PERSIST_SECONDS, PERSISTED_BYTES
from wanedit.ports import ResultDownloadError, ResultUnavailable
from wanedit.reports import manifest
from wanedit.usecases.ending import Failure, end_job, fail, output_tags, publish_saved
from wanedit.usecases.longclip.segments import all_saved, segment_jobs

logger = Logger(child=True)

MAX_PERSIST_ATTEMPTS = 5
PERSIST_PATIENCE_SECONDS = 3600.0
"""A finished edit is given up only after MAX_PERSIST_ATTEMPTS *and* this long since its task
was seen finished: its result link lives 24 h, so a result host (or S3) down for minutes must not
lose a billed edit; retries back off to one every 5 minutes meanwhile."""


class PersistRetry(Exception):
    """Persisting failed for a transient reason and the job was handed back: redeliver, try again."""


def persist_result(svc: Services, job_id: str) -> JobState | None:
    """Persist one finished job; returns its state after (None: unknown job, nothing to do)."""
    job = svc.store.get(job_id)
    if job is None:
        logger.warning("completion for an unknown job", extra={"job_id": job_id})
        return None
    claimed = _claim(svc, job)
    if claimed is None:
        return job.state  # done already, or another worker is on it
    started = svc.clock.now()
    try:
        size = _stream(svc, claimed)
    except ResultUnavailable as error:
        return _result_unavailable(svc, claimed, error)
    except (ResultDownloadError, OSError) as error:
        return _release(svc, claimed, reason=str(error))
    except Exception as error:  # noqa: BLE001 - S3 refusing a part or similar: hand the job back
        return _release(svc, claimed, reason=type(error).__name__)
    svc.metrics.emit(PERSISTED_BYTES, size)
    svc.metrics.emit(PERSIST_SECONDS, svc.clock.now() - started)
    if claimed.is_segment:
        return _segment_saved(svc, claimed)
    return _publish(svc, claimed, size)


def _claim(svc: Services, job: Job) -> Job | None:
    """Take a SUCCEEDED job, or a PERSISTING one whose worker outlived its timeout."""
    now = svc.clock.now()
    if job.state is JobState.SUCCEEDED:
        return svc.store.transition(
            job.job_id,
            [JobState.SUCCEEDED],
            JobState.PERSISTING,
            now=now,
            next_poll_at=now + RESEND_AFTER_SECONDS,
            persist_attempts=job.persist_attempts + 1,
            persist_started_at=now,
        )
    if job.state is JobState.PERSISTING and now - (job.persist_started_at or 0) >= STALE_PERSISTING_SECONDS:
        return svc.store.claim(
            job.job_id,
            JobState.PERSISTING,
            Claim("persist_started_at", job.persist_started_at),
            now=now,
            next_poll_at=now + RESEND_AFTER_SECONDS,
            persist_attempts=job.persist_attempts + 1,
            persist_started_at=now,
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
    tags = output_tags(job.model_copy(update={"state": JobState.PERSISTED}))
    with svc.downloader.open(job.video_url) as (length, chunks):
        size = svc.objects.upload_stream(key, chunks, content_type="video/mp4", tags=tags)
    if length is not None and size != length:
        raise ResultDownloadError(f"result truncated: {size} of {length} bytes")
    return size


def _publish(svc: Services, job: Job, size: int) -> JobState:
    """The manifest, the inputs' tags and the event, then PERSISTED (see `ending` for the order)."""
    output_key = svc.layout.edited_video_key(job.stem)
    manifest_key = svc.layout.edited_manifest_key(job.stem)
    preview_key = svc.layout.preview_key(job.stem)

    def announce(done: Job) -> None:
        now = svc.clock.now()
        cost = svc.settings.estimated_cost(done.usage)
        document = manifest(
            done,
            output_key=output_key,
            output_size=size,
            now=now,
            preview_key=preview_key,
            estimated_cost=cost,
        )
        publish_saved(
            svc,
            done,
            manifest_key=manifest_key,
            document=document,
            output_key=output_key,
            size=size,
            usage=done.usage,
            preview_key=preview_key,
        )

    done = end_job(
        svc,
        job,
        [JobState.PERSISTING],
        JobState.PERSISTED,
        announce=announce,
        output_key=output_key,
        manifest_key=manifest_key,
        video_url=None,  # a bearer link; no reason to keep it once the file is ours
    )
    logger.info("edit persisted", extra={"job_id": job.job_id, "key": output_key, "bytes": size})
    return done.state


def _segment_saved(svc: Services, job: Job) -> JobState:
    """A long clip's segment is saved (no manifest or event: the clip gets those); the last asks to stitch."""
    saved = end_job(
        svc,
        job,
        [JobState.PERSISTING],
        JobState.PERSISTED,
        announce=None,
        output_key=_output_key(svc, job),
        video_url=None,
    )
    parent = svc.store.get(job.parent_id or "")
    if parent is not None and parent.state is JobState.SEGMENTED and all_saved(segment_jobs(svc, parent)):
        svc.long_clips.send(LongClipMessage(action="stitch", job_id=parent.job_id))
    logger.info("segment persisted", extra={"job_id": job.job_id, "parent": job.parent_id})
    return saved.state


def _result_unavailable(svc: Services, job: Job, error: ResultUnavailable) -> JobState:
    """The link refused us: ask the API for a fresh one; if the task is gone too, the edit is lost."""
    try:
        fresh = svc.api.get_task(job.task_id or "")
    except DashScopeError as query_error:
        reason = f"result refused ({error.status}) and task query failed ({query_error.code})"
        return _release(svc, job, reason=reason)
    output = fresh.output
    if output.task_status is TaskStatus.SUCCEEDED and output.video_url and output.video_url != job.video_url:
        return _release(
            svc, job, reason="result link refused; retrying with a fresh link", video_url=output.video_url
        )
    if output.task_status is TaskStatus.SUCCEEDED and not _out_of_patience(job, svc.clock.now()):
        return _release(svc, job, reason=f"result refused ({error.status})")
    message = (
        f"The finished video could not be downloaded (HTTP {error.status}); the service no longer has it."
    )
    return fail(svc, job, [JobState.PERSISTING], Failure("ResultExpired", message, to=JobState.EXPIRED)).state


def _release(svc: Services, job: Job, *, reason: str, video_url: str | None = None) -> JobState:
    """Hand the job back (SUCCEEDED) for the redelivered message, or end it once patience runs out.

    Raises `PersistRetry` when it hands the job back; returns the end state when it gives up.
    """
    logger.warning("persist attempt failed", extra={"job_id": job.job_id, "reason": reason})
    now = svc.clock.now()
    if _out_of_patience(job, now):
        message = f"The edit finished but could not be saved after {job.persist_attempts} attempts: {reason}"
        return fail(svc, job, [JobState.PERSISTING], Failure("PersistFailed", message)).state
    svc.store.transition(
        job.job_id,
        [JobState.PERSISTING],
        JobState.SUCCEEDED,
        now=now,
        next_poll_at=now + backoff(job.persist_attempts, base=5.0, cap=300.0),
        persist_started_at=None,
        video_url=video_url or job.video_url,
    )
    raise PersistRetry(reason)


def _out_of_patience(job: Job, now: float) -> bool:
    finished = job.finished_at if job.finished_at is not None else job.persist_started_at or now
    return job.persist_attempts >= MAX_PERSIST_ATTEMPTS and now - finished >= PERSIST_PATIENCE_SECONDS
