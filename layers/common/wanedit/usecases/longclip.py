"""Long clips: a clip over the API's 10 s, split into 2-10 s segments, one task each, stitched back.

Opt-in per sidecar or folder (``"long_clip": "split"``). The parent job never holds a task slot;
each segment is an ordinary job (``parent_id`` set) queueing for a slot with every other job, so
long clips share the account's cap with everything else.

  intake    the parent is SPLITTING; a "split" message goes to the LongClipFunction      (`begin`)
  split     the clip into work/<job>/segments/NNN.mp4; the parent SEGMENTED with its segments
            listed, then one QUEUED job per segment, submitted as slots allow   (`split_long_clip`)
  complete  each edited segment into work/<job>/edited/NNN.mp4; the last one asks for "stitch"
  stitch    the edited segments and the clip's audio into edited/<stem>.mp4 with one manifest
            listing every segment, its task and usage; PERSISTED                (`stitch_long_clip`)
  poller    the backstop of every step (`check_segments`, `resend`): a lost message is sent again,
            a missing segment job is made again, a segment that failed for good ends the parent.

Crash safety: keys and segment job ids follow from the parent and the segment's place, so any step
can run again. Split and stitch workers claim the parent with a conditional write
(``work_started_at``); a claim older than the function's timeout may be taken over.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.jobs import Job, JobState, Segment, SourceObject, segment_job_id
from wanedit.media import VideoInfo
from wanedit.media.reader import ProbeError
from wanedit.reports import DETAIL_SUCCEEDED, event_detail, long_clip_manifest
from wanedit.sidecar import MAX_SEED, Sidecar
from wanedit.usecases.complete import all_saved, segment_jobs, tag_sources
from wanedit.usecases.submission import backoff, fail, try_submit
from wanedit.validation import MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS, MIN_VIDEO_SECONDS

if TYPE_CHECKING:
    from wanedit.segments.stitch import StitchResult

logger = Logger(child=True)

SPLIT, STITCH = "split", "stitch"
WORKER_TIMEOUT_SECONDS = 15 * 60.0  # the LongClipFunction's timeout: an older claim is abandoned
RESEND_AFTER_SECONDS = 20 * 60.0  # a split/stitch not done by then lost its message or its worker
SEGMENTS_RECHECK_SECONDS = 300.0  # how often the poller looks at a parent waiting for its segments
MAX_TASK_RETRIES = 2  # a segment whose task FAILED is submitted this many more times
MAX_WORK_ATTEMPTS = 5  # split or stitch attempts that failed for a transient reason
DURATION_SLACK = 0.05  # container rounding on a segment's 2-10 s


class LongClipRetry(Exception):
    """A split or stitch failed for a transient reason; the message is redelivered and tried again."""


def needs_split(sidecar: Sidecar | None, video: VideoInfo | ProbeError) -> bool:
    """A clip the user asked to split that is too long for one task (a 9 s clip is never split)."""
    return (
        sidecar is not None
        and sidecar.splits_long_clips
        and isinstance(video, VideoInfo)
        and video.duration_s > MAX_VIDEO_SECONDS
    )


def with_fixed_seed(request: dict[str, Any], job_id: str) -> dict[str, Any]:
    """The parent's request with one seed for every segment (the user's, else one fixed by the job).

    Segments edited with different seeds could differ in look from one to the next.
    """
    parameters = dict(request.get("parameters", {}))
    if "seed" in parameters:
        return request
    parameters["seed"] = int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % (MAX_SEED + 1)
    origins = {**request.get("origins", {}), "seed": "wanedit: one fixed seed for every segment"}
    return {**request, "parameters": parameters, "origins": origins}


def begin(svc: Services, job: Job) -> None:
    """Hand a new SPLITTING parent to the split worker (the poller resends if this is lost)."""
    svc.long_clips.split(job.job_id)
    logger.info("long clip to split", extra={"job_id": job.job_id, "video": job.video.key})


def run_action(svc: Services, action: str, job_id: str) -> str | None:
    """The LongClipFunction's work for one message; returns the parent's state (None: no such job)."""
    job = svc.store.get(job_id)
    if job is None:
        logger.warning("long-clip message for an unknown job", extra={"job_id": job_id})
        return None
    if action == SPLIT:
        return split_long_clip(svc, job).value
    if action == STITCH:
        return stitch_long_clip(svc, job).value
    raise ValueError(f"unknown long-clip action {action!r}")


# --------------------------------------------------------------------------- split


def split_long_clip(svc: Services, job: Job) -> JobState:
    """Split the clip into segments in the working prefix, then make (and submit) one job per segment."""
    if job.state is not JobState.SPLITTING:
        return job.state  # split already (a repeated message)
    claimed = _claim(svc, job, JobState.SPLITTING, JobState.SPLITTING)
    if claimed is None:
        return job.state
    # PyAV lives in the media layer, which only the LongClipFunction has.
    from wanedit.segments.split import split_clip

    layout = svc.layout
    segments: list[Segment] = []
    with tempfile.TemporaryDirectory(prefix="wanedit-split-") as tmp:
        source = Path(tmp) / ("source" + Path(claimed.video.key).suffix.lower())
        _transient(
            svc,
            claimed,
            "download the clip",
            svc.objects.download_version,
            claimed.video.key,
            claimed.video.version_id,
            str(source),
        )
        try:
            pieces = split_clip(source, Path(tmp) / "segments")
        except Exception as error:  # noqa: BLE001 - local media work: any error is the clip's, for good
            return _fail(
                svc, claimed, JobState.SPLITTING, "SplitFailed", f"the clip could not be split: {error}"
            )
        source.unlink()
        for piece in pieces:
            problem = _segment_problem(piece.duration, piece.size)
            if problem:
                return _fail(
                    svc,
                    claimed,
                    JobState.SPLITTING,
                    "SegmentRejected",
                    f"segment {piece.index} ({piece.start:.2f} s + {piece.duration:.2f} s): {problem}",
                    segment=piece.index,
                )
            key = layout.segment_key(claimed.job_id, piece.index)
            info = _transient(
                svc,
                claimed,
                "upload a segment",
                svc.objects.upload_file,
                key,
                str(piece.path),
                content_type="video/mp4",
            )
            piece.path.unlink()
            segments.append(
                Segment(
                    index=piece.index,
                    job_id=segment_job_id(claimed.job_id, piece.index),
                    key=key,
                    version_id=info.version_id,
                    etag=info.etag,
                    start=piece.start,
                    duration=piece.duration,
                    frames=piece.frames,
                    copied=piece.copied,
                    size=info.size,
                )
            )
    now = svc.clock.now()
    parent = svc.store.transition(
        claimed.job_id,
        [JobState.SPLITTING],
        JobState.SEGMENTED,
        now=now,
        next_poll_at=now + SEGMENTS_RECHECK_SECONDS,
        segments=[segment.model_dump() for segment in segments],
        work_started_at=None,
        work_attempts=0,
    )
    if parent is None:
        return (svc.store.get(claimed.job_id) or claimed).state
    logger.info(
        "long clip split",
        extra={
            "job_id": parent.job_id,
            "segments": len(segments),
            "copied": sum(s.copied for s in segments),
        },
    )
    _ensure_segment_jobs(svc, parent)
    return JobState.SEGMENTED


def _segment_problem(duration: float, size: int) -> str | None:
    """Why the API would refuse this segment (None: it will take it)."""
    if not MIN_VIDEO_SECONDS - DURATION_SLACK <= duration <= MAX_VIDEO_SECONDS + DURATION_SLACK:
        return f"{duration:.2f} s long; the API takes 2-10 s"
    if size > MAX_VIDEO_BYTES:
        return (
            f"{size:,} bytes; the API takes at most {MAX_VIDEO_BYTES:,} — re-encode the clip at a lower "
            "bitrate"
        )
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


def _ensure_segment_jobs(svc: Services, parent: Job) -> None:
    """Make every missing segment job and try to submit it (the queue takes what finds no slot)."""
    now = svc.clock.now()
    for segment in parent.segments:
        child = segment_job(parent, segment, now)
        if svc.store.put_new(child):
            try_submit(svc, child)


# --------------------------------------------------------------------------- waiting for segments


def check_segments(svc: Services, parent: Job) -> None:
    """The poller's look at a SEGMENTED parent: stitch when all are saved, end it when one failed."""
    now = svc.clock.now()
    children = segment_jobs(svc, parent)
    if any(child is None for child in children):
        _ensure_segment_jobs(svc, parent)  # a split worker died between the parent and its segments
        _recheck(svc, parent, now + SEGMENTS_RECHECK_SECONDS)
        return
    ended = [
        c for c in children if c is not None and c.state.is_terminal and c.state is not JobState.PERSISTED
    ]
    if ended:
        _segment_failed(svc, parent, ended[0], [c for c in children if c is not None])
        return
    if all_saved(children):
        svc.long_clips.stitch(parent.job_id)
        _recheck(svc, parent, now + RESEND_AFTER_SECONDS)
        return
    _recheck(svc, parent, now + SEGMENTS_RECHECK_SECONDS)


