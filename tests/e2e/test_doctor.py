"""`wanedit doctor` against the whole local stack: all ok, then each check made to fail in turn, with
its fix printed and a non-zero exit status. Each case breaks one thing and puts it back.

The stack runs on the real clock (doctor judges the poller's last run against the time now); the
poller's run is its lease in the job table, taken here as a PollFunction invocation takes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from local.stack import LocalStack
from wanedit.adapters.lease import Lease

pytestmark = pytest.mark.xdist_group("e2e")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    with LocalStack(time_scale=60.0) as stack:
        state = stack.write_state(tmp_path_factory.mktemp("doctor") / "local.json")
        yield stack, state


def poller_ran(stack: LocalStack, at: float) -> None:
    lease = Lease(stack.resources.table, resource=_dynamodb(stack))
    assert lease.acquire("poll-invocation", at, deadline=at + 60)
    lease.release("poll-invocation")


def _dynamodb(stack: LocalStack) -> Any:
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=stack.resources.endpoint_url,
        region_name=stack.resources.region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def doctor(state: Path, capsys: pytest.CaptureFixture[str], **parameters: str) -> tuple[int, str]:
    if parameters:
        data = json.loads(state.read_text())
        data["parameters"] = parameters
        state = state.with_name("local-with-parameters.json")
        state.write_text(json.dumps(data))
    capsys.readouterr()
    code = main(["doctor", "--local-state", str(state)])
    return code, capsys.readouterr().out


def statuses(output: str) -> dict[str, str]:
    """check -> ok / WARN / FAIL, from doctor's lines."""
    found = {}
    for line in output.splitlines():
        mark, _, rest = line.strip().partition("  ")
        if mark in ("ok", "WARN", "FAIL"):
            found[rest.split(":", 1)[0]] = mark
    return found


def test_all_ok_on_a_healthy_local_stack(local: tuple[LocalStack, Path], capsys: Any) -> None:
    stack, state = local
    poller_ran(stack, time.time())
    code, output = doctor(state, capsys)
    assert code == 0, output
    assert set(statuses(output).values()) == {"ok"}, output
    assert len(statuses(output)) == 8
    assert "fix:" not in output
    assert "all checks passed" in output


def _eventbridge_off(stack: LocalStack) -> Callable[[], None]:
    s3, bucket = stack.client("s3"), stack.resources.bucket
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    return lambda: s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


def _rule_disabled(stack: LocalStack) -> Callable[[], None]:
    events = stack.client("events")
    (rule,) = [r for r in events.list_rules()["Rules"] if "IncomingObjectRule" in r["Name"]]
    events.disable_rule(Name=rule["Name"])
    return lambda: events.enable_rule(Name=rule["Name"])


def _rule_without_target(stack: LocalStack) -> Callable[[], None]:
    events = stack.client("events")
    (rule,) = [r for r in events.list_rules()["Rules"] if "IncomingObjectRule" in r["Name"]]
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    events.remove_targets(Rule=rule["Name"], Ids=[t["Id"] for t in targets])
    return lambda: events.put_targets(Rule=rule["Name"], Targets=targets)


def _secret(value: str) -> Callable[[LocalStack], Callable[[], None]]:
    def apply(stack: LocalStack) -> Callable[[], None]:
        secrets, secret_id = stack.client("secretsmanager"), stack.resources.secret_id
        good = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
        secrets.put_secret_value(SecretId=secret_id, SecretString=value)
        return lambda: secrets.put_secret_value(SecretId=secret_id, SecretString=good)

    return apply


def _poller_stale(stack: LocalStack) -> Callable[[], None]:
    poller_ran(stack, time.time() - 300)  # five minutes ago: more than two periods of rate(1 minute)
    return lambda: poller_ran(stack, time.time())


def _dead_letter(stack: LocalStack) -> Callable[[], None]:
    sqs, url = stack.client("sqs"), stack.resources.complete_dlq_url
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": "j-dead"}))
    return lambda: sqs.purge_queue(QueueUrl=url)


def _alarm_firing(stack: LocalStack) -> Callable[[], None]:
    cloudwatch = stack.client("cloudwatch")
    name = "wanedit-local-IngestDLQAlarm-TEST"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    return lambda: cloudwatch.delete_alarms(AlarmNames=[name])


def _no_lifecycle(stack: LocalStack) -> Callable[[], None]:
    s3, bucket = stack.client("s3"), stack.resources.bucket
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    s3.delete_bucket_lifecycle(Bucket=bucket)
    return lambda: s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}
    )


@pytest.mark.parametrize(
    ("check", "brake", "fix"),
    [
        ("bucket sends EventBridge notifications", _eventbridge_off, "put-bucket-notification-configuration"),
        ("the rule is enabled and targets the ingest queue", _rule_disabled, "aws events enable-rule"),
        ("the rule is enabled and targets the ingest queue", _rule_without_target, "sam deploy"),
        ("the secret holds an API key the API accepts", _secret("sk-not-the-key"), "put-secret-value"),
        ("the secret holds an API key the API accepts", _secret(" "), "put-secret-value"),
        ("the poller ran within the last two schedule periods", _poller_stale, "PollFunction's logs"),
        ("dead-letter queues are empty", _dead_letter, "wanedit redrive --dry-run"),
        ("alarms are OK", _alarm_firing, "describe-alarms"),
        ("lifecycle rules are in place", _no_lifecycle, "sam deploy"),
    ],
    ids=[
        "eventbridge-off",
        "rule-disabled",
        "rule-without-target",
        "wrong-key",
        "empty-secret",
        "poller-stale",
        "dead-letter",
        "alarm",
        "lifecycle",
    ],
)
def test_each_failure_is_found_with_its_fix(
    local: tuple[LocalStack, Path], capsys: Any, check: str, brake: Any, fix: str
) -> None:
    stack, state = local
    poller_ran(stack, time.time())
    restore = brake(stack)
    try:
        code, output = doctor(state, capsys)
    finally:
        restore()
    assert code == 1, output
    found = statuses(output)
    assert found.pop(check) == "FAIL", output
    assert set(found.values()) == {"ok"}, output  # only the broken check fails
    failing = output.split(f"FAIL  {check}", 1)[1].splitlines()
    assert failing[1].strip().startswith("fix:") and fix in failing[1], output
    assert "1 check(s) failed" in output
    assert doctor(state, capsys)[0] == 0  # put back: healthy again


def test_an_account_too_small_for_the_event_sources(local: tuple[LocalStack, Path], capsys: Any) -> None:
    stack, state = local
    poller_ran(stack, time.time())
    code, output = doctor(state, capsys, SubmitMaxConcurrency="10")
    assert code == 1
    check = "the account's Lambda concurrency holds the event sources and the poller"
    assert statuses(output)[check] == "FAIL"
    assert "= 15, more than the 10" in output
    assert "Service Quotas" in output


def test_an_existing_bucket_is_a_warning_not_a_failure(local: tuple[LocalStack, Path], capsys: Any) -> None:
    stack, state = local
    poller_ran(stack, time.time())
    code, output = doctor(state, capsys, ExistingBucketName=stack.resources.bucket)
    assert code == 0, output
    assert statuses(output)["lifecycle rules are in place"] == "WARN"
    assert "never expire" in output
