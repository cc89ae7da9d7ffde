"""Messages out of the pipeline: the completion queue, EventBridge events and the SNS topic."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3

EVENT_SOURCE = "wanedit"


class CompletionQueue:
    """Hands a finished task to the CompleteFunction."""

    def __init__(self, queue_url: str, *, client: Any = None) -> None:
        self._url = queue_url
        self._client = client or boto3.client("sqs")

    def send(self, job_id: str) -> None:
        self._client.send_message(QueueUrl=self._url, MessageBody=json.dumps({"job_id": job_id}))


class Notifier:
    """Announces outcomes on EventBridge (for rules) and SNS (for people)."""

    def __init__(
        self, *, event_bus: str, topic_arn: str, events_client: Any = None, sns_client: Any = None
    ) -> None:
        self._bus, self._topic = event_bus, topic_arn
        self._events = events_client or boto3.client("events")
        self._sns = sns_client if sns_client is not None else (boto3.client("sns") if topic_arn else None)

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        body = json.dumps(detail, ensure_ascii=False)
        response = self._events.put_events(
            Entries=[
                {"Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": body, "EventBusName": self._bus}
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the {detail_type!r} event: {response['Entries']}")
        if self._sns is not None:
            self._sns.publish(
                TopicArn=self._topic,
                Subject=detail_type[:100],
                Message=body,
                MessageAttributes={"detail_type": {"DataType": "String", "StringValue": detail_type}},
            )