def _segment_failed(svc: Services, parent: Job, failed: Job, children: list[Job]) -> None:
    """A segment failed for good: withdraw the queued ones and end the clip with a report naming it."""
    now = svc.clock.now()
    for child in children:
        if child.state is JobState.QUEUED:
            svc.store.transition(
                child.job_id,
                [JobState.QUEUED],
                JobState.CANCELED,
                now=now,
                error_code="SegmentWithdrawn",
                error_message=f"segment {failed.segment_index} of the clip failed",
                finished_at=now,
            )
    segment = next(s for s in parent.segments if s.job_id == failed.job_id)
    retries = f" after {failed.task_retries + 1} tasks" if failed.task_retries else ""
    message = (
        f"segment {segment.index} ({segment.start:.2f}-{segment.start + segment.duration:.2f} s of the clip) "
        f"ended {failed.state.value}{retries}: {failed.error_code}: {failed.error_message}. "
        "Nothing was published for this clip."
    )
    fail(
        svc,
        parent,
        [JobState.SEGMENTED],
        failed.error_code,
        message,
        to=JobState.CANCELED if failed.state is JobState.CANCELED else JobState.FAILED,
        segment=segment.index,
    )


def resend(svc: Services, parent: Job) -> None:
    """The poller's backstop for a SPLITTING or STITCHING parent whose worker may never have run."""
    now = svc.clock.now()
    if parent.state is JobState.SPLITTING:
        svc.long_clips.split(parent.job_id)
    else:
        svc.long_clips.stitch(parent.job_id)
    _recheck(svc, parent, now + RESEND_AFTER_SECONDS)


