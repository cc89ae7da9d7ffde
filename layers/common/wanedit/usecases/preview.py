"""A before/after contact sheet of every saved edit: edited/<path>/<stem>.preview.jpg.

Made by the LongClipFunction (it has PyAV) from a "preview" message the completion sends once the
edit is saved. Both videos are read through ranged GETs (`RangeFile`), so only the GOPs of the
sheet's frames are fetched, never a 100 MB result whole. A preview never fails its edit: a video
that cannot be drawn is counted (PreviewsFailed) and left; an S3 hiccup is retried by the queue a
few times (`MAX_PREVIEW_ATTEMPTS`), then counted and left too.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.media.reader import RangeFile
from wanedit.metrics import PREVIEWS_FAILED, PREVIEWS_MADE
from wanedit.usecases.ending import output_tags

logger = Logger(child=True)

MAX_PREVIEW_ATTEMPTS = 3


class PreviewRetry(Exception):
    """Reading or writing the bucket failed: the message is delivered again (within bounds)."""


SAVING = frozenset({JobState.PERSISTING, JobState.STITCHING})
"""The message is sent as the edit is announced, before the job's move to PERSISTED (`ending`):
it may be read while the job is still here, its edit already written."""


def make_preview_of(svc: Services, job: Job, *, attempt: int) -> str | None:
    """Draw and store the job's preview; returns its key (None: none to make, or given up)."""
    if job.is_segment or (job.state is not JobState.PERSISTED and job.state not in SAVING):
        return None
    from wanedit.segments.preview import PreviewError, make_preview  # PyAV: the media layer only

    source = svc.objects.head(job.video.key, job.video.version_id)
    edited = svc.objects.head(job.output_key or svc.layout.edited_video_key(job.stem))
    if edited is None and job.state in SAVING and attempt < MAX_PREVIEW_ATTEMPTS:
        raise PreviewRetry("the edit is not saved yet")
    if source is None or edited is None:
        _give_up(svc, job, "the clip or its edit is gone")
        return None
    saved = job.model_copy(update={"state": JobState.PERSISTED})
    try:
        with (
            RangeFile(svc.objects.range_reader(source)) as before,
            RangeFile(svc.objects.range_reader(edited)) as after,
        ):
            sheet = make_preview(before, after)
        key = svc.layout.preview_key(job.stem)
        svc.objects.put_bytes(key, sheet.jpeg, content_type="image/jpeg", tags=output_tags(saved))
    except PreviewError as error:
        _give_up(svc, job, error.reason)
        return None
    except Exception as error:
        if attempt >= MAX_PREVIEW_ATTEMPTS:
            _give_up(svc, job, f"{type(error).__name__} after {attempt} attempts")
            return None
        raise PreviewRetry(type(error).__name__) from error
    svc.metrics.emit(PREVIEWS_MADE)
    logger.info("preview made", extra={"job_id": job.job_id, "key": key, "bytes": len(sheet.jpeg)})
    return key


def _give_up(svc: Services, job: Job, why: str) -> None:
    svc.metrics.emit(PREVIEWS_FAILED)
    logger.warning("no preview for this edit", extra={"job_id": job.job_id, "reason": why})
    return None
