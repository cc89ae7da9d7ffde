"""A long clip's parent and its segment jobs: making them, and the poller's look at a waiting parent."""

from __future__ import annotations

import hashlib

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.job import Job, Segment, SourceObject
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import MAX_SEED, MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS, MIN_VIDEO_SECONDS
from wanedit.domain.request import EditRequest, FieldOrigin
from wanedit.domain.timing import RESEND_AFTER_SECONDS, SEGMENTS_RECHECK_SECONDS
from wanedit.media import VideoInfo
from wanedit.media.reader import ProbeError
from wanedit.messages import LongClipMessage
from wanedit.sidecar import Sidecar
from wanedit.usecases.ending import Failure, fail
from wanedit.usecases.submission import try_submit

logger = Logger(child=True)

MAX_TASK_RETRIES = 2  # a segment whose task FAILED is submitted this many more times
DURATION_SLACK = 0.05  # container rounding on a segment's 2-10 s


def needs_split(sidecar: Sidecar | None, video: VideoInfo | ProbeError) -> bool:
    """A clip the user asked to split that is too long for one task (a 9 s clip is never split)."""
    return (
        sidecar is not None
        and sidecar.splits_long_clips
        and isinstance(video, VideoInfo)
        and video.duration_s > MAX_VIDEO_SECONDS
    )


def with_fixed_seed(request: EditRequest, job_id: str) -> EditRequest:
    """The parent's request with one seed for every segment (the user's, else one fixed by the job).

    Segments edited with different seeds could differ in look from one to the next.
    """
    if request.parameters.seed is not None:
        return request
    seed = int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % (MAX_SEED + 1)
    return request.model_copy(
        update={
            "parameters": request.parameters.model_copy(update={"seed": seed}),
            "origins": {**request.origins, "seed": FieldOrigin(note="one fixed seed for every segment")},
        }
    )


def begin(svc: Services, job: Job) -> None:
    """Hand a new SPLITTING parent to the split worker (the poller resends if this is lost)."""
    svc.long_clips.send(LongClipMessage(action="split", job_id=job.job_id))
    logger.info("long clip to split", extra={"job_id": job.job_id, "video": job.video.key})


def segment_problem(duration: float, size: int) -> str | None:
    """Why the API would refuse this segment (None: it will take it)."""
    if not MIN_VIDEO_SECONDS - DURATION_SLACK <= duration <= MAX_VIDEO_SECONDS + DURATION_SLACK:
        return f"{duration:.2f} s long; the API takes 2-10 s"
    if size > MAX_VIDEO_BYTES:
        most = f"{MAX_VIDEO_BYTES:,}"
        return f"{size:,} bytes; the API takes at most {most} — re-encode the clip at a lower bitrate"
    return None


def segment_job(parent: Job, segment: Segment, now: float) -> Job:
    """The job editing one segment: the parent's prompt, images and parameters (seed included)."""
    return Job(
        job_id=segment.job_id,
        state=JobState.QUEUED,
        bucket=parent.bucket,
        stem=f"{parent.stem}.segment-{segment.index:03d}",
        edit=parent.edit,
        video=SourceObject(
            key=segment.key, version_id=segment.version_id, etag=segment.etag, size=segment.size
        ),
        sidecar=parent.sidecar,
        prompt=parent.prompt,
        request=parent.request,
        created_at=now,
        updated_at=now,
        next_poll_at=now,
        parent_id=parent.job_id,
        segment_index=segment.index,
    )


def ensure_segment_jobs(svc: Services, parent: Job) -> None:
    """Make every missing segment job and try to submit it (the queue takes what finds no slot)."""
    now = svc.clock.now()
    for segment in parent.segments:
        child = segment_job(parent, segment, now)
        if svc.store.put_new(child):
            try_submit(svc, child)


def segment_jobs(svc: Services, parent: Job) -> list[Job | None]:
    """A long clip's segment jobs, in order (None where one is missing)."""
    return [svc.store.get(segment.job_id) for segment in parent.segments]


def all_saved(segments: list[Job | None]) -> bool:
    return all(segment is not None and segment.state is JobState.PERSISTED for segment in segments)


def check_segments(svc: Services, parent: Job) -> None:
    """The poller's look at a SEGMENTED parent: stitch when all are saved, end it when one failed."""
    now = svc.clock.now()
    children = segment_jobs(svc, parent)
    if any(child is None for child in children):
        ensure_segment_jobs(svc, parent)  # a split worker died between the parent and its segments
        _recheck(svc, parent, now + SEGMENTS_RECHECK_SECONDS)
        return
    present = [child for child in children if child is not None]
    ended = [c for c in present if c.state.is_terminal and c.state is not JobState.PERSISTED]
    if ended:
        _segment_failed(svc, parent, ended[0], present)
    elif all_saved(children):
        svc.long_clips.send(LongClipMessage(action="stitch", job_id=parent.job_id))
        _recheck(svc, parent, now + RESEND_AFTER_SECONDS)
    else:
        _recheck(svc, parent, now + SEGMENTS_RECHECK_SECONDS)


def _segment_failed(svc: Services, parent: Job, failed: Job, children: list[Job]) -> None:
    """A segment failed for good: withdraw the queued ones and end the clip with a report naming it."""
    for child in children:
        if child.state is JobState.QUEUED:
            withdrawn = Failure(
                "SegmentWithdrawn", f"segment {failed.segment_index} of the clip failed", to=JobState.CANCELED
            )
            fail(svc, child, [JobState.QUEUED], withdrawn)
    segment = next(s for s in parent.segments if s.job_id == failed.job_id)
    retries = f" after {failed.task_retries + 1} tasks" if failed.task_retries else ""
    message = (
        f"segment {segment.index} ({segment.start:.2f}-{segment.start + segment.duration:.2f} s of the clip) "
        f"ended {failed.state.value}{retries}: {failed.error_code}: {failed.error_message}. "
        "Nothing was published for this clip."
    )
    to = JobState.CANCELED if failed.state is JobState.CANCELED else JobState.FAILED
    fail(svc, parent, [JobState.SEGMENTED], Failure(failed.error_code, message, to=to, segment=segment.index))


def resend(svc: Services, parent: Job) -> None:
    """The poller's backstop for a SPLITTING or STITCHING parent whose worker may never have run."""
    action = "split" if parent.state is JobState.SPLITTING else "stitch"
    svc.long_clips.send(LongClipMessage(action=action, job_id=parent.job_id))
    _recheck(svc, parent, svc.clock.now() + RESEND_AFTER_SECONDS)


def _recheck(svc: Services, parent: Job, at: float) -> None:
    svc.store.reschedule(parent.job_id, parent.state, now=svc.clock.now(), next_poll_at=at)
