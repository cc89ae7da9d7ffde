"""What users read: failure reports in failed/, manifests in edited/, and the events announcing both.

Nothing here may carry a secret: no API key, no presigned or result URL (bearer credentials).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.limits import MODEL
from wanedit.events import (
    DETAIL_FAILED,
    DETAIL_HELD,
    DETAIL_PAUSED,
    DETAIL_REJECTED,
    DETAIL_SUCCEEDED,
    outcome,
)
from wanedit.problems import Problem

__all__ = [
    "DETAIL_FAILED",
    "DETAIL_HELD",
    "DETAIL_PAUSED",
    "DETAIL_REJECTED",
    "DETAIL_SUCCEEDED",
    "event_detail",
    "failure_report",
    "long_clip_manifest",
    "manifest",
    "rejection_report",
]

RETRY_ADVICE = "Fix the files and upload them again; a re-upload starts a new job."

# What a user can do about each API error code (the reference's codes; prefix match).
_API_ERROR_FIXES: tuple[tuple[str, str], ...] = (
    (
        "InvalidParameter",
        "The service refused the input: check the message, fix the clip or sidecar, upload again.",
    ),
    (
        "DataInspectionFailed",
        "The content was flagged by the service's inspection: change the prompt or media.",
    ),
    ("InvalidApiKey", "The API key in Secrets Manager is wrong or for another region: put the right key."),
    ("AccessDenied", "The key's account may not use this model or region: check Model Studio permissions."),
    ("Arrearage", "The Model Studio account is in arrears: top it up, then upload the sidecar again."),
    ("ModelNotFound", "The model is not available in this region: check DASHSCOPE_REGION."),
)


def iso(epoch: float | None) -> str | None:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds") if epoch is not None else None
    )


def fix_for_api_error(code: str | None) -> str:
    for prefix, fix in _API_ERROR_FIXES:
        if code and code.startswith(prefix):
            return fix
    return "Upload the sidecar again to retry; if it keeps failing, see the message and the request ids."


def _sources(job: Job) -> dict[str, Any]:
    return {
        "bucket": job.bucket,
        "video": job.video.model_dump(exclude_none=True),
        "sidecar": job.sidecar.model_dump(exclude_none=True),
    }


def rejection_report(job: Job, problems: list[Problem], now: float) -> dict[str, Any]:
    """failed/<stem>.json for input that never reached the API: every problem, each with its fix."""
    fields = ", ".join(dict.fromkeys(p.field for p in problems))
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return {
        "status": JobState.REJECTED.value,
        "video_key": job.video.key,
        "sidecar_key": job.sidecar.key,
        "summary": f"Not sent to the API: {count} found ({fields}).",
        "problems": [p.to_json() for p in problems],
        "how_to_retry": RETRY_ADVICE,
        "job_id": job.job_id,
        "source": _sources(job),
        "reported_at": iso(now),
    }


def failure_report(job: Job, now: float, *, segment: int | None = None) -> dict[str, Any]:
    """failed/<stem>.json for a job the API (or persisting) failed, canceled or let expire.

    For a long clip, `segment` is the one that failed; every segment's place and job are listed.
    """
    report: dict[str, Any] = {
        "status": job.state.value,
        "job_id": job.job_id,
        "task_id": job.task_id,
        "request_ids": job.request_ids,
        "error": {"code": job.error_code, "message": job.error_message},
        "fix": fix_for_api_error(job.error_code)
        if job.state is JobState.FAILED
        else _STATE_FIXES.get(job.state, ""),
        "prompt": job.prompt,
        "parameters": job.request.parameters.as_dict(),
        "source": _sources(job),
        "timings": timings(job),
        "reported_at": iso(now),
    }
    if job.segments:
        report["failed_segment"] = segment
        report["segments"] = [
            {"index": s.index, "start": s.start, "duration": s.duration, "job_id": s.job_id}
            for s in job.segments
        ]
    return report


_STATE_FIXES = {
    JobState.CANCELED: "The task was canceled. Upload the sidecar again to start a new job.",
    JobState.EXPIRED: "The task or its result outlived the API's 24 h. Upload the sidecar again to retry.",
}


def timings(job: Job) -> dict[str, Any]:
    return {
        "created_at": iso(job.created_at),
        "submitted_at": iso(job.submitted_at),
        "finished_at": iso(job.finished_at),
        "api": job.task_times,
        "submit_attempts": job.submit_attempts,
        "throttled": job.throttled,
    }


def manifest(
    job: Job,
    *,
    output_key: str,
    output_size: int,
    now: float,
    preview_key: str,
    estimated_cost: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """edited/<stem>.json: everything needed to trace, bill and reproduce the edit."""
    return {
        "status": JobState.PERSISTED.value,
        "job_id": job.job_id,
        "task_id": job.task_id,
        "request_ids": job.request_ids,
        "model": MODEL,
        "prompt": job.prompt,
        "orig_prompt": job.orig_prompt,
        "negative_prompt": job.request.negative_prompt,
        "reference_images": job.request.public_images,
        "parameters": job.request.parameters.as_dict(),
        "edit": job.edit,
        "origins": job.request.public_origins(),
        "usage": _usage(job),
        "estimated_cost": estimated_cost,
        "output": {"bucket": job.bucket, "key": output_key, "size": output_size},
        "preview_key": preview_key,
        "source": _sources(job),
        "timings": {**timings(job), "persisted_at": iso(now)},
    }


def long_clip_manifest(
    job: Job,
    segments: list[Job],
    *,
    output_key: str,
    output_size: int,
    now: float,
    stitched: dict[str, Any],
    preview_key: str,
    estimated_cost: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """edited/<stem>.json of a long clip: the clip's manifest, every segment with its task and usage."""
    document = manifest(
        job,
        output_key=output_key,
        output_size=output_size,
        now=now,
        preview_key=preview_key,
        estimated_cost=estimated_cost,
    )
    by_id = {child.job_id: child for child in segments}
    document["task_id"] = None
    document["task_ids"] = [child.task_id for child in segments]
    document["request_ids"] = [rid for child in segments for rid in child.request_ids]
    document["orig_prompt"] = next((c.orig_prompt for c in segments if c.orig_prompt), None)
    document["segments"] = [
        {
            "index": s.index,
            "start": s.start,
            "duration": s.duration,
            "frames": s.frames,
            "split": "copied" if s.copied else "re-encoded",
            "job_id": s.job_id,
            "task_id": by_id[s.job_id].task_id,
            "request_ids": by_id[s.job_id].request_ids,
            "task_retries": by_id[s.job_id].task_retries,
            "orig_prompt": by_id[s.job_id].orig_prompt,
            "usage": _usage(by_id[s.job_id]),
            "timings": timings(by_id[s.job_id]),
        }
        for s in job.segments
    ]
    document["stitch"] = stitched
    return document


def _usage(job: Job) -> dict[str, Any] | None:
    return job.usage.as_dict() if job.usage else None


def event_detail(job: Job, **extra: Any) -> dict[str, Any]:
    """The EventBridge/SNS detail of an outcome, checked against its published schema (wanedit.events)."""
    return outcome(job, **extra)[1]
