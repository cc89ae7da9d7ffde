"""Split: a long clip into 2-10 s segments in the working prefix, then one job per segment."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.job import Job, Segment, segment_job_id
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import SEGMENTS_RECHECK_SECONDS
from wanedit.usecases.budget import admit, hold, needs_admission
from wanedit.usecases.longclip.segments import ensure_segment_jobs, segment_problem
from wanedit.usecases.longclip.work import WorkEnded, claim_work, end_work, transient

if TYPE_CHECKING:
    from wanedit.segments.split import SegmentFile

logger = Logger(child=True)


def split_long_clip(svc: Services, job: Job) -> JobState:
    """Split the clip into segments in the working prefix, then make (and submit) one job per segment."""
    if job.state is not JobState.SPLITTING:
        return job.state  # split already (a repeated message)
    if needs_admission(job):  # intake admits it; this covers a crash in between
        admitted = admit(svc, job)
        if admitted is None:
            return hold(svc, job).state
        job = admitted
    claimed = claim_work(svc, job, JobState.SPLITTING, JobState.SPLITTING)
    if claimed is None:
        return job.state
    try:
        segments = _split_and_upload(svc, claimed)
    except WorkEnded as ended:
        return ended.state
    now = svc.clock.now()
    parent = svc.store.transition(
        claimed.job_id,
        [JobState.SPLITTING],
        JobState.SEGMENTED,
        now=now,
        next_poll_at=now + SEGMENTS_RECHECK_SECONDS,
        segments=segments,
        work_started_at=None,
        work_attempts=0,
    )
    if parent is None:
        return (svc.store.get(claimed.job_id) or claimed).state
    logger.info(
        "long clip split",
        extra={"job_id": parent.job_id, "segments": len(segments), "copied": sum(s.copied for s in segments)},
    )
    ensure_segment_jobs(svc, parent)
    return JobState.SEGMENTED


def _split_and_upload(svc: Services, job: Job) -> list[Segment]:
    # PyAV lives in the media layer, which only the LongClipFunction has.
    from wanedit.segments.split import split_clip

    with tempfile.TemporaryDirectory(prefix="wanedit-split-") as tmp:
        source = Path(tmp) / ("source" + Path(job.video.key).suffix.lower())
        transient(
            svc,
            job,
            "download the clip",
            svc.objects.download_version,
            job.video.key,
            job.video.version_id,
            str(source),
        )
        try:
            pieces = split_clip(source, Path(tmp) / "segments")
        except Exception as error:  # noqa: BLE001 - local media work: any error is the clip's, for good
            raise WorkEnded(
                end_work(svc, job, "SplitFailed", f"the clip could not be split: {error}")
            ) from None
        source.unlink()
        return [_upload_segment(svc, job, piece) for piece in pieces]


def _upload_segment(svc: Services, job: Job, piece: SegmentFile) -> Segment:
    problem = segment_problem(piece.duration, piece.size)
    if problem:
        where = f"segment {piece.index} ({piece.start:.2f} s + {piece.duration:.2f} s): {problem}"
        raise WorkEnded(end_work(svc, job, "SegmentRejected", where, segment=piece.index))
    key = svc.layout.segment_key(job.job_id, piece.index)
    info = transient(
        svc, job, "upload a segment", svc.objects.upload_file, key, str(piece.path), content_type="video/mp4"
    )
    piece.path.unlink()
    return Segment(
        index=piece.index,
        job_id=segment_job_id(job.job_id, piece.index),
        key=key,
        version_id=info.version_id,
        etag=info.etag,
        start=piece.start,
        duration=piece.duration,
        frames=piece.frames,
        copied=piece.copied,
        size=info.size,
    )