def _recheck(svc: Services, parent: Job, at: float) -> None:
    svc.store.transition(parent.job_id, [parent.state], parent.state, now=svc.clock.now(), next_poll_at=at)


# --------------------------------------------------------------------------- stitch


def stitch_long_clip(svc: Services, job: Job) -> JobState:
    """Stitch the edited segments into edited/<stem>.mp4, write the manifest, announce it."""
    if job.state not in (JobState.SEGMENTED, JobState.STITCHING):
        return job.state
    children = segment_jobs(svc, job)
    if not all_saved(children):
        return job.state  # not every segment is saved yet (the poller decides what happens next)
    claimed = _claim(svc, job, JobState.SEGMENTED, JobState.STITCHING)
    if claimed is None:
        return job.state
    from wanedit.segments.stitch import StitchPart, stitch  # PyAV: the media layer only

    done = [child for child in children if child is not None]
    layout = svc.layout
    output_key = layout.edited_video_key(claimed.stem)
    tags = {"wanedit-job": claimed.job_id, "wanedit-state": JobState.PERSISTED.value}
    audio_setting = claimed.request.get("parameters", {}).get("audio_setting", "auto")
    with tempfile.TemporaryDirectory(prefix="wanedit-stitch-") as tmp:
        parts = []
        for segment, child in zip(claimed.segments, done, strict=True):
            edited = Path(tmp) / f"edited-{segment.index:03d}.mp4"
            original = Path(tmp) / f"original-{segment.index:03d}.mp4"
            _transient(
                svc,
                claimed,
                "download an edited segment",
                svc.objects.download_version,
                child.output_key or layout.edited_segment_key(claimed.job_id, segment.index),
                None,
                str(edited),
            )
            _transient(
                svc,
                claimed,
                "download a segment",
                svc.objects.download_version,
                segment.key,
                segment.version_id,
                str(original),
            )
            parts.append(StitchPart(edited=edited, original=original))
        out = Path(tmp) / "stitched.mp4"
        try:
            result = stitch(parts, out, audio_setting="origin" if audio_setting == "origin" else "auto")
        except Exception as error:  # noqa: BLE001 - local media work: any error is the segments', for good
            return _fail(
                svc,
                claimed,
                JobState.STITCHING,
                "StitchFailed",
                f"the segments could not be stitched: {error}",
            )
        info = _transient(
            svc,
            claimed,
            "upload the stitched video",
            svc.objects.upload_file,
            output_key,
            str(out),
            content_type="video/mp4",
            tags=tags,
        )
    return _finish(svc, claimed, done, info.size, result)


