"""The event pump: runs the real handlers with Lambda's semantics against the local queues.

- SQS event sources (IngestQueue -> submit, CompleteQueue -> complete, LongClipQueue -> longclip):
  batches of up to the template's BatchSize, the Lambda SQS event shape,
  `batchItemFailures` honoured (successes deleted, failures left for redelivery), the queue's
  redrive policy moving a message to its DLQ after maxReceiveCount (moto implements it).
- The schedule: `tick()` invokes the PollFunction once, with a context whose remaining time
  comes from the stack's clock, as Lambda's would from its timeout.

Tests call `deliver()`/`tick()` step by step; `run()` loops them in threads for the demo and
`wanedit local up`.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.resources import LocalResources
from wanedit.clock import Clock
from wanedit.domain.timing import (
    COMPLETE_FUNCTION_TIMEOUT_SECONDS,
    LONG_CLIP_FUNCTION_TIMEOUT_SECONDS,
    POLL_FUNCTION_TIMEOUT_SECONDS,
    SUBMIT_FUNCTION_TIMEOUT_SECONDS,
)

# What the pump plays, as template.yaml declares it (tests/infra checks that they agree): each
# function's logical ID, its SQS event source's BatchSize, and the Timeout and MemorySize its
# context reports (the poll handler gets the same time budget as deployed).
FUNCTIONS = {
    "submit": "SubmitFunction",
    "poll": "PollFunction",
    "complete": "CompleteFunction",
    "longclip": "LongClipFunction",
}
BATCH_SIZES = {"submit": 10, "complete": 1, "longclip": 1}
TIMEOUT_SECONDS = {
    "submit": SUBMIT_FUNCTION_TIMEOUT_SECONDS,
    "poll": POLL_FUNCTION_TIMEOUT_SECONDS,
    "complete": COMPLETE_FUNCTION_TIMEOUT_SECONDS,
    "longclip": LONG_CLIP_FUNCTION_TIMEOUT_SECONDS,
}
MEMORY_MB = {"submit": 512, "poll": 512, "complete": 512, "longclip": 3008}
POLL_TIMEOUT_SECONDS = TIMEOUT_SECONDS["poll"]
# The logical ID of the function whose handler runs in this context, as Lambda knows which function
# it runs (tests/iam's recorder attributes every AWS call to it).
RUNNING_FUNCTION: ContextVar[str | None] = ContextVar("wanedit_running_function", default=None)


class SimulatedCrash(BaseException):
    """The execution environment died mid-invocation (timeout, OOM, host lost).

    A BaseException on purpose: no `except Exception` in the functions (nor Powertools' batch
    processor) may catch it, exactly as no code runs after a real crash. The pump treats it as
    Lambda does: the whole SQS batch becomes visible again; a crashed scheduled invocation is
    simply over (the next schedule tick runs the poller again).
    """


@dataclass
class FakeLambdaContext:
    """What Powertools and our handlers read from a Lambda context."""

    function_name: str
    clock: Clock
    timeout_seconds: float
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.started_at = self.clock.now()
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started_at + self.timeout_seconds - self.clock.now()) * 1000))


def _handler(name: str) -> Callable[[dict[str, Any], Any], Any]:
    return importlib.import_module(f"functions.{name}.app").lambda_handler


def invoke(name: str, event: dict[str, Any], context: Any) -> Any:
    """Run function `name`'s handler on `event`, as its invocation (RUNNING_FUNCTION set)."""
    token = RUNNING_FUNCTION.set(FUNCTIONS[name])
    try:
        return _handler(name)(event, context)
    finally:
        RUNNING_FUNCTION.reset(token)


@dataclass
class PumpStats:
    invocations: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    crashes: dict[str, int] = field(default_factory=dict)


