"""Least privilege, proven in the suite: every AWS call a handler makes, checked against its role.

A pytest plugin (registered from tests/conftest.py). While a handler runs — the local pump sets
`local.pump.RUNNING_FUNCTION` around each invocation, and handlers a test calls directly are
wrapped to set it too — every SDK call is recorded: `BaseClient._make_api_call` for requests, and
`_emit_api_params` outside a request for presigned URLs (which are authorized, when used, with the
signer's permissions). Worker threads inherit the running function: `ThreadPoolExecutor.submit`
runs each task in a copy of the submitter's context (the poller's query pool, s3transfer's,
the multipart uploader's).

After each test its calls are mapped to IAM requests (tests/iam/actions.py) and evaluated against
that function's role as SAM expands it (tests/iam/policy.py). A denial fails that test. At the end
`.wanedit/iam-report.json` lists, per function, the calls seen, the denials and the granted
(action, resource) pairs that no call used; the terminal summary has the figures.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import json
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pytest

from tests.iam.actions import Authorization, Call, Unmapped, authorizations
from tests.iam.policy import (
    IMPLIED_GRANTS,
    DeployVenvMissing,
    Statement,
    evaluate,
    glob_matches,
    role_statements,
)

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / ".wanedit" / "iam-report.json"
# One folder per run (the controller's pid, inherited by its xdist workers), so two runs at once
# never mix their figures.
RUN = os.environ.setdefault("WANEDIT_IAM_RUN", str(os.getpid()))
PARTS = REPO / ".wanedit" / "iam" / f"run-{RUN}"
# Only what the IAM rules read: never bodies (videos, JSON documents), never the secret's value.
_KEPT_PARAMS = (
    "Bucket",
    "Key",
    "VersionId",
    "Prefix",
    "Tagging",
    "CopySource",
    "TableName",
    "IndexName",
    "QueueUrl",
    "QueueName",
    "TopicArn",
    "SecretId",
)
_in_request: ContextVar[bool] = ContextVar("wanedit_iam_in_request", default=False)


def _kept(params: dict[str, Any]) -> dict[str, Any]:
    kept = {k: params[k] for k in _KEPT_PARAMS if k in params}
    if "RequestItems" in params:
        kept["RequestItems"] = {name: None for name in params["RequestItems"]}
    if "Entries" in params:
        kept["Entries"] = [{"EventBusName": e.get("EventBusName", "default")} for e in params["Entries"]]
    if "TransactItems" in params:
        kept["TransactItems"] = [
            {kind: {"TableName": operation["TableName"]} for kind, operation in item.items()}
            for item in params["TransactItems"]
        ]
    if "Delete" in params:
        objects = [{k: o[k] for k in ("Key", "VersionId") if k in o} for o in params["Delete"]["Objects"]]
        kept["Delete"] = {"Objects": objects}
    return kept


class Recorder:
    def __init__(self, worker: str) -> None:
        from local.cfn import load_template

        self.worker = worker
        template = load_template()
        declared = template["Globals"]["Function"]["Environment"]["Variables"]
        self._env_names = [*sorted(declared), "AWS_REGION", "AWS_DEFAULT_REGION"]
        self.pending: list[tuple[str, Call, tuple[tuple[str, str], ...]]] = []
        self.operations: dict[str, Counter[str]] = defaultdict(Counter)
        self.denied: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.unmapped: dict[str, Counter[str]] = defaultdict(Counter)
        self.used: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        self.grants: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
        self.shown: dict[str, str] = {}  # "function label action index" -> a resource ARN, for the report
        self._roles: dict[tuple[tuple[str, str], ...], dict[str, list[Statement]]] = {}
        self._originals: list[tuple[Any, str, Any]] = []

    # recording ---------------------------------------------------------------------------------

    def install(self) -> None:
        from botocore.client import BaseClient

        from local import pump

        recorder = self
        make_api_call, emit_api_params = BaseClient._make_api_call, BaseClient._emit_api_params
        submit = ThreadPoolExecutor.submit

        def recorded_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            function = pump.RUNNING_FUNCTION.get()
            if function is None:
                return make_api_call(client, operation_name, api_params)
            token = _in_request.set(True)
            status, code = 200, None
            try:
                return make_api_call(client, operation_name, api_params)
            except Exception as error:
                response = getattr(error, "response", {}) or {}
                status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = response.get("Error", {}).get("Code")
                raise
            finally:
                _in_request.reset(token)
                recorder.record(function, client, operation_name, api_params, status, code)

        def recorded_params(client: Any, api_params: Any, operation_model: Any, context: Any) -> Any:
            function = pump.RUNNING_FUNCTION.get()
            if function is not None and not _in_request.get():  # a presigned URL being made
                recorder.record(function, client, operation_model.name, api_params, None, None)
            return emit_api_params(client, api_params, operation_model, context)

        def submit_in_context(executor: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            return submit(executor, contextvars.copy_context().run, fn, *args, **kwargs)

        for owner, name, replacement in (
            (BaseClient, "_make_api_call", recorded_call),
            (BaseClient, "_emit_api_params", recorded_params),
            (ThreadPoolExecutor, "submit", submit_in_context),
        ):
            self._originals.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)
        for name, logical_id in pump.FUNCTIONS.items():
            module = importlib.import_module(f"functions.{name}.app")
            handler = vars(module)["lambda_handler"]
            self._originals.append((module, "lambda_handler", handler))
            vars(module)["lambda_handler"] = _attributed(handler, logical_id)

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._originals):
            setattr(owner, name, original)
        self._originals.clear()

    def record(
        self, function: str, client: Any, operation: str, params: Any, status: int | None, code: str | None
    ) -> None:
        meta = client.meta
        call = Call(
            service=meta.service_model.service_name,
            operation=operation,
            params=_kept(dict(params or {})),
            region=meta.region_name or "us-east-1",
            account="",
            status=status,
            error_code=code,
        )
        environment = tuple((name, os.environ.get(name, "")) for name in self._env_names)
        self.pending.append((function, call, environment))

    # judging -------------------------------------------------------------------------------------

    def judge(self) -> list[str]:
        """Evaluate the calls recorded since the last judge(); the denials, as messages."""
        problems: list[str] = []
        pending, self.pending = self.pending, []
        for function, call, environment in pending:
            roles = self._roles_for(environment)
            statements = roles[function]
            for statement in statements:
                if not statement.managed:
                    for action in statement.actions:
                        for index, resource in enumerate(statement.resources):
                            # Keyed by the resource's place in the statement, not its ARN: every
                            # local stack has its own names (the secret's suffix is random).
                            grant = (statement.label(), action, str(index))
                            self.grants[function].add(grant)
                            self.shown.setdefault(f"{function} {' '.join(grant)}", resource)
            self.operations[function][f"{call.service}:{call.operation}"] += 1
            account = _account(dict(environment))
            try:
                requests = authorizations(_with_account(call, account))
            except Unmapped as unmapped:
                self.unmapped[function][str(unmapped)] += 1
                problems.append(f"{function}: no IAM rule for {unmapped} (add one to tests/iam/actions.py)")
                continue
            for request in requests:
                allowing = evaluate(statements, request)
                if allowing is None:
                    entry = {
                        "call": f"{call.service}:{call.operation}",
                        "action": request.action,
                        "resource": request.resource,
                        "context": dict(request.context),
                    }
                    self.denied[function].append(entry)
                    problems.append(f"{function}: {request.action} on {request.resource} denied ({entry})")
                    continue
                for statement in allowing:
                    self._mark_used(function, statement, request)
        return problems

    def _mark_used(self, function: str, statement: Statement, request: Authorization) -> None:
        if statement.managed:
            return
        for action in statement.actions:
            if not glob_matches(action, request.action, ignore_case=True):
                continue
            for index, resource in enumerate(statement.resources):
                if glob_matches(resource, request.resource):
                    self.used[function].add((statement.label(), action, str(index)))

    def _roles_for(self, environment: tuple[tuple[str, str], ...]) -> dict[str, list[Statement]]:
        if environment not in self._roles:
            self._roles[environment] = role_statements(dict(environment))
        return self._roles[environment]

    # reporting -----------------------------------------------------------------------------------

    def save(self) -> None:
        PARTS.mkdir(parents=True, exist_ok=True)
        partial = PARTS / f"{self.worker}.json.tmp"
        partial.write_text(json.dumps(self.part()))
        partial.replace(PARTS / f"{self.worker}.json")

    def part(self) -> dict[str, Any]:
        functions = set(self.operations) | set(self.grants)
        return {
            function: {
                "operations": dict(self.operations[function]),
                "denied": self.denied[function],
                "unmapped": dict(self.unmapped[function]),
                "grants": sorted(self.grants[function]),
                "used": sorted(self.used[function]),
                "shown": {
                    k.split(" ", 1)[1]: v for k, v in self.shown.items() if k.startswith(f"{function} ")
                },
            }
            for function in sorted(functions)
        }


def _account(environment: dict[str, str]) -> str:
    for value in environment.values():
        parts = value.split(":")
        if value.startswith("arn:aws:") and len(parts) > 4 and parts[4].isdigit():
            return parts[4]
    return "123456789012"


def _with_account(call: Call, account: str) -> Call:
    return Call(call.service, call.operation, call.params, call.region, account, call.status, call.error_code)


def _attributed(handler: Any, logical_id: str) -> Any:
    """A handler a test calls directly runs as its function, as one the pump invokes does."""
    from local import pump

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        if pump.RUNNING_FUNCTION.get() is not None:
            return handler(event, context)
        token = pump.RUNNING_FUNCTION.set(logical_id)
        try:
            return handler(event, context)
        finally:
            pump.RUNNING_FUNCTION.reset(token)

    return run


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from the workers' parts: per function, calls, denials and unused grants."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for function, data in part.items():
            into = merged.setdefault(
                function,
                {
                    "operations": Counter(),
                    "denied": [],
                    "unmapped": Counter(),
                    "grants": set(),
                    "used": set(),
                    "shown": {},
                },
            )
            into["operations"].update(data["operations"])
            into["denied"] += data["denied"]
            into["unmapped"].update(data["unmapped"])
            into["grants"] |= {tuple(g) for g in data["grants"]}
            into["used"] |= {tuple(u) for u in data["used"]}
            into["shown"] = {**data.get("shown", {}), **into["shown"]}
    report: dict[str, Any] = {}
    for function, data in sorted(merged.items()):
        unused = sorted(data["grants"] - data["used"])
        report[function] = {
            "calls": sum(data["operations"].values()),
            "operations": dict(sorted(data["operations"].items())),
            "denied": data["denied"],
            "unmapped": dict(data["unmapped"]),
            "unused_grants": [
                {"statement": s, "action": a, "resource": data["shown"].get(f"{s} {a} {i}", i)}
                for s, a, i in unused
                if a not in IMPLIED_GRANTS
            ],
            "implied_grants": [
                {"statement": s, "action": a, "why": IMPLIED_GRANTS[a]}
                for s, a, _ in unused
                if a in IMPLIED_GRANTS
            ],
        }
    return report


# ------------------------------------------------------------------------------------ pytest hooks

_recorder: Recorder | None = None
_REPORTED = pytest.StashKey[bool]()
_disabled_reason = ""


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, OSError):
        return False
    return True


def _worker_id(config: pytest.Config) -> str:
    return str(getattr(config, "workerinput", {}).get("workerid", "main"))


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    global _recorder, _disabled_reason
    if _is_controller(config):
        for stale in PARTS.parent.glob("run-*") if PARTS.parent.exists() else []:
            if stale != PARTS and not _alive(stale.name.removeprefix("run-")):
                shutil.rmtree(stale, ignore_errors=True)
    uses_workers = _is_controller(config) and getattr(config.option, "numprocesses", None)
    if uses_workers:
        return  # the workers record; the controller merges
    try:
        from tests.iam.policy import transformed_template

        transformed_template()  # the SAM transform, once, before any test needs it
    except DeployVenvMissing as missing:
        if os.environ.get("CI"):
            raise pytest.UsageError(f"IAM recorder: {missing}") from None
        _disabled_reason = str(missing)
        return
    _recorder = Recorder(_worker_id(config))
    _recorder.install()


@pytest.fixture(autouse=True)
def _iam_judged() -> Iterator[None]:
    yield
    if _recorder is not None:
        problems = _recorder.judge()
        _recorder.save()  # after every test: an interrupted run still leaves its figures
        if problems:
            pytest.fail("least privilege: " + "; ".join(problems[:5]), pytrace=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _recorder is not None:
        _recorder.judge()
        _recorder.uninstall()
        _recorder.save()
    if _is_controller(config) and PARTS.exists():
        parts = [json.loads(path.read_text()) for path in sorted(PARTS.glob("*.json"))]
        if any(data["operations"] for part in parts for data in part.values()):
            report = merge(parts)
            REPORT.write_text(json.dumps(report, indent=2) + "\n")
            config.stash[_REPORTED] = True
            if any(data["denied"] or data["unmapped"] for data in report.values()):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not _is_controller(config):
        return
    if _disabled_reason:
        terminalreporter.write_line(f"IAM recorder off: {_disabled_reason}")
        return
    if not config.stash.get(_REPORTED, False):
        return  # no handler ran in this session: nothing to say
    report = json.loads(REPORT.read_text())
    called = {f: d for f, d in report.items() if d["calls"]}
    if not called:
        return
    terminalreporter.section("least privilege (IAM recorder)")
    for function, data in called.items():
        terminalreporter.write_line(
            f"{function}: {data['calls']} calls ({len(data['operations'])} operations), "
            f"{len(data['denied'])} denied, {len(data['unused_grants'])} granted but unused"
        )
        for grant in data["unused_grants"]:
            terminalreporter.write_line(
                f"    unused: {grant['action']} on {grant['resource']} ({grant['statement']})"
            )
    terminalreporter.write_line(f"report: {REPORT.relative_to(REPO)}")


def main() -> int:
    """`python -m tests.iam.recorder`: merge the latest run's parts into the report (an interrupted
    run's too)."""
    runs = sorted(PARTS.parent.glob("run-*"), key=lambda path: path.stat().st_mtime)
    parts = [json.loads(path.read_text()) for path in sorted(runs[-1].glob("*.json"))] if runs else []
    report = merge(parts)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    for function, data in report.items():
        denied, unused = len(data["denied"]), len(data["unused_grants"])
        print(f"{function}: {data['calls']} calls, {denied} denied, {unused} unused")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
