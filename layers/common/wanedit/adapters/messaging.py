"""Messages out of the pipeline: the completion and long-clip queues, EventBridge events and the SNS
topic; and the dead-letter queues, for redriving."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import boto3
from pydantic import BaseModel

from wanedit.events import SOURCE

M = TypeVar("M", bound=BaseModel)


class SqsQueue(Generic[M]):
    """Sends one kind of message (`wanedit.messages`) to the queue of the function that takes it."""

    def __init__(self, queue_url: str, *, name: str, client: Any = None) -> None:
        self._url, self._name = queue_url, name
        self._client = client or boto3.client("sqs")

    def send(self, message: M) -> None:
        if not self._url:
            raise RuntimeError(f"this stack has no {self._name} (its URL is not set)")
        self._client.send_message(QueueUrl=self._url, MessageBody=message.model_dump_json())


class EventNotifier:
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
            Entries=[{"Source": SOURCE, "DetailType": detail_type, "Detail": body, "EventBusName": self._bus}]
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


@dataclass(frozen=True)
class DeadLetter:
    """One message read from a dead-letter queue (held invisible until deleted or released)."""

    message_id: str
    body: str
    receipt_handle: str
    receive_count: int
    attributes: Mapping[str, Any]


class DeadLetterQueue:
    """A dead-letter queue and the queue its messages were dead-lettered from (for redriving)."""

    def __init__(
        self, dlq_url: str, source_url: str, *, client: Any = None, visibility_seconds: int = 300
    ) -> None:
        self.dlq_url, self.source_url = dlq_url, source_url
        self._client = client or boto3.client("sqs")
        # Long enough that one redrive run never reads the same message twice.
        self._visibility = visibility_seconds

    def depth(self) -> int:
        attributes = self._client.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def receive(self, max_messages: int = 10) -> list[DeadLetter]:
        messages = self._client.receive_message(
            QueueUrl=self.dlq_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            VisibilityTimeout=self._visibility,
            AttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return [
            DeadLetter(
                message_id=m["MessageId"],
                body=m["Body"],
                receipt_handle=m["ReceiptHandle"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                attributes=m.get("MessageAttributes", {}),
            )
            for m in messages
        ]

    def replay(self, letter: DeadLetter) -> None:
        """Send the message again to the queue it came from (same body and attributes)."""
        kwargs: dict[str, Any] = {"QueueUrl": self.source_url, "MessageBody": letter.body}
        if letter.attributes:
            kwargs["MessageAttributes"] = dict(letter.attributes)
        self._client.send_message(**kwargs)

    def delete(self, letter: DeadLetter) -> None:
        self._client.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=letter.receipt_handle)

    def release(self, letter: DeadLetter) -> None:
        """Leave the message in the DLQ, visible again at once."""
        self._client.change_message_visibility(
            QueueUrl=self.dlq_url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0
        )
