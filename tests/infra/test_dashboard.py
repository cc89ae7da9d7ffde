"""The CloudWatch dashboard of template.yaml, resolved for sample stacks and read as CloudWatch would.

Every custom metric it charts is one `wanedit.metrics` defines, queried with the dimensions Powertools
writes for it (`service`, and the metric's `by`) and a statistic that fits it; every metric defined
there is on the page; every queue, function and alarm it names is one of the template's; the body is
dashboard JSON whose widgets fit the 24-column grid without overlapping. No network: the template is
resolved with local.cfn, with physical names that say which logical ID they stand for.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest

from cli.doctor import dashboard_line
from local.cfn import Resolver, load_template, parameter_values
from wanedit import metrics
from wanedit.domain.budget import PeriodKind, Prices

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
DASHBOARD = "PipelineDashboard"
AWS_NAMESPACES = {"AWS/SQS", "AWS/Lambda"}
GRID_COLUMNS = 24
# What the console draws for a metric of each kind: counts add up, gauges show their level, and a
# duration's distribution reads as percentiles.
STATS_FOR_COUNTS = {"Sum"}
STATS_FOR_GAUGES = {"Maximum"}
STATS_FOR_DURATIONS = {"Sum", "p50", "p95", "p99", "Maximum"}
# SEARCH('{"Namespace",dim,dim} MetricName="Name" dim="value"', 'Stat', period)
SEARCH = re.compile(
    r"""SEARCH\('\{"(?P<namespace>[^"]+)",(?P<dimensions>[^}]+)\} (?P<terms>.+)', """
    r"""'(?P<stat>\w+)', (?P<period>\d+)\)"""
)
SEARCH_TERM = re.compile(r'(\w+)="([^"]*)"')
ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@dataclass(frozen=True)
class Stack:
    """One resolved dashboard: its name, body and URL, and the logical ID behind each physical name."""

    name: str
    body: dict[str, Any]
    url: str
    logical_ids: dict[str, str]
    region: str


@dataclass(frozen=True)
class Line:
    """One metric of a metric widget: ["Namespace", "Name", dim, value, ..., {options}]."""

    widget: dict[str, Any]
    namespace: str
    name: str
    dimensions: dict[str, str]
    options: dict[str, Any]

    @property
    def axis_label(self) -> str:
        axis = self.options.get("yAxis", "left")
        return str(self.widget["properties"]["yAxis"][axis]["label"])


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def deploy(
    template: Mapping[str, Any],
    *,
    region: str = "ap-southeast-1",
    partition: str = "aws",
    stack_name: str = "video-team",
    **overrides: str,
) -> Stack:
    """The dashboard as CloudFormation would create it for a stack with these parameter values."""
    resolver = Resolver(
        template=template,
        parameters={**parameter_values(template), **overrides},
        pseudo={
            "AWS::Region": region,
            "AWS::AccountId": "123456789012",
            "AWS::Partition": partition,
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    logical_ids: dict[str, str] = {}
    for logical_id in template["Resources"]:
        physical = f"{stack_name}-{logical_id}-1A2B3C"
        resolver.refs[logical_id] = physical
        logical_ids[physical] = logical_id
        for attribute in ("Arn", "QueueName"):
            value = f"{attribute.lower()}:{physical}"
            resolver.attributes[(logical_id, attribute)] = value
            logical_ids[value] = logical_id
    properties = resolver.resolve(template["Resources"][DASHBOARD]["Properties"])
    resolver.refs[DASHBOARD] = properties["DashboardName"]  # Ref of a dashboard: its name
    url = resolver.resolve(template["Outputs"]["DashboardUrl"]["Value"])
    return Stack(
        properties["DashboardName"], json.loads(properties["DashboardBody"]), url, logical_ids, region
    )


def metric_widgets(stack: Stack) -> Iterator[dict[str, Any]]:
    yield from (widget for widget in stack.body["widgets"] if widget["type"] == "metric")


def lines(stack: Stack) -> Iterator[Line]:
    for widget in metric_widgets(stack):
        for entry in widget["properties"]["metrics"]:
            if "expression" in entry[0]:
                continue
            options = entry[-1] if isinstance(entry[-1], dict) else {}
            namespace, name, *pairs = [part for part in entry if not isinstance(part, dict)]
            assert len(pairs) % 2 == 0, entry
            yield Line(widget, namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), options)


def expressions(stack: Stack) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for widget in metric_widgets(stack):
        for entry in widget["properties"]["metrics"]:
            if "expression" in entry[0]:
                yield widget, entry[0]


def searches(stack: Stack) -> Iterator[tuple[dict[str, Any], dict[str, Any], re.Match[str]]]:
    for widget, expression in expressions(stack):
        match = SEARCH.fullmatch(expression["expression"])
        if expression["expression"].startswith("SEARCH("):
            assert match, expression
        if match:
            yield widget, expression, match


def search_terms(match: re.Match[str]) -> dict[str, str]:
    """The `Name="value"` terms of a SEARCH expression (MetricName, dimension values)."""
    return dict(SEARCH_TERM.findall(match.group("terms")))


def globals_env(template: Mapping[str, Any]) -> Mapping[str, Any]:
    return template["Globals"]["Function"]["Environment"]["Variables"]


def of_type(template: Mapping[str, Any], type_: str) -> set[str]:
    return {logical_id for logical_id, r in template["Resources"].items() if r["Type"] == type_}


def budget_widget(stack: Stack, period: str) -> dict[str, Any]:
    (widget,) = {
        id(line.widget): line.widget
        for line in lines(stack)
        if line.name == metrics.BUDGET_COMMITTED.name and line.dimensions["period"] == period
    }.values()
    return widget


# ------------------------------------------------------------------ the body's shape


@pytest.mark.parametrize(("region", "partition"), [("ap-southeast-1", "aws"), ("eu-west-1", "aws")])
def test_the_body_is_dashboard_json_on_the_grid(
    template: dict[str, Any], region: str, partition: str
) -> None:
    stack = deploy(template, region=region, partition=partition)
    widgets = stack.body["widgets"]
    assert 0 < len(widgets) <= 500  # CloudWatch's limit per dashboard
    cells: dict[tuple[int, int], str] = {}
    for widget in widgets:
        assert widget["type"] in {"metric", "alarm", "text"}, widget
        x, y, width, height = (widget[key] for key in ("x", "y", "width", "height"))
        assert all(isinstance(v, int) and v >= 0 for v in (x, y, width, height)), widget
        assert 1 <= width <= GRID_COLUMNS and x + width <= GRID_COLUMNS and height >= 1, widget
        assert isinstance(widget["properties"], dict)
        title = widget["properties"].get("title") or widget["properties"]["markdown"]
        for cell in ((column, row) for column in range(x, x + width) for row in range(y, y + height)):
            assert cell not in cells, f"{title!r} overlaps {cells[cell]!r} at {cell}"
            cells[cell] = title
    for widget in metric_widgets(stack):
        properties = widget["properties"]
        assert properties["region"] == region  # the stack's own region, not the console's
        assert len(properties["metrics"]) <= 100
        assert properties["title"] and properties["yAxis"]["left"]["label"], properties["title"]
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    assert alarms["properties"]["title"] and alarms["properties"]["alarms"]


def test_the_dashboard_is_named_after_the_stack_and_its_region(template: dict[str, Any]) -> None:
    # Dashboards are global to the account: one stack name deployed in two regions gets two dashboards.
    assert deploy(template, region="eu-west-1").name == "video-team-eu-west-1"
    assert deploy(template, region="us-east-1").name == "video-team-us-east-1"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", deploy(template).name)


# ------------------------------------------------------------------ custom metrics: defined once, seen once


def test_every_custom_metric_is_defined_and_queried_with_its_dimensions(template: dict[str, Any]) -> None:
    stack = deploy(template)
    env = globals_env(template)
    custom = [line for line in lines(stack) if line.namespace not in AWS_NAMESPACES]
    assert custom
    for line in custom:
        assert line.namespace == env["POWERTOOLS_METRICS_NAMESPACE"], line
        metric = metrics.BY_NAME[line.name]  # a KeyError: a metric the code does not emit
        expected = {"service"} | ({metric.by} if metric.by else set())
        assert set(line.dimensions) == expected, (line.name, line.dimensions)
        assert line.dimensions["service"] == env["POWERTOOLS_SERVICE_NAME"]
        allowed = (
            STATS_FOR_GAUGES
            if metric.gauge
            else STATS_FOR_DURATIONS
            if metric.unit == "Seconds"
            else STATS_FOR_COUNTS
        )
        assert line.options["stat"] in allowed, (line.name, line.options)


def test_units_read_on_their_axes(template: dict[str, Any]) -> None:
    stack = deploy(template)
    for line in lines(stack):
        if line.namespace in AWS_NAMESPACES:
            continue
        metric = metrics.BY_NAME[line.name]
        if line.options.get("visible") is False:
            continue  # an input of a metric math expression (checked below)
        assert metric.unit != "Bytes", f"{line.name}: bytes are charted as MB/s, by an expression"
        if metric.unit == "Seconds":
            assert line.axis_label == "seconds", line.name
        if metric.unit == "None":  # the budgets' unit
            assert line.axis_label == "billed seconds", line.name


def test_every_metric_the_code_emits_is_on_the_dashboard(template: dict[str, Any]) -> None:
    stack = deploy(template)
    charted = {line.name for line in lines(stack) if line.namespace not in AWS_NAMESPACES}
    charted |= {search_terms(match)["MetricName"] for _, _, match in searches(stack)}
    assert {metric.name for metric in metrics.ALL} - charted == set()


def test_searches_cover_one_dimension_of_one_metric_each(template: dict[str, Any]) -> None:
    stack = deploy(template)
    env = globals_env(template)
    found = list(searches(stack))
    assert found
    for widget, expression, match in found:
        terms = search_terms(match)
        metric = metrics.BY_NAME[terms["MetricName"]]
        assert metric.by, f"{metric.name} has no dimension of its own to search over"
        assert match.group("namespace") == env["POWERTOOLS_METRICS_NAMESPACE"]
        # The schema makes the search exact: only metrics with exactly these dimensions match.
        assert set(match.group("dimensions").split(",")) == {metric.by, "service"}
        assert terms["service"] == env["POWERTOOLS_SERVICE_NAME"]
        assert match.group("stat") == ("Maximum" if metric.gauge else "Sum")
        assert int(match.group("period")) == widget["properties"]["period"]
        assert expression["label"] == f"${{PROP('Dim.{metric.by}')}}"  # one line per value, named by it


def test_jobs_ended_has_one_line_per_terminal_state(template: dict[str, Any]) -> None:
    stack = deploy(template)
    states = [line.dimensions["state"] for line in lines(stack) if line.name == metrics.JOBS_ENDED.name]
    assert sorted(states) == list(metrics.ENDED_STATES)
    assert len({id(line.widget) for line in lines(stack) if line.name == metrics.JOBS_ENDED.name}) == 1


def test_budget_metrics_are_charted_for_each_period(template: dict[str, Any]) -> None:
    stack = deploy(template)
    for metric in (metrics.BUDGET_SPENT, metrics.BUDGET_COMMITTED):
        periods = sorted(line.dimensions["period"] for line in lines(stack) if line.name == metric.name)
        assert periods == sorted(get_args(PeriodKind)), metric.name


def test_persist_throughput_is_bytes_over_seconds_in_megabytes(template: dict[str, Any]) -> None:
    stack = deploy(template)
    ((widget, expression),) = [
        (w, e) for w, e in expressions(stack) if not e["expression"].startswith("SEARCH(")
    ]
    inputs = {
        line.options["id"]: line for line in lines(stack) if line.widget is widget and "id" in line.options
    }
    names = {line.name: identifier for identifier, line in inputs.items()}
    assert set(names) == {metrics.PERSISTED_BYTES.name, metrics.PERSIST_SECONDS.name}
    assert all(line.options["visible"] is False for line in inputs.values())
    sample = {names[metrics.PERSISTED_BYTES.name]: 250e6, names[metrics.PERSIST_SECONDS.name]: 10.0}
    assert evaluate(expression["expression"], sample) == pytest.approx(25.0)  # 250 MB in 10 s
    assert widget["properties"]["yAxis"]["left"]["label"] == "MB/s"


def evaluate(expression: str, values: Mapping[str, float]) -> float:
    """A metric math expression of + - * / over ids and numbers, on one sample per id."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.BinOp):
            return ARITHMETIC[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Name):
            return values[node.id]  # a KeyError: the expression names an id the widget lacks
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        raise AssertionError(f"not plain arithmetic: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval").body)


