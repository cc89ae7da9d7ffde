"""The job: one edit of one (video version, sidecar version), and the states it moves through.

WAITING_PAIR lives on a separate "half" record (a clip or sidecar still missing its partner);
a job exists from QUEUED on. Every transition is a conditional write in the JobStore.

A long clip (sidecar `"long_clip": "split"`, over 10 s) is a parent job that never holds a slot:
SPLITTING -> SEGMENTED (one child job per 2-10 s segment, each an ordinary job) -> STITCHING ->
PERSISTED. Children carry `parent_id`; they persist into the working prefix, not edited/.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    QUEUED = "QUEUED"  # valid, waiting for a free slot (or backing off after Throttling)
    SUBMITTING = "SUBMITTING"  # a worker holds a slot and is calling create
    RECONCILING = "RECONCILING"  # create's outcome unknown: find the task before any resubmission
    SUBMITTED = "SUBMITTED"  # the API has the task (task_status PENDING or RUNNING)
    SUCCEEDED = "SUCCEEDED"  # the API finished; handed to the completion queue
    PERSISTING = "PERSISTING"  # a completion worker is streaming the result into the bucket
    PERSISTED = "PERSISTED"  # edited MP4 + manifest are in the bucket: done
    REJECTED = "REJECTED"  # bad input, never sent to the API
    FAILED = "FAILED"  # the API (or persisting the result) failed for good
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"  # the task id or result outlived its 24 h
    SPLITTING = "SPLITTING"  # long clip: waiting for (or in) the split worker
    SEGMENTED = "SEGMENTED"  # long clip: its segments are jobs of their own; waiting for all of them
    STITCHING = "STITCHING"  # long clip: a worker is stitching the edited segments

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def holds_slot(self) -> bool:
        """States in which the job may occupy one of the account's concurrent task slots."""
        return self in (JobState.SUBMITTING, JobState.RECONCILING, JobState.SUBMITTED)


TERMINAL_STATES = frozenset(
    {JobState.PERSISTED, JobState.REJECTED, JobState.FAILED, JobState.CANCELED, JobState.EXPIRED}
)


def segment_job_id(parent_id: str, index: int) -> str:
    """A segment's job id: fixed by its parent and place, so a repeated split makes no new jobs."""
    return f"{parent_id}-s{index:03d}"


def job_id_for(
    bucket: str, video_key: str, video_version: str, sidecar_key: str, sidecar_version: str, edit: str = ""
) -> str:
    """Content identity: the same object versions (and edit name) always map to the same job id."""
    parts = (bucket, video_key, video_version, sidecar_key, sidecar_version) + ((edit,) if edit else ())
    return "j-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


class SourceObject(BaseModel):
    """One input object pinned to the version that was validated."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    key: str
    version_id: str | None = None
    etag: str = ""
    size: int = 0

    @property
    def identity(self) -> str:
        return self.version_id or self.etag


class Segment(BaseModel):
    """One 2-10 s piece of a long clip, as split (times are seconds into the source)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    index: int
    job_id: str
    key: str
    version_id: str | None = None
    etag: str = ""
    start: float
    duration: float
    frames: int
    copied: bool
    size: int


class Job(BaseModel):
    """What the JobStore keeps for a job; timestamps are epoch seconds."""

    model_config = ConfigDict(defer_build=True)  # built on first use, not at import (cold start)

    job_id: str
    state: JobState
    bucket: str
    stem: str  # outputs' path without extension: "team/clip", or "team/clip.red-jacket" for a named edit
    edit: str | None = None  # the edit's name when the sidecar holds several
    video: SourceObject
    sidecar: SourceObject
    prompt: str
    request: dict[str, Any] = Field(default_factory=dict)  # sidecar fields as validated (no URLs)
    created_at: float
    updated_at: float
    next_poll_at: float | None = None
    task_id: str | None = None
    task_status: str | None = None
    request_ids: list[str] = Field(default_factory=list)
    submit_attempts: int = 0
    throttled: int = 0
    submitting_since: float | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    first_unknown_at: float | None = None
    persist_attempts: int = 0
    persist_started_at: float | None = None
    orig_prompt: str | None = None
    video_url: str | None = None
    usage: dict[str, Any] | None = None
    task_times: dict[str, str] = Field(default_factory=dict)  # submit/scheduled/end as the API gave them
    error_code: str | None = None
    error_message: str | None = None
    output_key: str | None = None
    manifest_key: str | None = None
    report_key: str | None = None
    # long clips: the parent lists its segments; a segment job names its parent and place
    segments: list[Segment] = Field(default_factory=list)
    parent_id: str | None = None
    segment_index: int | None = None
    task_retries: int = 0  # a segment whose task FAILED is submitted again, within bounds
    work_started_at: float | None = None  # when a split/stitch worker claimed the parent
    work_attempts: int = 0  # split/stitch attempts that ended in a transient failure, and the current
