"""Every metric the pipeline emits, named once (CloudWatch namespace `POWERTOOLS_METRICS_NAMESPACE`).

Handlers and use cases emit them through `wanedit.ports.Metrics` (Powertools' embedded metric
format: log lines CloudWatch turns into metrics, no PutMetricData call); the template's dashboard
charts them, and a test checks that it names no metric that is not defined here. Every metric has
Powertools' default dimension ``service``; the ones listed with ``by`` have that dimension too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wanedit.domain.lifecycle import TERMINAL

Unit = Literal["Count", "Seconds", "Bytes", "None"]


@dataclass(frozen=True)
class Metric:
    name: str
    unit: Unit = "Count"
    by: str | None = None  # a dimension beside `service`
    gauge: bool = False  # a level sampled now and then (chart its Maximum), not a count (Sum)


JOBS_ENDED = Metric("JobsEnded", by="state")  # one per terminal state: the outcomes chart
JOBS_HELD = Metric("JobsHeld")
JOBS_RELEASED = Metric("JobsReleased")
TASKS_CREATED = Metric("TasksCreated")
TASKS_QUERIED = Metric("TasksQueried")
TASKS_SUCCEEDED = Metric("TasksSucceeded")
TASK_LISTS = Metric("TaskLists")
SLOTS_IN_USE = Metric("SlotsInUse", gauge=True)
TASKS_IN_FLIGHT = Metric("TasksInFlight", gauge=True)
HELD_WAITING = Metric("HeldWaiting", gauge=True)
DETECTION_DELAY = Metric("DetectionDelay", unit="Seconds")  # a task's end to its job noticing it
API_ERRORS = Metric("ApiErrors", by="code")
SUBMISSIONS_PAUSED = Metric("SubmissionsPaused")
PERSISTED_BYTES = Metric("PersistedBytes", unit="Bytes")
PERSIST_SECONDS = Metric("PersistSeconds", unit="Seconds")
PREVIEWS_MADE = Metric("PreviewsMade")
PREVIEWS_FAILED = Metric("PreviewsFailed")
BUDGET_SPENT = Metric("BudgetSpent", unit="None", by="period")  # in the budgets' unit, when settled
BUDGET_COMMITTED = Metric("BudgetCommitted", unit="None", by="period", gauge=True)
INTAKE = Metric("Intake", by="outcome")  # what each upload event led to
PERSIST_RETRIES = Metric("PersistRetries")
LONG_CLIP_STEPS = Metric("LongClipSteps", by="step")

ALL: tuple[Metric, ...] = tuple(value for value in globals().values() if isinstance(value, Metric))
BY_NAME = {metric.name: metric for metric in ALL}

ENDED_STATES = tuple(sorted(state.value for state in TERMINAL))
"""The values of JobsEnded's ``state`` dimension."""