def test_expression_ids_are_unique_and_well_formed(template: dict[str, Any]) -> None:
    stack = deploy(template)
    for widget in metric_widgets(stack):
        ids = [entry[-1]["id"] for entry in widget["properties"]["metrics"] if "id" in entry[-1]]
        assert len(ids) == len(set(ids)), widget["properties"]["title"]
        assert all(re.fullmatch(r"[a-z][A-Za-z0-9_]*", i) for i in ids), ids


# ------------------------------------------------------------------ AWS resources: what the stack has


def test_every_queue_is_charted_for_depth_and_age(template: dict[str, Any]) -> None:
    stack = deploy(template)
    queues = of_type(template, "AWS::SQS::Queue")
    assert {
        "IngestQueue",
        "CompleteQueue",
        "LongClipQueue",
        "IngestDLQ",
        "CompleteDLQ",
        "LongClipDLQ",
    } <= queues
    for name in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        charted = [line for line in lines(stack) if line.namespace == "AWS/SQS" and line.name == name]
        assert all(set(line.dimensions) == {"QueueName"} for line in charted)
        named = [stack.logical_ids[line.dimensions["QueueName"]] for line in charted]
        assert sorted(named) == sorted(queues), name  # each queue once, and nothing but the queues
        assert all(line.options["stat"] == "Maximum" for line in charted)


