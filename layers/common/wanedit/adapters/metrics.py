"""Metrics as Powertools writes them: embedded-metric-format log lines, which CloudWatch turns into
metrics (no PutMetricData call, no extra permission). The handlers' `@metrics.log_metrics` flushes
what `emit` adds (Powertools keeps one set per process); a metric with a dimension of its own is
written at once, as its own line."""

from __future__ import annotations

from aws_lambda_powertools.metrics import Metrics as PowertoolsRegistry
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from wanedit.metrics import Metric

_UNITS = {
    "Count": MetricUnit.Count,
    "Seconds": MetricUnit.Seconds,
    "Bytes": MetricUnit.Bytes,
    "None": MetricUnit.NoUnit,
}


class PowertoolsMetrics:
    """The `wanedit.ports.Metrics` of a Lambda function."""

    def __init__(self) -> None:
        self._registry = PowertoolsRegistry()

    def emit(self, metric: Metric, value: float = 1.0, *, dimension: str | None = None) -> None:
        unit = _UNITS[metric.unit]
        if metric.by is None:
            self._registry.add_metric(name=metric.name, unit=unit, value=value)
            return
        if dimension is None:
            raise ValueError(f"{metric.name} is emitted by {metric.by}")
        with single_metric(
            name=metric.name, unit=unit, value=value, default_dimensions={metric.by: dimension}
        ):
            pass
