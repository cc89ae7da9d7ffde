"""Stitch: a long clip's edited segments and its audio into edited/<stem>.mp4, with one manifest."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import AudioSetting
from wanedit.domain.usage import Usage
from wanedit.reports import long_clip_manifest
from wanedit.usecases.ending import end_job, output_tags, publish_saved
from wanedit.usecases.longclip.segments import all_saved, segment_jobs
from wanedit.usecases.longclip.work import WorkEnded, claim_work, end_work, transient

if TYPE_CHECKING:
    from wanedit.segments.stitch import StitchPart, StitchResult

logger = Logger(child=True)


def stitch_long_clip(svc: Services, job: Job) -> JobState:
    """Stitch the edited segments into edited/<stem>.mp4, write the manifest, announce it."""
    if job.state not in (JobState.SEGMENTED, JobState.STITCHING):
        return job.state
    children = segment_jobs(svc, job)
    if not all_saved(children):
        return job.state  # not every segment is saved yet (the poller decides what happens next)
    claimed = claim_work(svc, job, JobState.SEGMENTED, JobState.STITCHING)
    if claimed is None:
        return job.state
    done = [child for child in children if child is not None]
    try:
        size, result = _stitch_and_upload(svc, claimed, done)
    except WorkEnded as ended:
        return ended.state
    return _publish(svc, claimed, done, size, result)


def _stitch_and_upload(svc: Services, job: Job, children: list[Job]) -> tuple[int, StitchResult]:
    from wanedit.segments.stitch import stitch  # PyAV: the media layer only

    audio_setting: AudioSetting = job.request.parameters.audio_setting or "auto"
    with tempfile.TemporaryDirectory(prefix="wanedit-stitch-") as tmp:
        parts = _download_parts(svc, job, children, Path(tmp))
        out = Path(tmp) / "stitched.mp4"
        try:
            result = stitch(parts, out, audio_setting=audio_setting)
        except Exception as error:  # noqa: BLE001 - local media work: any error is the segments', for good
            raise WorkEnded(
                end_work(svc, job, "StitchFailed", f"the segments could not be stitched: {error}")
            ) from None
        tags = output_tags(job.model_copy(update={"state": JobState.PERSISTED}))
        output_key = svc.layout.edited_video_key(job.stem)
        info = transient(
            svc,
            job,
            "upload the stitched video",
            svc.objects.upload_file,
            output_key,
            str(out),
            content_type="video/mp4",
            tags=tags,
        )
    return info.size, result


def _download_parts(svc: Services, job: Job, children: list[Job], tmp: Path) -> list[StitchPart]:
    from wanedit.segments.stitch import StitchPart

    parts = []
    for segment, child in zip(job.segments, children, strict=True):
        edited = tmp / f"edited-{segment.index:03d}.mp4"
        original = tmp / f"original-{segment.index:03d}.mp4"
        edited_key = child.output_key or svc.layout.edited_segment_key(job.job_id, segment.index)
        transient(
            svc,
            job,
            "download an edited segment",
            svc.objects.download_version,
            edited_key,
            None,
            str(edited),
        )
        transient(
            svc,
            job,
            "download a segment",
            svc.objects.download_version,
            segment.key,
            segment.version_id,
            str(original),
        )
        parts.append(StitchPart(edited=edited, original=original))
    return parts


def _publish(svc: Services, job: Job, children: list[Job], size: int, result: StitchResult) -> JobState:
    output_key = svc.layout.edited_video_key(job.stem)
    manifest_key = svc.layout.edited_manifest_key(job.stem)
    preview_key = svc.layout.preview_key(job.stem)
    usage = Usage.summed(child.usage for child in children)

    def announce(done: Job) -> None:
        document = long_clip_manifest(
            done,
            children,
            output_key=output_key,
            output_size=size,
            now=svc.clock.now(),
            stitched=_stitched(result),
            preview_key=preview_key,
            estimated_cost=_summed_cost([svc.settings.estimated_cost(child.usage) for child in children]),
        )
        publish_saved(
            svc,
            done,
            manifest_key=manifest_key,
            document=document,
            output_key=output_key,
            size=size,
            usage=usage,
            segments=len(children),
            preview_key=preview_key,
        )

    done = end_job(
        svc,
        job,
        [JobState.STITCHING],
        JobState.PERSISTED,
        announce=announce,
        output_key=output_key,
        manifest_key=manifest_key,
        usage=usage,
        finished_at=svc.clock.now(),
        work_started_at=None,
    )
    _delete_working_files(svc, job)
    logger.info(
        "long clip persisted",
        extra={"job_id": job.job_id, "key": output_key, "bytes": size, "segments": len(children)},
    )
    return done.state


def _stitched(result: StitchResult) -> dict[str, Any]:
    """What the manifest says of the stitch."""
    return {
        "frames": result.frames,
        "duration": round(result.duration, 6),
        "width": result.width,
        "height": result.height,
        "video": "copied" if result.video_copied else "re-encoded",
        "audio": result.audio,
        "audio_from": list(result.audio_from),
        "segment_frames": list(result.segment_frames),
    }


def _summed_cost(costs: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    if not costs or any(cost is None for cost in costs):
        return None
    first = costs[0] or {}
    return {
        **first,
        "amount": round(sum(float((c or {})["amount"]) for c in costs), 6),
        "billed_seconds": round(sum(float((c or {})["billed_seconds"]) for c in costs), 6),
    }


def _delete_working_files(svc: Services, job: Job) -> None:
    try:
        svc.objects.delete_prefix(svc.layout.work_folder(job.job_id))
    except Exception as error:  # noqa: BLE001 - the lifecycle rule expires what is left
        logger.warning(
            "working files not deleted", extra={"job_id": job.job_id, "error": type(error).__name__}
        )
