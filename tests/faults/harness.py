"""The fault-injection harness: the whole local stack, adapters wrapped so that any call can crash or fail.

- `Plan`: "the Nth call of <adapter>.<method> (matching `where`) crashes (or raises `error`),
  before or after the call happened". A crash is `local.pump.SimulatedCrash`, a BaseException no
  function code may catch: the process is simply gone, and the pump redelivers the batch (SQS)
  or lets the next schedule tick run the poller again, as Lambda does.
- `Harness`: a LocalStack on a ManualClock with a known fake API key, the adapters wrapped, the
  outcome events tapped, the functions' logs captured; `settle()` drives it as the deployed stack
  would run (events at once, the schedule every minute); `check()` proves the invariants of
  issue 6 and returns the figures of the summary table.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore import xform_name

from local.emulator import ManualClock
from local.pump import SimulatedCrash
from local.stack import LocalStack
from tests.conftest import OutcomeTap
from wanedit import container
from wanedit.adapters.messaging import DeadLetterQueue
from wanedit.adapters.s3 import S3ObjectStore
from wanedit.adapters.secrets import ApiKeyFromSecret
from wanedit.dashscope import DashScopeClient
from wanedit.domain.job import Job, JobState

# A key nobody could mistake for a real one; the suite greps every output for it.
FAKE_KEY = "sk-faultsuite-7f3a9c1e5b2d4a6f8e0c-KNOWN-FAKE-KEY"
START = 1_795_600_000.0
SCHEDULE_SECONDS = 60.0  # the PollSchedule default: rate(1 minute)
# Short enough that a held or late create answer times out in a second of real time.
CREATE_TIMEOUT = (2.0, 1.0)
SIGNATURE_MARKERS = ("X-Amz-Signature", "Signature=", "X-Amz-Credential")


@dataclass
class Plan:
    """Make the `nth` matching call of `target.method` crash (or raise `error`)."""

    target: str  # store | objects | s3 | api | notifier | completion | downloader
    method: str
    nth: int = 1
    when: str = "after"  # "before": the call never happens; "after": it happened, its answer is lost
    where: Callable[..., bool] | None = None  # where(args, kwargs[, result]) -> counts this call
    error: Callable[[], BaseException] | None = None  # None: a SimulatedCrash
    times: int = 1  # how many consecutive matching calls from the nth on
    barrier: threading.Barrier | None = None  # instead of failing: wait here (races)
    seen: int = 0
    fired: int = 0

    def describe(self) -> str:
        what = "crash" if self.error is None else "fail"
        return f"{what} {self.when} {self.target}.{self.method} #{self.nth}"


def moving_to(state: JobState) -> Callable[..., bool]:
    """A `Plan.where` that selects the store transitions to `state`."""
    return lambda args, kwargs, *result: JobState(str(kwargs["to"] if "to" in kwargs else args[2])) is state


class Interceptor:
    """Counts calls, fires plans, and records every terminal transition a job makes."""

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self.calls: Counter[str] = Counter()
        self.terminal: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        self._crashed: SimulatedCrash | None = None  # a crash on a worker thread, for its caller

    def defer_crash(self, crash: SimulatedCrash) -> None:
        """A worker thread (s3transfer's) crashed: the process is gone, so its caller must be too."""
        with self._lock:
            self._crashed = crash

    def take_crash(self) -> SimulatedCrash | None:
        with self._lock:
            crash, self._crashed = self._crashed, None
        return crash

    def _matching(
        self, target: str, method: str, when: str, args: Any, kwargs: Any, result: Any
    ) -> Plan | None:
        with self._lock:
            for plan in self.plans:
                if (plan.target, plan.method, plan.when) != (target, method, when):
                    continue
                if plan.where is not None:
                    ok = plan.where(args, kwargs) if when == "before" else plan.where(args, kwargs, result)
                    if not ok:
                        continue
                plan.seen += 1
                if plan.nth <= plan.seen < plan.nth + plan.times:
                    plan.fired += 1
                    return plan
        return None

    def _fire(self, plan: Plan) -> None:
        if plan.barrier is not None:
            plan.barrier.wait(timeout=10)
            return
        raise plan.error() if plan.error is not None else SimulatedCrash(plan.describe())

    def before(self, target: str, method: str, args: Any, kwargs: Any) -> None:
        with self._lock:
            self.calls[f"{target}.{method}"] += 1
        plan = self._matching(target, method, "before", args, kwargs, None)
        if plan:
            self._fire(plan)

    def after(self, target: str, method: str, args: Any, kwargs: Any, result: Any) -> None:
        if target == "store":
            self._record_terminal(method, args, kwargs, result)
        plan = self._matching(target, method, "after", args, kwargs, result)
        if plan:
            self._fire(plan)

    def _record_terminal(self, method: str, args: Any, kwargs: Any, result: Any) -> None:
        if method == "transition" and result is not None:
            to = kwargs.get("to", args[2] if len(args) > 2 else None)
            if to is not None and JobState(to).is_terminal:
                with self._lock:
                    self.terminal[result.job_id].append(JobState(to).value)
        elif method == "put_new" and result is True:
            job: Job = args[0]
            if job.state.is_terminal:
                with self._lock:
                    self.terminal[job.job_id].append(job.state.value)


class Proxy:
    """Wraps an adapter: every public method call goes through the interceptor."""

    def __init__(
        self, name: str, inner: Any, interceptor: Interceptor, *, serialize: threading.Lock | None = None
    ) -> None:
        self._name, self._inner, self._ic = name, inner, interceptor
        self._serialize = serialize

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._ic.before(self._name, attr, args, kwargs)
            try:
                if self._serialize is not None:
                    with self._serialize:
                        result = value(*args, **kwargs)
                else:
                    result = value(*args, **kwargs)
            finally:
                crash = self._ic.take_crash()
                if crash is not None:
                    raise crash
            self._ic.after(self._name, attr, args, kwargs, result)
            return result

        return call


class S3Hooks:
    """The S3 client's own calls, intercepted as botocore events rather than by wrapping the client:
    s3transfer makes a result's uploads from its worker threads, with the client itself. A crash
    planned on a worker thread ends the whole invocation, as it ends a Lambda process: it is raised
    again on the thread that called the adapter (`Proxy`), once the adapter call is over."""

    def __init__(self, client: Any, interceptor: Interceptor) -> None:
        self._ic = interceptor  # replaced by a rewiring (`Harness.wire`): the hooks stay registered once
        client.meta.events.register("before-parameter-build.s3", self._before)
        client.meta.events.register("after-call.s3", self._after)

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._guard(lambda: self._ic.before("s3", xform_name(model.name), (), params))

    def _after(self, parsed: Any, model: Any, **_: Any) -> None:
        self._guard(lambda: self._ic.after("s3", xform_name(model.name), (), {}, parsed))

    def _guard(self, step: Callable[[], None]) -> None:
        try:
            step()
        except SimulatedCrash as crash:
            if threading.current_thread() is threading.main_thread():
                raise
            self._ic.defer_crash(crash)
            raise RuntimeError("the worker thread is gone with its process") from None


class SplitApi:
    """The API client, with creates on a short read timeout (held/late answers time out quickly)."""

    def __init__(self, create: DashScopeClient, rest: DashScopeClient) -> None:
        self._create, self._rest = create, rest

    def create_task(self, request: Any) -> Any:
        return self._create.create_task(request)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._rest, attr)


