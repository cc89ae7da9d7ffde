"""Each handler, invoked as Lambda would, with the sample events of events/ (also `sam local invoke -e`)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions.complete import app as complete_app
from functions.longclip import app as longclip_app
from functions.poll import app as poll_app
from functions.submit import app as submit_app
from local.samplemedia import make_clip
from tests.conftest import load_event
from wanedit.container import services
from wanedit.domain.lifecycle import JobState

pytestmark = pytest.mark.xdist_group("e2e")


def _with_body(event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["Records"][0]["body"] = json.dumps(body)
    return event


def _upload_pair(
    stack: Any, tmp_path: Path, *, seconds: float = 2, sidecar: bytes = b'{"prompt": "make it snow"}'
) -> dict[str, Any]:
    """The sample event's clip and sidecar, uploaded to the local bucket; returns the event's body."""
    body = json.loads(load_event("submit_sqs_object_created.json")["Records"][0]["body"])
    key = body["detail"]["object"]["key"]
    s3 = stack.client("s3")
    bucket = stack.resources.bucket
    clip = make_clip(tmp_path / "clip.mp4", seconds=seconds, width=320, height=240, fps=8, audio=False)
    s3.put_object(Bucket=bucket, Key=key.replace(".mp4", ".json"), Body=sidecar)
    put = s3.put_object(Bucket=bucket, Key=key, Body=clip.read_bytes())
    body["detail"]["bucket"]["name"] = bucket
    body["detail"]["object"]["version-id"] = put["VersionId"]
    return body


def test_submit_handler_takes_the_sample_event(stack, tmp_path, lambda_context):
    event = _with_body(load_event("submit_sqs_object_created.json"), _upload_pair(stack, tmp_path))

    result = submit_app.lambda_handler(event, lambda_context)

    assert result == {"batchItemFailures": []}
    assert stack.emulator.counters["tasks_created"] == 1
    [job] = services().store.list_jobs()
    assert job.state is JobState.SUBMITTED
    assert job.video.key == "incoming/team/clip.mp4"


def test_submit_handler_fails_only_the_malformed_record_of_a_batch(stack, tmp_path, lambda_context):
    """A poison record is redelivered (and lands in the DLQ after maxReceiveCount); the rest succeed."""
    event = _with_body(load_event("submit_sqs_object_created.json"), _upload_pair(stack, tmp_path))
    poison = copy.deepcopy(event["Records"][0])
    poison.update(messageId="poison-1", body="not json")
    event["Records"].append(poison)

    result = submit_app.lambda_handler(event, lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert stack.emulator.counters["tasks_created"] == 1


def test_poll_and_complete_handlers_take_the_sample_events(stack, tmp_path, lambda_context):
    body = _upload_pair(stack, tmp_path)
    submit_app.lambda_handler(_with_body(load_event("submit_sqs_object_created.json"), body), lambda_context)
    stack.clock.sleep(120)  # the emulated task finishes

    report = poll_app.lambda_handler(load_event("poll_schedule.json"), lambda_context)

    assert report["queried"] >= 1 and report["succeeded"] == 1
    [job] = services().store.list_jobs()
    assert job.state is JobState.SUCCEEDED
    message = stack.client("sqs").receive_message(QueueUrl=stack.resources.complete_queue_url)["Messages"][0]
    assert json.loads(message["Body"]) == {"job_id": job.job_id}

    event = _with_body(load_event("complete_sqs_task_succeeded.json"), {"job_id": job.job_id})
    assert complete_app.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert services().store.get(job.job_id).state is JobState.PERSISTED  # type: ignore[union-attr]
    # A repeated delivery is a no-op, not an error.
    assert complete_app.lambda_handler(event, lambda_context) == {"batchItemFailures": []}


def test_complete_handler_acknowledges_an_unknown_job(stack, lambda_context):
    event = load_event("complete_sqs_task_succeeded.json")

    assert complete_app.lambda_handler(event, lambda_context) == {"batchItemFailures": []}


def test_longclip_handler_takes_the_sample_events(stack, tmp_path, lambda_context):
    body = _upload_pair(stack, tmp_path, seconds=12, sidecar=b'{"prompt": "snow", "long_clip": "split"}')
    submit_app.lambda_handler(_with_body(load_event("submit_sqs_object_created.json"), body), lambda_context)
    [parent] = services().store.list_jobs()
    assert parent.state is JobState.SPLITTING
    sqs = stack.client("sqs")
    message = sqs.receive_message(QueueUrl=stack.resources.longclip_queue_url)["Messages"][0]
    assert json.loads(message["Body"]) == {"action": "split", "job_id": parent.job_id}

    split = _with_body(load_event("longclip_sqs_split.json"), {"action": "split", "job_id": parent.job_id})
    assert longclip_app.lambda_handler(split, lambda_context) == {"batchItemFailures": []}

    parent = services().store.get(parent.job_id)  # type: ignore[assignment]
    assert parent.state is JobState.SEGMENTED and len(parent.segments) == 2
    children = [services().store.get(s.job_id) for s in parent.segments]
    assert all(child is not None and child.state is JobState.SUBMITTED for child in children)
    # Repeated, the split changes nothing; a stitch before the segments are done waits.
    assert longclip_app.lambda_handler(split, lambda_context) == {"batchItemFailures": []}
    stitch = _with_body(load_event("longclip_sqs_stitch.json"), {"action": "stitch", "job_id": parent.job_id})
    assert longclip_app.lambda_handler(stitch, lambda_context) == {"batchItemFailures": []}
    assert services().store.get(parent.job_id).state is JobState.SEGMENTED  # type: ignore[union-attr]
    assert stack.emulator.counters["tasks_created"] == 2


def test_longclip_handler_acknowledges_an_unknown_job_and_fails_a_malformed_message(stack, lambda_context):
    assert longclip_app.lambda_handler(load_event("longclip_sqs_stitch.json"), lambda_context) == {
        "batchItemFailures": []
    }
    bad = _with_body(load_event("longclip_sqs_split.json"), {"action": "explode", "job_id": "j-1"})
    # A batch of one that fails whole is an invocation error (Powertools): SQS redelivers, then DLQ.
    with pytest.raises(BatchProcessingError, match="All records failed"):
        longclip_app.lambda_handler(bad, lambda_context)
