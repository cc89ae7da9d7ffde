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