@pytest.mark.parametrize(
    ("metric", "stats"),
    [("Errors", ["Sum"]), ("Throttles", ["Sum"]), ("Duration", ["Maximum", "p95"])],
)
def test_every_function_is_charted(template: dict[str, Any], metric: str, stats: list[str]) -> None:
    stack = deploy(template)
    functions = of_type(template, "AWS::Serverless::Function")
    assert len(functions) == 4
    charted = [line for line in lines(stack) if line.namespace == "AWS/Lambda" and line.name == metric]
    assert all(set(line.dimensions) == {"FunctionName"} for line in charted)
    for stat in stats:
        named = sorted(
            stack.logical_ids[x.dimensions["FunctionName"]] for x in charted if x.options["stat"] == stat
        )
        assert named == sorted(functions), (metric, stat)


def test_the_alarm_widget_shows_every_alarm(template: dict[str, Any]) -> None:
    stack = deploy(template)
    (widget,) = [w for w in stack.body["widgets"] if w["type"] == "alarm"]
    shown = [stack.logical_ids[arn] for arn in widget["properties"]["alarms"]]
    assert all(arn.startswith("arn:") for arn in widget["properties"]["alarms"])
    assert sorted(shown) == sorted(of_type(template, "AWS::CloudWatch::Alarm"))


