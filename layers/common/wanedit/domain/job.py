"""The job: one edit of one (video version, sidecar version), as the job store keeps it.

A long clip (sidecar ``"long_clip": "split"``, over 10 s) is a parent job that never holds a slot:
it lists its segments, and each segment is an ordinary job (``parent_id`` set) that persists into
the working prefix, not edited/. States and their moves: `wanedit.domain.lifecycle`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from wanedit.domain.budget import Estimate
from wanedit.domain.lifecycle import JobState
from wanedit.domain.request import EditRequest
from wanedit.domain.usage import Usage

__all__ = [
    "IMMUTABLE_FIELDS",
    "Claim",
    "Job",
    "JobChanges",
    "JobState",
    "Segment",
    "SourceObject",
    "job_id_for",
    "segment_job_id",
]


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
    """What the job store keeps for a job; timestamps are epoch seconds."""

    model_config = ConfigDict(defer_build=True)  # built on first use, not at import (cold start)

    job_id: str
    state: JobState
    bucket: str
    stem: str  # outputs' path without extension: "team/clip", or "team/clip.red-jacket" for a named edit
    edit: str | None = None  # the edit's name when the sidecar holds several
    video: SourceObject
    sidecar: SourceObject
    prompt: str
    request: EditRequest = Field(default_factory=EditRequest)
    long_clip: bool = False  # edited in segments (see the module doc)
    estimate: Estimate | None = None  # what it will cost, known from validation (the spend guard)
    admitted_at: float | None = None  # when its estimate was committed against the budgets
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
    usage: Usage | None = None
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

    @property
    def is_segment(self) -> bool:
        return self.parent_id is not None

    def with_request_id(self, request_id: str | None) -> list[str]:
        """The request ids with one more (the API's id of the latest call about this job)."""
        return [*self.request_ids, request_id] if request_id else list(self.request_ids)


class JobChanges(TypedDict, total=False):
    """The fields a store write may change beside the state (`None` clears a field).

    The identity fields (id, bucket, stem, inputs, prompt, request, created_at) never change;
    ``next_poll_at`` is the store's own argument, since it also decides the poller's lists.
    """

    task_id: str | None
    task_status: str | None
    request_ids: list[str]
    submit_attempts: int
    throttled: int
    submitting_since: float | None
    submitted_at: float | None
    finished_at: float | None
    first_unknown_at: float | None
    persist_attempts: int
    persist_started_at: float | None
    orig_prompt: str | None
    video_url: str | None
    usage: Usage | None
    task_times: dict[str, str]
    error_code: str | None
    error_message: str | None
    output_key: str | None
    manifest_key: str | None
    report_key: str | None
    segments: list[Segment]
    task_retries: int
    work_started_at: float | None
    work_attempts: int
    admitted_at: float | None


IMMUTABLE_FIELDS = frozenset(
    {
        "job_id",
        "state",
        "bucket",
        "stem",
        "edit",
        "video",
        "sidecar",
        "prompt",
        "request",
        "long_clip",
        "estimate",
        "created_at",
        "parent_id",
        "segment_index",
    }
)
"""Set when the job is made. With ``updated_at`` and ``next_poll_at`` (the store's own), JobChanges
holds the rest."""


@dataclass(frozen=True)
class Claim:
    """The job is still held as its worker took it: `field` was set at `since` (None: never taken).

    A worker taking over a claim older than the previous worker's timeout states the claim it saw, so
    of two workers taking over at once only one succeeds.
    """

    field: Literal["persist_started_at", "work_started_at"]
    since: float | None
