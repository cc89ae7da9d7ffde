"""The times the code reads are the template's: timeouts, schedule and visibility, bound by a test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from local.cfn import load_template
from wanedit.domain import timing

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

FUNCTION_TIMEOUTS = {
    "SubmitFunction": timing.SUBMIT_FUNCTION_TIMEOUT_SECONDS,
    "PollFunction": timing.POLL_FUNCTION_TIMEOUT_SECONDS,
    "CompleteFunction": timing.COMPLETE_FUNCTION_TIMEOUT_SECONDS,
    "LongClipFunction": timing.LONG_CLIP_FUNCTION_TIMEOUT_SECONDS,
}
QUEUE_CONSUMERS = {
    "IngestQueue": "SubmitFunction",
    "CompleteQueue": "CompleteFunction",
    "LongClipQueue": "LongClipFunction",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def timeout(template: dict[str, Any], function: str) -> float:
    properties = template["Resources"][function]["Properties"]
    return float(properties.get("Timeout", template["Globals"]["Function"]["Timeout"]))


@pytest.mark.parametrize("function", sorted(FUNCTION_TIMEOUTS))
def test_function_timeouts_are_the_templates(template: dict[str, Any], function: str) -> None:
    assert FUNCTION_TIMEOUTS[function] == timeout(template, function)


def test_the_poll_schedule_is_the_templates_default(template: dict[str, Any]) -> None:
    rate = re.fullmatch(r"rate\((\d+) minutes?\)", template["Parameters"]["PollSchedule"]["Default"])
    assert rate is not None and int(rate.group(1)) * 60 == timing.POLL_SCHEDULE_SECONDS


def test_takeovers_wait_for_the_workers_timeout(template: dict[str, Any]) -> None:
    # A claim is taken over only once the worker that made it cannot be running any more.
    assert timeout(template, "CompleteFunction") <= timing.STALE_PERSISTING_SECONDS
    assert timeout(template, "LongClipFunction") <= timing.STALE_WORK_SECONDS
    assert (
        max(timeout(template, "SubmitFunction"), timeout(template, "PollFunction"))
        < timing.STALE_SUBMITTING_SECONDS
    )
    # A message is sent again only after its consumer's whole run could have ended.
    assert max(timeout(template, f) for f in QUEUE_CONSUMERS.values()) < timing.RESEND_AFTER_SECONDS


@pytest.mark.parametrize("queue", sorted(QUEUE_CONSUMERS))
def test_a_message_stays_hidden_while_its_consumer_may_run(template: dict[str, Any], queue: str) -> None:
    visibility = float(template["Resources"][queue]["Properties"]["VisibilityTimeout"])
    # AWS refuses an event source whose queue hides messages for less than the function's timeout;
    # its guidance is six times the timeout, so throttled retries do not reach the DLQ early.
    assert visibility >= 6 * timeout(template, QUEUE_CONSUMERS[queue])
