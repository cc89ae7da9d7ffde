"""The makespan benchmark runs end to end on a handful of jobs (structure only: no timing asserts)."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.xdist_group("e2e")


def test_makespan_benchmark_runs_with_five_jobs() -> None:
    from bench.pipeline import run_pipeline

    run = run_pipeline(5, seed=3)

    assert run.persisted == 5
    assert math.isfinite(run.ratio) and run.ratio >= 1.0
    assert run.duplicate_creates == 0
    assert run.tasks_created == 5
    assert len(run.detection) == 5
    assert run.invocations.count["poll"] >= 1
    assert run.calls.by_service()["dynamodb"] > 0