def test_only_the_stacks_own_resources_are_named(template: dict[str, Any]) -> None:
    stack = deploy(template)
    for line in lines(stack):
        if line.namespace in AWS_NAMESPACES:
            (value,) = line.dimensions.values()
            assert value in stack.logical_ids, f"{line.name} names {value}, not one of the stack's"


# ------------------------------------------------------------------ lines that follow the parameters


def test_budget_lines_appear_only_for_budgets_that_are_on(template: dict[str, Any]) -> None:
    off = deploy(template)
    assert budget_widget(off, "day")["properties"]["annotations"]["horizontal"] == []
    assert budget_widget(off, "month")["properties"]["annotations"]["horizontal"] == []
    on = deploy(template, DailyBudget="25", MonthlyBudget="400")
    (daily,) = budget_widget(on, "day")["properties"]["annotations"]["horizontal"]
    (monthly,) = budget_widget(on, "month")["properties"]["annotations"]["horizontal"]
    assert (daily["label"], daily["value"]) == ("DailyBudget", 25)
    assert (monthly["label"], monthly["value"]) == ("MonthlyBudget", 400)
    only_monthly = deploy(template, MonthlyBudget="400")
    assert budget_widget(only_monthly, "day")["properties"]["annotations"]["horizontal"] == []


@pytest.mark.parametrize(
    ("overrides", "prices"),
    [
        ({}, Prices()),
        ({"PricePerSecond720P": "0.1", "PriceCurrency": "EUR"}, Prices(0.1, 0.0, "EUR")),
        ({"PricePerSecond1080P": "0.15"}, Prices(0.0, 0.15, "USD")),
    ],
)
def test_budgets_are_charted_in_the_unit_the_guard_counts(
    template: dict[str, Any], overrides: dict[str, str], prices: Prices
) -> None:
    stack = deploy(template, **overrides)
    label = "billed seconds" if prices.unit == "seconds" else prices.unit
    for period in get_args(PeriodKind):
        properties = budget_widget(stack, period)["properties"]
        assert properties["yAxis"]["left"]["label"] == label
        assert properties["title"].endswith(f"in {label}")


