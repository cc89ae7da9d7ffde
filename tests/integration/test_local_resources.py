"""The local stack built from template.yaml on a moto server behaves like the deployed wiring:
S3 -> EventBridge -> IngestQueue for incoming/ only (never for results or long clips' working
files), queues with the template's redrive policies, the job table with the template's keys, and
the API key in the secret."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from local.cfn import load_template
from local.resources import LocalResources, create_local_resources

API_KEY = "sk-local-test-key"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: without a reset, queues of an earlier
        # local stack in this worker (same names, from the same template) still hold its events.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(endpoint: str) -> LocalResources:
    return create_local_resources(endpoint, api_key=API_KEY)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def client(stack: LocalResources, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name=stack.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def drain(stack: LocalResources, queue_url: str, *, wait_seconds: float = 1.0) -> list[dict[str, Any]]:
    """Every message that arrives within ``wait_seconds`` (deleted as read)."""
    sqs = client(stack, "sqs")
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_incoming_upload_reaches_the_ingest_queue_and_outputs_do_not(stack: LocalResources) -> None:
    s3 = client(stack, "s3")
    s3.put_object(Bucket=stack.bucket, Key="edited/x.mp4", Body=b"result")
    s3.put_object(Bucket=stack.bucket, Key="failed/x.json", Body=b"{}")
    # A long clip's segments, as split and as edited: working files, never inputs.
    s3.put_object(Bucket=stack.bucket, Key="work/j-0123/segments/000.mp4", Body=b"segment")
    s3.put_object(Bucket=stack.bucket, Key="work/j-0123/edited/000.mp4", Body=b"edited segment")
    s3.put_object(Bucket=stack.bucket, Key="incoming/a b/c.mp4", Body=b"video")

    events = drain(stack, stack.ingest_queue_url)

    assert [e["detail"]["object"]["key"] for e in events] == ["incoming/a b/c.mp4"]
    (event,) = events
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"]["name"] == stack.bucket
    assert drain(stack, stack.ingest_dlq_url, wait_seconds=0.5) == []
    # Nothing but the functions themselves sends to the long-clip queue.
    assert drain(stack, stack.longclip_queue_url, wait_seconds=0.5) == []


def test_rule_pattern_rejects_outputs(stack: LocalResources) -> None:
    """The rule as stored on the server, judged by the matcher moto routes events with
    (moto's TestEventPattern API is not implemented, so its EventPattern class is used directly)."""
    from moto.events.models import EventPattern

    events = client(stack, "events")
    (rule,) = [r for r in events.list_rules(EventBusName="default")["Rules"] if r.get("EventPattern")]
    pattern = EventPattern.load(rule["EventPattern"])

    def matches(key: str, bucket: str = stack.bucket) -> bool:
        event: dict[str, Any] = {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
        }
        return bool(pattern.matches_event(event))  # type: ignore[arg-type]  # moto types events narrowly

    assert matches("incoming/a b/c.mp4")
    assert not matches("edited/a b/c.mp4")
    assert not matches("edited/incoming/c.mp4")
    assert not matches("failed/c.json")
    assert not matches("work/j-0123/segments/000.mp4")
    assert not matches("work/j-0123/edited/000.mp4")
    assert not matches("work/incoming/c.mp4")
    assert not matches("incoming/c.mp4", bucket="someone-else")


def test_table_matches_the_template(stack: LocalResources, template: dict[str, Any]) -> None:
    table = client(stack, "dynamodb").describe_table(TableName=stack.table)["Table"]
    declared = template["Resources"]["JobTable"]["Properties"]
    assert table["KeySchema"] == declared["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(declared["AttributeDefinitions"], key=str)
    (index,) = table["GlobalSecondaryIndexes"]
    (declared_index,) = declared["GlobalSecondaryIndexes"]
    assert index["IndexName"] == declared_index["IndexName"] == "ActiveByNextPoll"
    assert index["KeySchema"] == declared_index["KeySchema"]
    assert index["Projection"] == declared_index["Projection"]
    ttl = client(stack, "dynamodb").describe_time_to_live(TableName=stack.table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_queues_have_the_template_redrive_and_timeouts(
    stack: LocalResources, template: dict[str, Any]
) -> None:
    sqs = client(stack, "sqs")
    for queue_url, dlq_url, logical_id in (
        (stack.ingest_queue_url, stack.ingest_dlq_url, "IngestQueue"),
        (stack.complete_queue_url, stack.complete_dlq_url, "CompleteQueue"),
        (stack.longclip_queue_url, stack.longclip_dlq_url, "LongClipQueue"),
    ):
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        declared = template["Resources"][logical_id]["Properties"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dlq_arn
        assert int(redrive["maxReceiveCount"]) == declared["RedrivePolicy"]["maxReceiveCount"]
        assert int(attributes["VisibilityTimeout"]) == declared["VisibilityTimeout"]
        assert attributes["SqsManagedSseEnabled"] == "true"
    assert stack.ingest_max_receive == 5
    assert stack.complete_max_receive == 5
    assert stack.longclip_max_receive == 5
    assert (
        stack.ingest_visibility_timeout
        == template["Resources"]["IngestQueue"]["Properties"]["VisibilityTimeout"]
    )
    assert (
        stack.complete_visibility_timeout
        == template["Resources"]["CompleteQueue"]["Properties"]["VisibilityTimeout"]
    )
    assert (
        stack.longclip_visibility_timeout
        == template["Resources"]["LongClipQueue"]["Properties"]["VisibilityTimeout"]
        == 5400
    )


def test_long_clip_queue_dead_letters_after_max_receive(stack: LocalResources) -> None:
    """The redrive policy as moto applies it: a message received maxReceiveCount times without
    being deleted moves to LongClipDLQ on the next receive (what the pump relies on)."""
    sqs = client(stack, "sqs")
    body = json.dumps({"action": "split", "job_id": "j-poison"})
    sqs.send_message(QueueUrl=stack.longclip_queue_url, MessageBody=body)
    for _ in range(stack.longclip_max_receive):
        (message,) = sqs.receive_message(QueueUrl=stack.longclip_queue_url, WaitTimeSeconds=1)["Messages"]
        sqs.change_message_visibility(
            QueueUrl=stack.longclip_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert sqs.receive_message(QueueUrl=stack.longclip_queue_url).get("Messages", []) == []
    assert drain(stack, stack.longclip_dlq_url) == [{"action": "split", "job_id": "j-poison"}]


def test_secret_bucket_and_topic(stack: LocalResources) -> None:
    secret = client(stack, "secretsmanager").get_secret_value(SecretId=stack.secret_id)
    assert secret["SecretString"] == API_KEY
    s3 = client(stack, "s3")
    assert s3.get_bucket_versioning(Bucket=stack.bucket)["Status"] == "Enabled"
    # (moto does not render EventBridgeConfiguration back; delivery is proven by the upload test.)
    assert client(stack, "sns").get_topic_attributes(TopicArn=stack.topic_arn)["Attributes"]


def test_function_environment_follows_the_template(stack: LocalResources, template: dict[str, Any]) -> None:
    env = stack.function_environment(api_base_url="http://127.0.0.1:9/api/v1", max_concurrent_tasks=2)
    assert set(template["Globals"]["Function"]["Environment"]["Variables"]) <= set(env)
    assert env["DASHSCOPE_BASE_URL"] == "http://127.0.0.1:9/api/v1"
    assert env["MAX_CONCURRENT_TASKS"] == "2"
    assert env["BUCKET_NAME"] == stack.bucket
    assert env["JOB_TABLE_NAME"] == stack.table
    assert env["COMPLETE_QUEUE_URL"] == stack.complete_queue_url
    assert env["LONG_CLIP_QUEUE_URL"] == stack.longclip_queue_url
    assert env["WORK_PREFIX"] == "work/"
    assert env["API_KEY_SECRET_ID"] == stack.secret_id
    assert env["TOPIC_ARN"] == stack.topic_arn
    assert env["EVENT_BUS_NAME"] == stack.event_bus == "default"
    assert env["INCOMING_PREFIX"] == "incoming/"
    assert env["AWS_ENDPOINT_URL"] == stack.endpoint_url
    assert env["AWS_DEFAULT_REGION"] == stack.region
    assert all(isinstance(v, str) for v in env.values())
    # Defaults come from the template's Parameters.
    assert stack.function_environment(api_base_url="x")["MAX_CONCURRENT_TASKS"] == str(
        template["Parameters"]["MaxConcurrentTasks"]["Default"]
    )


def test_creating_again_is_idempotent(stack: LocalResources) -> None:
    again = create_local_resources(stack.endpoint_url, api_key=API_KEY)
    assert again == stack
    assert LocalResources.from_dict(json.loads(json.dumps(stack.as_dict()))) == stack


def test_parameter_overrides_change_the_stack(endpoint: str) -> None:
    other = create_local_resources(
        endpoint,
        api_key=API_KEY,
        stack_name="wanedit-other",
        parameters={"IncomingPrefix": "drop/", "ExistingBucketName": "their-media", "WorkPrefix": "tmp/"},
    )
    assert other.bucket == "their-media"
    env = other.function_environment(api_base_url="x")
    assert env["INCOMING_PREFIX"] == "drop/"
    assert env["WORK_PREFIX"] == "tmp/"
    assert env["LONG_CLIP_QUEUE_URL"] == other.longclip_queue_url != ""
    s3 = client(other, "s3")
    s3.put_object(Bucket="their-media", Key="incoming/not-watched.mp4", Body=b"v")
    s3.put_object(Bucket="their-media", Key="drop/watched.mp4", Body=b"v")
    keys = [e["detail"]["object"]["key"] for e in drain(other, other.ingest_queue_url)]
    assert keys == ["drop/watched.mp4"]