def _finish(svc: Services, job: Job, children: list[Job], size: int, result: StitchResult) -> JobState:
    now = svc.clock.now()
    layout = svc.layout
    output_key = layout.edited_video_key(job.stem)
    manifest_key = layout.edited_manifest_key(job.stem)
    tags = {"wanedit-job": job.job_id, "wanedit-state": JobState.PERSISTED.value}
    usage = summed_usage([child.usage for child in children])
    done = job.model_copy(
        update={
            "state": JobState.PERSISTED,
            "output_key": output_key,
            "manifest_key": manifest_key,
            "usage": usage,
            "finished_at": now,
        }
    )
    stitched = {
        "frames": result.frames,
        "duration": round(result.duration, 6),
        "width": result.width,
        "height": result.height,
        "video": "copied" if result.video_copied else "re-encoded",
        "audio": result.audio,
        "audio_from": list(result.audio_from),
        "segment_frames": list(result.segment_frames),
    }
    costs = [svc.settings.estimated_cost(child.usage) for child in children]
    svc.objects.put_json(
        manifest_key,
        long_clip_manifest(
            done,
            children,
            output_key=output_key,
            output_size=size,
            now=now,
            stitched=stitched,
            estimated_cost=_summed_cost(costs),
        ),
        tags=tags,
    )
    tag_sources(svc, job, tags)
    svc.notifier.publish(
        DETAIL_SUCCEEDED,
        event_detail(
            done,
            output_key=output_key,
            manifest_key=manifest_key,
            size=size,
            usage=usage,
            segments=len(children),
        ),
    )
    svc.store.transition(
        job.job_id,
        [JobState.STITCHING],
        JobState.PERSISTED,
        now=now,
        output_key=output_key,
        manifest_key=manifest_key,
        usage=usage,
        finished_at=now,
        work_started_at=None,
    )
    try:
        svc.objects.delete_prefix(layout.work_folder(job.job_id))
    except Exception as error:  # noqa: BLE001 - the lifecycle rule expires what is left
        logger.warning(
            "working files not deleted", extra={"job_id": job.job_id, "error": type(error).__name__}
        )
    logger.info(
        "long clip persisted",
        extra={"job_id": job.job_id, "key": output_key, "bytes": size, "segments": len(children)},
    )
    return JobState.PERSISTED


def summed_usage(usages: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """A long clip's usage: seconds added over its segments (SR and the rest from the first)."""
    present = [u for u in usages if u]
    if not present:
        return None
    total = dict(present[0])
    for name in ("duration", "input_video_duration", "output_video_duration"):
        values = [float(u[name]) for u in present if u.get(name) is not None]
        if values:
            total[name] = round(sum(values), 6)
    if all(u.get("video_count") is not None for u in present):
        total["video_count"] = sum(int(u["video_count"]) for u in present)
    return total


def _summed_cost(costs: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    if not costs or any(cost is None for cost in costs):
        return None
    first = costs[0] or {}
    return {
        **first,
        "amount": round(sum(float((c or {})["amount"]) for c in costs), 6),
        "billed_seconds": round(sum(float((c or {})["billed_seconds"]) for c in costs), 6),
    }


# --------------------------------------------------------------------------- claims and failures


def _claim(svc: Services, job: Job, waiting: JobState, working: JobState) -> Job | None:
    """Take the parent for a split or stitch; None when another worker holds a fresh claim."""
    now = svc.clock.now()
    started = job.work_started_at
    if job.state is working and started is not None and now - started < WORKER_TIMEOUT_SECONDS:
        return None
    if job.state is working and started is not None:
        condition = ("work_started_at = :old", {":old": started})
    elif job.state is working:
        condition = ("attribute_not_exists(work_started_at)", {})
    elif job.state is waiting:
        condition = None
    else:
        return None
    return svc.store.transition(
        job.job_id,
        [job.state],
        working,
        now=now,
        next_poll_at=now + RESEND_AFTER_SECONDS,
        condition_extra=condition,
        work_started_at=now,
        work_attempts=job.work_attempts + 1,
    )


def _transient(svc: Services, job: Job, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an S3 step; on failure hand the parent back for a retry (bounded), then re-raise."""
    try:
        return call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - whatever S3 raised, the step is retried (bounded)
        reason = f"could not {what}: {type(error).__name__}"
        if job.work_attempts >= MAX_WORK_ATTEMPTS:
            _fail(svc, job, job.state, "LongClipWorkFailed", f"{reason}, {job.work_attempts} times")
            raise LongClipRetry(reason) from None
        now = svc.clock.now()
        back = JobState.SEGMENTED if job.state is JobState.STITCHING else job.state
        svc.store.transition(
            job.job_id,
            [job.state],
            back,
            now=now,
            next_poll_at=now + backoff(job.work_attempts, base=5.0, cap=300.0),
            work_started_at=None,
        )
        logger.warning("long-clip step failed; will retry", extra={"job_id": job.job_id, "reason": reason})
        raise LongClipRetry(reason) from None


def _fail(
    svc: Services, job: Job, state: JobState, code: str, message: str, *, segment: int | None = None
) -> JobState:
    return fail(svc, job, [state], code, message, segment=segment).state
