"""The outcome events: what the pipeline puts on EventBridge (source "wanedit") and publishes to SNS.

The models are the contract; `schemas/outcome-event.schema.json` is generated from them
(`python -m wanedit.events --schema`) and a test keeps it current, so rules and consumers can rely on it.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from wanedit.domain.budget import Estimate
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.usage import Usage

SOURCE = "wanedit"
DETAIL_SUCCEEDED = "Video Edit Succeeded"
DETAIL_FAILED = "Video Edit Failed"
DETAIL_REJECTED = "Video Edit Rejected"
DETAIL_HELD = "Video Edit Held"
DETAIL_PAUSED = "Video Edit Submissions Paused"


class _Detail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(description="wanedit's job id: one per (video version, sidecar version)")
    bucket: str
    video_key: str = Field(description="the input clip, under the incoming prefix")
    sidecar_key: str
    task_id: str | None = Field(default=None, description="the API task, once there is one")


class BudgetPeriod(BaseModel):
    """One budget as it stood: a UTC day or month, in the price currency or in billed seconds."""

    model_config = ConfigDict(extra="forbid")

    period: str = Field(description="2026-12-01 (a day) or 2026-12 (a month), UTC")
    budget: float
    spent: float
    committed: float = Field(description="estimates of the jobs admitted and not finished yet")
    remaining: float
    unit: str = Field(description="the price currency, or 'seconds' when no price is set")


class SucceededDetail(_Detail):
    state: Literal["PERSISTED"]
    output_key: str = Field(description="the edited MP4, under the edited prefix")
    manifest_key: str = Field(description="its manifest (job, task, prompt, parameters, usage, timings)")
    size: int = Field(description="bytes of the edited MP4")
    usage: Usage | None = Field(default=None, description="a long clip's: the sum over its segments")
    segments: int | None = Field(
        default=None, description="long clips only: how many 2-10 s segments (tasks) it was edited in"
    )
    preview_key: str = Field(
        description="edited/<path>/<stem>.preview.jpg: the source's frames over the edit's (made just after)"
    )


class FailedDetail(_Detail):
    state: Literal["FAILED", "CANCELED", "EXPIRED"]
    error_code: str | None = Field(
        default=None, description="the API's code, or wanedit's own (e.g. ResultExpired)"
    )
    error_message: str | None = None
    report_key: str = Field(description="failed/<path>/<stem>.json: what happened and how to retry")
    segment: int | None = Field(
        default=None, description="long clips only: the segment (from 0) that failed, if one did"
    )


class RejectedDetail(_Detail):
    state: Literal["REJECTED"]
    report_key: str = Field(description="failed/<path>/<stem>.json: every problem with its fix")
    problems: list[str] = Field(description="the fields found wrong, e.g. video.duration, sidecar.ratio")


class HeldDetail(_Detail):
    state: Literal["HELD"]
    estimate: Estimate = Field(description="what the edit is expected to cost: billed seconds and amount")
    budgets: dict[str, BudgetPeriod] = Field(
        description="the budgets in force ('day', 'month') when it was held: spent, committed, remaining"
    )


class PausedDetail(_Detail):
    """No task is created until `paused_until`: the account's quota is used up (the job that met it)."""

    state: Literal["QUEUED"]
    error_code: str | None = Field(default=None, description="the API's code: Throttling.AllocationQuota")
    error_message: str | None = None
    paused_until: str = Field(description="UTC time (ISO 8601) when wanedit tries one create again")


_BY_STATE: dict[JobState, tuple[str, type[_Detail]]] = {
    JobState.PERSISTED: (DETAIL_SUCCEEDED, SucceededDetail),
    JobState.REJECTED: (DETAIL_REJECTED, RejectedDetail),
    JobState.FAILED: (DETAIL_FAILED, FailedDetail),
    JobState.CANCELED: (DETAIL_FAILED, FailedDetail),
    JobState.EXPIRED: (DETAIL_FAILED, FailedDetail),
    JobState.HELD: (DETAIL_HELD, HeldDetail),
    JobState.QUEUED: (DETAIL_PAUSED, PausedDetail),
}


def outcome(job: Job, **extra: Any) -> tuple[str, dict[str, Any]]:
    """(detail-type, detail) announcing a job's end; validated, so an event never breaks its schema."""
    detail_type, model = _BY_STATE[job.state]
    detail = model.model_validate(
        {
            "job_id": job.job_id,
            "state": job.state.value,
            "bucket": job.bucket,
            "video_key": job.video.key,
            "sidecar_key": job.sidecar.key,
            "task_id": job.task_id,
            **extra,
        }
    )
    return detail_type, detail.model_dump(mode="json", exclude_none=True)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the whole EventBridge event (envelope + the three details)."""
    variants = []
    definitions: dict[str, Any] = {}
    for detail_type, model in (
        (DETAIL_SUCCEEDED, SucceededDetail),
        (DETAIL_FAILED, FailedDetail),
        (DETAIL_REJECTED, RejectedDetail),
        (DETAIL_HELD, HeldDetail),
        (DETAIL_PAUSED, PausedDetail),
    ):
        detail = model.model_json_schema()
        definitions.update(detail.pop("$defs", {}))  # refs are "#/$defs/...": they live at the root
        variants.append(
            {
                "properties": {"detail-type": {"const": detail_type}, "detail": detail},
                "required": ["detail-type", "detail"],
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:wanedit:schemas:outcome-event:v1",
        "title": "wanedit outcome event",
        "description": "An EventBridge event from source 'wanedit' (the SNS message is its detail).",
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {"source": {"const": SOURCE}},
        "oneOf": variants,
        "$defs": definitions,
    }


if __name__ == "__main__":
    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m wanedit.events --schema > schemas/outcome-event.schema.json")
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