def test_task_slots_are_drawn_against_max_concurrent_tasks(template: dict[str, Any]) -> None:
    for value in (parameter_values(template)["MaxConcurrentTasks"], "8"):
        stack = deploy(template, MaxConcurrentTasks=value)
        (widget,) = {
            id(x.widget): x.widget for x in lines(stack) if x.name == metrics.SLOTS_IN_USE.name
        }.values()
        (line,) = widget["properties"]["annotations"]["horizontal"]
        assert (line["label"], line["value"]) == ("MaxConcurrentTasks", int(value))
        assert metrics.TASKS_IN_FLIGHT.name in {x.name for x in lines(stack) if x.widget is widget}


# ------------------------------------------------------------------ where to find it


@pytest.mark.parametrize(
    ("partition", "region", "host"),
    [
        ("aws", "ap-southeast-1", "console.aws.amazon.com"),
        ("aws-cn", "cn-north-1", "console.amazonaws.cn"),
        ("aws-us-gov", "us-gov-west-1", "console.amazonaws-us-gov.com"),
    ],
)
def test_the_url_output_opens_the_dashboard_in_its_region(
    template: dict[str, Any], partition: str, region: str, host: str
) -> None:
    stack = deploy(template, partition=partition, region=region)
    assert stack.url == (
        f"https://{host}/cloudwatch/home?region={region}#dashboards/dashboard/video-team-{region}"
    )


def test_doctor_prints_the_url_or_why_there_is_none(template: dict[str, Any]) -> None:
    url = deploy(template).url
    assert dashboard_line({"DashboardUrl": url}, local=False) == f"dashboard: {url}"
    assert "sam deploy" in dashboard_line({}, local=False)
    assert "none for the local stack" in dashboard_line({}, local=True)