class LogCapture(logging.Handler):
    """Every record of the functions' loggers, rendered with all its extra fields."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STD_RECORD_FIELDS}
        self.lines.append(f"{record.levelname} {record.name} {message} {extras!r}")


_STD_RECORD_FIELDS = set(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__) | {"message"}


class Harness:
    """One local stack for one fault case.

    `stack_type` is `LocalStack` (moto's server on loopback) or any class with its interface, such
    as `bench.inproc.InProcessStack` (moto in process), which the chaos suite runs on.
    """

    def __init__(
        self,
        name: str,
        *,
        cap: int = 5,
        task_seconds: float = 60.0,
        emulator: dict[str, Any] | None = None,
        parameters: dict[str, str] | None = None,
        stack_type: Callable[..., Any] = LocalStack,
    ) -> None:
        self.name = name
        self.cap = cap
        self.clock = ManualClock(start=START)
        self.ic = Interceptor()
        self.logs = LogCapture()
        options: dict[str, Any] = {"parameters": parameters} if parameters is not None else {}
        self.stack = stack_type(
            emulator_clock=self.clock,
            task_seconds=task_seconds,
            max_concurrent_tasks=cap,
            api_key=FAKE_KEY,
            emulator_options=emulator,
            **options,
        )
        self.outcome_events: list[dict[str, Any]] = []
        self.topic_messages: list[dict[str, Any]] = []
        self.expected_dlq = 0
        self.result_unavailable = 0
        self.vanished: list[Any] = []  # SUCCEEDED tasks whose result the service itself refused for good
        self._saved_level = logging.NOTSET

    # lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> Harness:
        random.seed(self.name)  # the jitter of backoffs: reproducible per case
        self.stack.start()
        self.tap = OutcomeTap(self.stack)
        self._base = container.services()
        self._secrets = self.stack.client("secretsmanager")
        assert isinstance(self._base.objects, S3ObjectStore)
        self._s3_hooks = S3Hooks(self._base.objects._client, self.ic)
        self.wire()
        for function in ("submit", "poll", "complete"):
            # Powertools adds its own handler to the "wanedit" logger on first import, unless the
            # logger has one already: import them before the capture is attached.
            importlib.import_module(f"functions.{function}.app")
        root = logging.getLogger("wanedit")
        self._saved_level = root.level
        root.setLevel(logging.DEBUG)
        root.addHandler(self.logs)
        return self

    def wire(
        self,
        *,
        create_timeout: tuple[float, float] = CREATE_TIMEOUT,
        read_timeout: tuple[float, float] | None = None,
        downloader: Any = None,
        **services: Any,
    ) -> None:
        """Install the stack's services with every adapter wrapped by the interceptor (`self.ic`).

        `read_timeout`: the (connect, read) timeout of queries, lists and cancels (None: the
        client's default); `downloader`: the result downloader to wrap (None: the stack's);
        `services`: further replacements (e.g. `clock`, `settings`).
        """
        base = self._base
        self._s3_hooks._ic = self.ic
        # A fresh key reader (its cache empty) per wiring: each run starts from the same state.
        key = ApiKeyFromSecret(base.settings.api_key_secret_id, client=self._secrets)
        timeouts: dict[str, Any] = {"timeout": read_timeout} if read_timeout else {}
        rest = DashScopeClient(
            key, base.api.base_url, sleep=self.stack.clock.sleep, rng=random.Random(1), **timeouts
        )
        create = DashScopeClient(key, base.api.base_url, timeout=create_timeout, sleep=self.stack.clock.sleep)
        objects = base.objects
        table = threading.Lock()  # one JobTable: the store and the ledger share its per-item atomicity
        self.svc = dataclasses.replace(
            base,
            # moto's server does not make a conditional update atomic against a concurrent one
            # (DynamoDB does, per item): two racing QUEUED -> SUBMITTING both "won" there. The
            # store's calls are serialized to give the races below DynamoDB's guarantee back.
            store=Proxy("store", base.store, self.ic, serialize=table),
            ledger=Proxy("ledger", base.ledger, self.ic, serialize=table),
            objects=Proxy("objects", objects, self.ic),
            api=Proxy("api", SplitApi(create, rest), self.ic),
            notifier=Proxy("notifier", base.notifier, self.ic),
            completion=Proxy("completion", base.completion, self.ic),
            downloader=Proxy("downloader", downloader or base.downloader, self.ic),
            long_clips=Proxy("long_clips", base.long_clips, self.ic),
            **services,
        )
        container.install(self.svc)

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger("wanedit")
        root.removeHandler(self.logs)
        root.setLevel(self._saved_level)
        self.stack.stop()

    # driving -------------------------------------------------------------------------------------

    @property
    def emulator(self) -> Any:
        return self.stack.emulator

    @property
    def pump(self) -> Any:
        return self.stack.pump

    @property
    def bucket(self) -> str:
        return str(self.stack.resources.bucket)

    def plan(self, *plans: Plan) -> None:
        self.ic.plans.extend(plans)

    def put(self, key: str, body: bytes) -> str:
        response = self.stack.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        return str(response.get("VersionId", ""))

    def delete(self, key: str) -> None:
        self.stack.client("s3").delete_object(Bucket=self.bucket, Key=key)

    def pair(self, stem: str, clip: bytes, sidecar: bytes, *, sidecar_first: bool = False) -> None:
        uploads = [(f"incoming/{stem}.mp4", clip), (f"incoming/{stem}.json", sidecar)]
        for key, body in reversed(uploads) if sidecar_first else uploads:
            self.put(key, body)

    def advance(self, seconds: float) -> None:
        self.stack.clock.sleep(seconds)
        self.emulator.tick()

    def tick(self) -> None:
        """One scheduled poller run; the schedule's next run is a minute after this one began."""
        began = self.clock.now()
        self.pump.tick()
        left = began + SCHEDULE_SECONDS - self.clock.now()
        if left > 0:
            self.advance(left)

    def jobs(self) -> list[Job]:
        return list(self.svc.store.list_jobs())

    def job(self, stem: str) -> Job:
        matches = [job for job in self.jobs() if job.stem == stem]
        assert len(matches) == 1, f"{len(matches)} jobs for {stem}"
        return matches[0]

    def queue_depth(self, url: str) -> int:
        attributes = self.stack.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def settled(self) -> bool:
        """Every job terminal (none left on the poller's lists, none held) and both queues empty."""
        r = self.stack.resources
        store = self.svc.store
        return (
            store.next_poll_due() is None
            and store.next_queued_due() is None
            and not store.held(1)
            and self.queue_depth(r.ingest_queue_url) == 0
            and self.queue_depth(r.complete_queue_url) == 0
        )

    def skip_idle_minutes(self) -> None:
        """Jump over schedule runs that would find nothing due (they change nothing)."""
        store = self.svc.store
        due = [t for t in (store.next_poll_due(), store.next_queued_due()) if t is not None]
        if due and min(due) - self.clock.now() > SCHEDULE_SECONDS:
            minutes = int((min(due) - self.clock.now()) // SCHEDULE_SECONDS)
            self.advance(minutes * SCHEDULE_SECONDS)

    def settle(self, max_ticks: int = 60) -> int:
        """Deliver events and run the schedule until every job is terminal and the queues are empty."""
        for ticks in range(max_ticks):
            self.pump.drain()
            if self.settled():
                return ticks
            self.skip_idle_minutes()
            self.tick()
        self.pump.drain()
        assert self.settled(), (
            f"not settled after {max_ticks} ticks: {[(j.stem, j.state) for j in self.jobs()]}"
        )
        return max_ticks

    def dead_letters(self, queue: str, *, visibility_seconds: int = 300) -> DeadLetterQueue:
        """The DLQ of "ingest" or "complete", wired to its source queue (for the redrive)."""
        r = self.stack.resources
        dlq, source = {
            "ingest": (r.ingest_dlq_url, r.ingest_queue_url),
            "complete": (r.complete_dlq_url, r.complete_queue_url),
        }[queue]
        return DeadLetterQueue(
            dlq, source, client=self.stack.client("sqs"), visibility_seconds=visibility_seconds
        )

    def vanish(self, task: Any) -> None:
        """The service forgets a PENDING or RUNNING task (queries say UNKNOWN); it still counts as made."""
        self.emulator.lose_task(task.task_id)
        self.vanished.append(task)

    # evidence ------------------------------------------------------------------------------------

    def dlq_depth(self) -> int:
        r = self.stack.resources
        return self.queue_depth(r.ingest_dlq_url) + self.queue_depth(r.complete_dlq_url)

    def bucket_documents(self) -> dict[str, bytes]:
        """Every version of every object in the bucket (key#version -> bytes)."""
        s3 = self.stack.client("s3")
        found: dict[str, bytes] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for version in page.get("Versions", []):
                body = s3.get_object(Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"])
                found[f"{version['Key']}#{version['VersionId']}"] = bytes(body["Body"].read())
        return found

    def table_items(self) -> list[str]:
        table = self.stack.client("dynamodb")
        items: list[str] = []
        for page in table.get_paginator("scan").paginate(TableName=self.stack.resources.table):
            items += [json.dumps(item, default=str) for item in page.get("Items", [])]
        return items

    def collect_outcomes(self) -> None:
        self.outcome_events += self.tap.bus_events()
        self.topic_messages += self.tap.topic_messages()


@dataclass
class Figures:
    """One row of the summary table."""

    case: str
    fault: str
    jobs: int
    tasks: int
    end_states: str
    max_in_flight: int
    throttled: int
    dlq: int
    lost: int
    unavailable: int
    ticks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def max_in_flight(tasks: list[Any], now: float, *, lifetime: float | None = None) -> int:
    """The most tasks the service held at once (created, not yet finished), from its own records.

    With `lifetime`, a task counts no longer than that after its creation (the service forgets a
    task id after 24 h: queries say UNKNOWN from then on).
    """
    edges: list[tuple[float, int]] = []
    for task in tasks:
        end = task.end_at if task.end_at is not None and task.final else now
        if lifetime is not None:
            end = min(end, task.submit_at + lifetime)
        edges += [(task.submit_at, 1), (end, -1)]
    running = peak = 0
    for _, delta in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += delta
        peak = max(peak, running)
    return peak


def check(h: Harness, expected: dict[str, int], *, fault: str, ticks: int) -> Figures:
    """The invariants of issue 6, for one case; returns its figures."""
    h.collect_outcomes()
    jobs = h.jobs()
    tasks = h.emulator.tasks() + h.vanished
    counters = h.emulator.counters
    states = Counter(job.state.value for job in jobs)

    # 1. every job ends in exactly one terminal state, reached by exactly one terminal transition
    assert all(job.state.is_terminal for job in jobs), [(j.stem, j.state) for j in jobs]
    for job in jobs:
        assert h.ic.terminal[job.job_id] == [job.state.value], (job.stem, h.ic.terminal[job.job_id])
    assert dict(states) == expected, f"end states {dict(states)} != expected {expected}"
    assert len({job.job_id for job in jobs}) == len(jobs)

    # 2. one task per content version: every task the service made is owned by exactly one job,
    #    and no job owns more than one
    owned = [job.task_id for job in jobs if job.task_id]
    assert len(owned) == len(set(owned)), "two jobs share a task"
    made = [task.task_id for task in tasks]
    assert counters["tasks_created"] == len(made)
    orphans = set(made) - set(owned)
    assert not orphans, f"tasks no job owns (duplicates or lost creates): {orphans}"
    assert set(owned) <= set(made)
    contents = Counter((job.video.identity, job.sidecar.identity) for job in jobs if job.task_id)
    assert all(n == 1 for n in contents.values())

    # 3. never more in flight than the cap (the service's own view, and its RUNNING counter)
    peak = max_in_flight(tasks, h.clock.now())
    assert peak <= h.cap, f"{peak} tasks in flight with cap {h.cap}"
    assert counters["max_running_seen"] <= h.cap

    # 4. every SUCCEEDED task is persisted (unless the service itself refused the result for good)
    by_task = {job.task_id: job for job in jobs if job.task_id}
    lost = 0
    unavailable = 0
    s3 = h.stack.client("s3")
    for task in tasks:
        if task.status != "SUCCEEDED":
            continue
        job = by_task[task.task_id]
        if job.state is JobState.PERSISTED:
            manifest = (
                json.loads(s3.get_object(Bucket=h.bucket, Key=job.manifest_key)["Body"].read())
                if job.manifest_key
                else {}
            )
            if manifest.get("job_id") != job.job_id and not _has_version_for(h, job):
                lost += 1
        elif job.state is JobState.EXPIRED and job.error_code == "ResultExpired":
            unavailable += 1
        else:
            lost += 1
    assert lost == 0, f"{lost} finished edits lost"
    assert unavailable == h.result_unavailable, (
        f"{unavailable} results refused, expected {h.result_unavailable}"
    )

    # 5. every ended job is reported: a manifest for PERSISTED, a report for the others
    documents = h.bucket_documents()
    keys = {name.split("#", 1)[0] for name in documents}
    for job in jobs:
        if job.state is JobState.PERSISTED:
            assert job.output_key in keys and job.manifest_key in keys
        else:
            assert job.report_key in keys, f"no report for {job.stem} ({job.state})"
    announced = Counter(event["detail"]["job_id"] for event in h.outcome_events)
    for job in jobs:
        assert announced[job.job_id] >= 1, f"{job.stem} ended {job.state} without an event"

    # 6. poison ends in a DLQ, nothing else does
    assert h.dlq_depth() == h.expected_dlq, f"DLQ holds {h.dlq_depth()}, expected {h.expected_dlq}"

    # 7. the API key never leaves Secrets Manager and the HTTP Authorization header; no bearer URL
    #    in what users read
    leak_check(h, documents)

    return Figures(
        case=h.name,
        fault=fault,
        jobs=len(jobs),
        tasks=len(made),
        end_states=", ".join(f"{state} x{n}" if n > 1 else state for state, n in sorted(states.items()))
        or "-",
        max_in_flight=peak,
        throttled=int(counters["throttled"]),
        dlq=h.dlq_depth(),
        lost=lost,
        unavailable=unavailable,
        ticks=ticks,
    )


def _has_version_for(h: Harness, job: Job) -> bool:
    """A later job of the same stem overwrote the manifest: this job's version must still exist."""
    s3 = h.stack.client("s3")
    versions = s3.list_object_versions(Bucket=h.bucket, Prefix=job.manifest_key).get("Versions", [])
    for version in versions:
        body = s3.get_object(Bucket=h.bucket, Key=job.manifest_key, VersionId=version["VersionId"])
        if json.loads(body["Body"].read()).get("job_id") == job.job_id:
            return True
    return False


def leak_check(h: Harness, documents: dict[str, bytes]) -> None:
    key = FAKE_KEY.encode()
    for name, body in documents.items():
        assert key not in body, f"API key in s3://{h.bucket}/{name}"
        if name.split("#", 1)[0].endswith(".json"):
            for marker in SIGNATURE_MARKERS:
                assert marker.encode() not in body, f"a signed URL in {name}"
    for event in h.outcome_events + h.topic_messages:
        text = json.dumps(event)
        assert FAKE_KEY not in text
        assert not any(marker in text for marker in SIGNATURE_MARKERS), text
    for line in h.logs.lines:
        assert FAKE_KEY not in line, line
    for item in h.table_items():
        assert FAKE_KEY not in item
    if h.jobs():
        assert h.logs.lines, "no log captured: the capture is broken"
