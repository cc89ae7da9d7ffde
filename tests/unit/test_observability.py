"""The handlers' Tracer: the X-Ray SDK only when detailed tracing is on, in Lambda."""

import sys

import pytest

from wanedit import observability
from wanedit.settings import TracingSettings


@pytest.mark.parametrize(
    ("env", "detailed"),
    [
        ({"POWERTOOLS_TRACE_DISABLED": "true", "LAMBDA_TASK_ROOT": "/var/task"}, False),
        ({"POWERTOOLS_TRACE_DISABLED": "false", "LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, False),
    ],
)
def test_detailed_tracing_needs_lambda_and_no_opt_out(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], detailed: bool
) -> None:
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert TracingSettings().detailed is detailed


def test_without_detailed_tracing_the_tracer_does_nothing_and_loads_no_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    already = "aws_xray_sdk.core" in sys.modules
    tracer = observability.tracer()

    @tracer.capture_method
    def traced(x: int) -> int:
        tracer.put_annotation("job", "j1")
        return x + 1

    assert traced(1) == 2
    assert ("aws_xray_sdk.core" in sys.modules) is already
