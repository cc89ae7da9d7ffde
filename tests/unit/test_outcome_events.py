"""The outcome events' published schema is current, and what the code emits fits it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from wanedit import events
from wanedit.domain.job import Job, JobState, SourceObject

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "outcome-event.schema.json"


def job(state: JobState) -> Job:
    return Job(
        job_id="j-0123456789abcdef01234567",
        state=state,
        bucket="media",
        stem="team/clip",
        video=SourceObject(key="incoming/team/clip.mp4", version_id="v1"),
        sidecar=SourceObject(key="incoming/team/clip.json", version_id="s1"),
        prompt="snow",
        created_at=0.0,
        updated_at=0.0,
        task_id="t-1",
    )


REPORT = "failed/team/clip.json"


def envelope(detail_type: str, detail: dict) -> dict:
    return {"version": "0", "source": "wanedit", "detail-type": detail_type, "detail": detail}


def test_the_published_schema_is_generated_from_the_models():
    assert json.loads(SCHEMA.read_text()) == events.json_schema()


@pytest.mark.parametrize(
    ("state", "extra", "detail_type"),
    [
        (
            JobState.PERSISTED,
            {"output_key": "edited/team/clip.mp4", "manifest_key": "edited/team/clip.json", "size": 10,
             "preview_key": "edited/team/clip.preview.jpg",
             "usage": {"duration": 10.04, "input_video_duration": 5.02, "output_video_duration": 5.02,
                       "video_count": 1, "SR": 720}},
            "Video Edit Succeeded",
        ),
        (JobState.FAILED, {"error_code": "InvalidParameter", "error_message": "x", "report_key": REPORT},
         "Video Edit Failed"),
        (JobState.CANCELED, {"error_code": "Canceled", "report_key": REPORT}, "Video Edit Failed"),
        (JobState.EXPIRED, {"error_code": "TaskExpired", "report_key": REPORT}, "Video Edit Failed"),
        (JobState.REJECTED, {"report_key": REPORT, "problems": ["video.duration"]}, "Video Edit Rejected"),
        (
            JobState.HELD,
            {"estimate": {"seconds": 8.0, "amount": 0.8, "unit": "USD", "tier": "720P"},
             "budgets": {"day": {"period": "2026-12-01", "budget": 5.0, "spent": 4.5, "committed": 0.0,
                                 "remaining": 0.5, "unit": "USD"}}},
            "Video Edit Held",
        ),
        (
            JobState.QUEUED,
            {"error_code": "Throttling.AllocationQuota", "paused_until": "2026-12-01T12:15:00.000+00:00"},
            "Video Edit Submissions Paused",
        ),
    ],
)  # fmt: skip
def test_each_outcome_fits_the_schema(state, extra, detail_type):
    emitted_type, detail = events.outcome(job(state), **extra)

    assert emitted_type == detail_type
    jsonschema.validate(envelope(emitted_type, detail), json.loads(SCHEMA.read_text()))


def test_an_event_missing_what_its_type_promises_is_refused():
    with pytest.raises(ValueError, match="report_key"):
        events.outcome(job(JobState.REJECTED), problems=["x"])


def test_the_sample_rule_matches_the_schema_names():
    rule = json.loads((REPO / "events" / "eventbridge_rule_outcomes.json").read_text())
    assert rule["source"] == [events.SOURCE]
    assert set(rule["detail-type"]) <= {events.DETAIL_FAILED, events.DETAIL_REJECTED, events.DETAIL_SUCCEEDED}
