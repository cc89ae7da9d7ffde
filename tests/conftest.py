"""Shared test wiring: Powertools env, sample events, a Lambda context, the local stack."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"

# Handlers create their Logger/Metrics/Tracer at import: give them the env the template gives.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "wanedit")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "wanedit")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# No test may reach real AWS: dummy credentials everywhere.
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_PROFILE", None)


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` takes)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def lambda_context() -> Any:
    from local.pump import FakeLambdaContext
    from wanedit.clock import SystemClock

    return FakeLambdaContext("wanedit-test", SystemClock(), 60.0)


@pytest.fixture
def stack() -> Iterator[Any]:
    """The whole local stack on a manual clock: nothing sleeps for real."""
    from local.emulator import ManualClock
    from local.stack import LocalStack

    with LocalStack(emulator_clock=ManualClock(start=1_795_600_000.0), task_seconds=60.0) as local:
        yield local


class OutcomeTap:
    """Catches what the pipeline announces: an SQS queue behind a rule for source "wanedit" on the
    bus, and another subscribed to the SNS topic (as a user's own rule or subscription would)."""

    def __init__(self, stack: Any) -> None:
        self._sqs = stack.client("sqs")
        events, sns = stack.client("events"), stack.client("sns")
        self.bus_queue = self._queue("wanedit-test-bus-tap")
        self.topic_queue = self._queue("wanedit-test-topic-tap")
        events.put_rule(
            Name="wanedit-test-tap",
            EventPattern=json.dumps({"source": ["wanedit"]}),
            EventBusName=stack.resources.event_bus,
        )
        events.put_targets(
            Rule="wanedit-test-tap",
            EventBusName=stack.resources.event_bus,
            Targets=[{"Id": "tap", "Arn": self._arn(self.bus_queue)}],
        )
        sns.subscribe(
            TopicArn=stack.resources.topic_arn,
            Protocol="sqs",
            Endpoint=self._arn(self.topic_queue),
            Attributes={"RawMessageDelivery": "true"},
        )

    def bus_events(self) -> list[dict[str, Any]]:
        """The events put on the bus, each checked against the published schema."""
        import jsonschema

        schema = json.loads((REPO / "schemas" / "outcome-event.schema.json").read_text())
        announced = [json.loads(body) for body in self._drain(self.bus_queue)]
        for event in announced:
            jsonschema.validate(event, schema)
        return announced

    def topic_messages(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self._drain(self.topic_queue)]

    def _queue(self, name: str) -> str:
        return str(self._sqs.create_queue(QueueName=name)["QueueUrl"])

    def _arn(self, url: str) -> str:
        return str(
            self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )

    def _drain(self, url: str) -> list[str]:
        bodies: list[str] = []
        while messages := self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(message["Body"])
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies


@pytest.fixture
def outcomes(stack: Any) -> OutcomeTap:
    return OutcomeTap(stack)


def pytest_configure(config: pytest.Config) -> None:
    # The fault suite's summary table (tests/faults/summary.py) needs its hooks in the xdist
    # controller too, which never loads tests/faults/conftest.py.
    from tests.faults import summary
    from tests.iam import recorder

    if not config.pluginmanager.is_registered(summary):
        config.pluginmanager.register(summary, "wanedit-fault-summary")
    # Every AWS call a handler makes, checked against its role as SAM expands it (tests/iam).
    if not config.pluginmanager.is_registered(recorder):
        config.pluginmanager.register(recorder, "wanedit-iam-recorder")