class Pump:
    """Delivers queue messages and schedule ticks to the handlers, one step at a time or in a loop."""

    def __init__(
        self, resources: LocalResources, clock: Clock, *, redeliver_failures_at_once: bool = True
    ) -> None:
        self.resources = resources
        self.clock = clock
        self.stats = PumpStats()
        # Lambda redelivers a failed record after the queue's visibility timeout; tests want it at once.
        self._redeliver_at_once = redeliver_failures_at_once
        self._sqs = boto3.client(
            "sqs",
            endpoint_url=resources.endpoint_url,
            region_name=resources.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's dummy credentials
        )
        queues = {
            "submit": resources.ingest_queue_url,
            "complete": resources.complete_queue_url,
            "longclip": resources.longclip_queue_url,
        }
        self._sources = {name: (url, BATCH_SIZES[name]) for name, url in queues.items()}
        self._poll_lock = threading.Lock()

    def deliver(self, function: str, *, wait_seconds: int = 0, max_batches: int = 100) -> int:
        """Hand queued messages to `function` ("submit", "complete", "longclip"); returns records handed.

        The receives and deletes are the event source mapping's, not a function's: none is running
        while they are made, even when a delivery happens inside another invocation (the bench's
        clock delivers completions while the poller sleeps).
        """
        token = RUNNING_FUNCTION.set(None)
        try:
            return self._deliver(function, wait_seconds=wait_seconds, max_batches=max_batches)
        finally:
            RUNNING_FUNCTION.reset(token)

    def _deliver(self, function: str, *, wait_seconds: int, max_batches: int) -> int:
        queue_url, batch_size = self._sources[function]
        delivered = 0
        for _ in range(max_batches):
            messages = self._sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=batch_size,
                WaitTimeSeconds=wait_seconds,
                AttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            delivered += len(messages)
            self._invoke_batch(function, queue_url, messages)
            wait_seconds = 0
        return delivered

    def tick(self, *, timeout_seconds: float = POLL_TIMEOUT_SECONDS) -> dict[str, Any]:
        """One scheduled PollFunction invocation (one at a time, as the poller's lease makes it deployed)."""
        with self._poll_lock:
            self._count("poll", 1)
            context = FakeLambdaContext(
                "wanedit-poll", self.clock, timeout_seconds, memory_limit_in_mb=MEMORY_MB["poll"]
            )
            try:
                tick = {"source": "aws.events", "detail-type": "Scheduled Event"}
                return dict(invoke("poll", tick, context))
            except SimulatedCrash:
                self.stats.crashes["poll"] = self.stats.crashes.get("poll", 0) + 1
                return {"crashed": True}

    def drain(self, rounds: int = 20) -> None:
        """Deliver until every queue is empty."""
        for _ in range(rounds):
            if not sum(self.deliver(function) for function in self._sources):
                return

    def run(self, stop: threading.Event, *, poll_every: float = 60.0) -> list[threading.Thread]:
        """Background delivery (long polling) and the schedule, until `stop` is set."""

        def consume(function: str) -> None:
            while not stop.is_set():
                self.deliver(function, wait_seconds=1)

        def schedule() -> None:
            while not stop.is_set():
                self.tick(timeout_seconds=min(POLL_TIMEOUT_SECONDS, poll_every))
                stop.wait(0.5)

        threads = [
            threading.Thread(target=consume, args=(function,), name=f"pump-{function}", daemon=True)
            for function in self._sources
        ]
        threads.append(threading.Thread(target=schedule, name="pump-schedule", daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def _invoke_batch(self, function: str, queue_url: str, messages: list[dict[str, Any]]) -> None:
        queue_arn = self._queue_arn(queue_url)
        event = {"Records": [self._record(message, queue_arn) for message in messages]}
        self._count(function, len(messages))
        context = FakeLambdaContext(
            f"wanedit-{function}",
            self.clock,
            TIMEOUT_SECONDS[function],
            memory_limit_in_mb=MEMORY_MB[function],
        )
        try:
            result = invoke(function, event, context) or {}
            failed_ids = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        except SimulatedCrash:
            self.stats.crashes[function] = self.stats.crashes.get(function, 0) + 1
            failed_ids = {message["MessageId"] for message in messages}
        except Exception:  # noqa: BLE001 - a crashed invocation fails its whole batch, as in Lambda
            failed_ids = {message["MessageId"] for message in messages}
        for message in messages:
            if message["MessageId"] in failed_ids:
                self.stats.failures[function] = self.stats.failures.get(function, 0) + 1
                if self._redeliver_at_once:
                    self._sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            else:
                self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _record(self, message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        body = message["Body"]
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": hashlib.md5(body.encode("utf-8")).hexdigest(),  # noqa: S324 - SQS's own checksum
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.resources.region,
        }

    def _queue_arn(self, queue_url: str) -> str:
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        return f"arn:aws:sqs:{self.resources.region}:123456789012:{name}"

    def _count(self, function: str, records: int) -> None:
        self.stats.invocations[function] = self.stats.invocations.get(function, 0) + 1
        self.stats.records[function] = self.stats.records.get(function, 0) + records
