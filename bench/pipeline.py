"""One run of the real pipeline on a simulated clock: N clip+sidecar pairs uploaded at t0, to the end.

What runs is what a deployment runs: the Submit/Poll/Complete handlers (through the local event
pump) with their use cases and adapters, moto's server for AWS on loopback, and the DashScope
emulator (cap 5 RUNNING, 5 creates/s, 20 queries/s) on a `ManualClock`. Only time is simulated:
the poller's `clock.sleep` advances the emulator's clock, so an hour of work takes seconds.

- Task run times are seeded (uniform 60-300 s), fed to the emulator's `task_seconds_queue`.
- The emulator is in no-render mode (`prerendered=`): every result is one small MP4, so 2000
  tasks do not encode 2000 videos. Pairing, validation (ranged GETs) and persisting still happen.
- The schedule is EventBridge's `rate(1 minute)`: one PollFunction invocation per minute of
  simulated time, each polling until its deadline (the handler's own margin).
- Completion messages are delivered whenever the poller waits (as Lambda would run the
  CompleteFunction concurrently); persisting takes no simulated time.

Everything the handlers spend is counted: AWS requests by service and operation (botocore
event hooks on the default session, so the adapters are untouched), modeled DynamoDB capacity
units, Lambda invocations and durations, and DashScope calls (emulator counters plus a
per-task count of queries).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

import bench.common  # noqa: F401 - environment for the handlers

SCHEDULE_SECONDS = 60.0
TASK_SECONDS = (60.0, 300.0)
CAP = 5
START = 1_795_600_000.0  # a fixed simulated epoch: runs are reproducible
HANDLERS = ("submit", "poll", "complete")
TRANSPORTS = ("inprocess", "server")


# -- accounting ------------------------------------------------------------------------------------


class CallCounter:
    """AWS requests by (actor, service, operation), and modeled DynamoDB read/write units.

    The actor is the Lambda function whose handler is running on this thread, or on the main thread
    for a worker thread's calls ("harness" outside any: the benchmark's own uploads and checks; the
    pump's SQS receive/delete outside a handler are what Lambda's event source mapping would do
    and are counted as "esm").

    DynamoDB units are modeled (moto reports none): a write costs ceil(item KB) on the table, plus
    twice that on the ActiveByNextPoll index (projection ALL) when it sets the index keys (an
    index key change is a delete and a put) and once when it removes them; a consistent GetItem
    costs ceil(size / 4 KB) read units, an index Query or a Scan half of ceil(returned / 4 KB),
    at least 0.5.
    """

    def __init__(self) -> None:
        self.local = threading.local()
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.rru: defaultdict[str, float] = defaultdict(float)
        self.wru: defaultdict[str, float] = defaultdict(float)
        self.sizes: dict[str, int] = {}
        self.enabled = False
        self._lock = threading.Lock()
        self._main_stack: list[str] = []

    # the actor -------------------------------------------------------------------------------
    def actor(self) -> str:
        """This thread's innermost actor; on a worker thread a handler started (upload_stream's part
        uploads), the actor running on the main thread, where the pump invokes every handler."""
        stack = getattr(self.local, "stack", None) or self._main_stack
        return stack[-1] if stack else "harness"

    @contextlib.contextmanager
    def acting(self, name: str) -> Iterator[None]:
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
            if threading.current_thread() is threading.main_thread():
                self._main_stack = stack
        stack.append(name)
        try:
            yield
        finally:
            stack.pop()

    # botocore hooks --------------------------------------------------------------------------
    def install(self, session: Any) -> None:
        session.events.register("before-parameter-build", self._before)
        session.events.register("after-call", self._after)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _after(self, parsed: Any, model: Any, context: dict[str, Any], event_name: str, **_: Any) -> None:
        if not self.enabled:
            return
        service = event_name.split(".")[1]
        operation = model.name
        actor = self.actor()
        if (
            actor == "harness"
            and service == "sqs"
            and operation
            in (
                "ReceiveMessage",
                "DeleteMessage",
                "ChangeMessageVisibility",
            )
        ):
            actor = "esm"
        with self._lock:
            self.calls[(actor, service, operation)] += 1
            if service == "dynamodb" and actor != "harness":
                self._units(actor, operation, context.get("bench_params") or {}, parsed or {})

    def _units(self, actor: str, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        def size(item: Any) -> int:
            return len(json.dumps(item, default=str))

        def pk_of(params: dict[str, Any]) -> str:
            key = params.get("Key") or params.get("Item") or {}
            pk = key.get("pk", "")
            return str(pk.get("S", "") if isinstance(pk, dict) else pk)

        if operation in ("GetItem",):
            item = parsed.get("Item")
            n = size(item) if item else 1
            if item:
                self.sizes[pk_of(params)] = n
            units = math.ceil(n / 4096)
            self.rru[actor] += units if params.get("ConsistentRead") else units / 2
        elif operation in ("Query", "Scan"):
            n = sum(size(item) for item in parsed.get("Items", []))
            self.rru[actor] += max(0.5, math.ceil(n / 4096) / 2)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            pk = pk_of(params)
            if operation == "PutItem":
                self.sizes[pk] = size(params.get("Item"))
            kb = math.ceil(self.sizes.get(pk, 1024) / 1024)
            units = kb
            expression = str(params.get("UpdateExpression", ""))
            values = params.get("ExpressionAttributeValues") or {}
            if operation == "PutItem" and "active" in (params.get("Item") or {}):
                units += kb
            elif ":active" in values:
                units += 2 * kb
            elif "#active" in expression:
                units += kb
            self.wru[actor] += units

    def by_service(self, actors: tuple[str, ...] = ("submit", "poll", "complete", "esm")) -> Counter[str]:
        out: Counter[str] = Counter()
        for (actor, service, _op), n in self.calls.items():
            if actor in actors:
                out[service] += n
        return out

    def operations(
        self, service: str, actors: tuple[str, ...] = ("submit", "poll", "complete", "esm")
    ) -> Counter[str]:
        out: Counter[str] = Counter()
        for (actor, svc, op), n in self.calls.items():
            if actor in actors and svc == service:
                out[op] += n
        return out


@dataclass
class Invocations:
    """Lambda invocations and billed durations (simulated seconds for the poller, which sleeps;
    wall seconds on this machine for the others, whose simulated duration is zero)."""

    count: Counter[str] = field(default_factory=Counter)
    billed_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    wall_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))


class CountingApi:
    """The installed DashScope client, counting queries per task id (delegates everything)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.queries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def get_task(self, task_id: str) -> Any:
        with self._lock:
            self.queries[task_id] += 1
        return self._inner.get_task(task_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CountingSends:
    """The installed completion queue, counting messages sent (delegates everything)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.sent = 0
        self._lock = threading.Lock()

    def send(self, *args: Any, **kwargs: Any) -> Any:
        result = self._inner.send(*args, **kwargs)
        with self._lock:
            self.sent += 1
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class BenchClock:
    """The stack's simulated clock; before each wait, runs what Lambda would run meanwhile."""

    def __init__(self, manual: Any, meanwhile: Callable[[], None]) -> None:
        self.manual = manual
        self._meanwhile = meanwhile

    def now(self) -> float:
        return float(self.manual.now())

    def sleep(self, seconds: float) -> None:
        self._meanwhile()
        if seconds > 0:
            self.manual.advance(seconds)


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class PipelineRun:
    n: int
    seed: int
    task_seconds: list[float]  # as drawn (the optimum depends only on the multiset)
    pending_seconds: float
    t0: float
    makespan: float  # t0 -> last PERSISTED (simulated seconds)
    last_succeeded: float  # t0 -> last completion message
    optimum: float
    fifo_ideal: float
    states: Counter[str]
    detection: list[float]  # task SUCCEEDED -> completion message, per job
    detection_minute_baseline: list[float]  # the same tasks, polled once a minute on the schedule
    creates: int
    tasks_created: int
    queries: int
    lists: int
    throttled: int
    duplicate_creates: int
    per_task_calls: list[tuple[float, int]]  # (task run seconds, creates + queries for it)
    max_running_seen: int
    calls: CallCounter
    invocations: Invocations
    usage_seconds: float  # sum of usage.duration (the API's billing unit)
    ingest_events: int
    wall_seconds: float
    result_bytes: int
    clip_bytes: int
    transport: str = "inprocess"

    @property
    def ratio(self) -> float:
        return self.makespan / self.optimum

    @property
    def api_calls(self) -> int:
        return self.creates + self.queries + self.lists

    @property
    def persisted(self) -> int:
        return self.states.get("PERSISTED", 0)


def optimum(task_seconds: list[float], pending: float, cap: int = CAP) -> float:
    """The lower bound max(sum t / cap, max t), each task plus one submission (the API's minimum PENDING)."""
    each = [t + pending for t in task_seconds]
    return max(sum(each) / cap, max(each))


def fifo_ideal(task_seconds: list[float], pending: float, cap: int = CAP) -> float:
    """Makespan of a perfect FIFO pipeline: each task, in creation order, created the instant a
    slot frees (zero detection delay), then PENDING `pending` s: what no-overhead polling would give."""
    free = [0.0] * cap
    for t in task_seconds:
        i = min(range(cap), key=free.__getitem__)
        free[i] += pending + t
    return max(free)


def _sidecar(i: int) -> bytes:
    return json.dumps({"prompt": f"Turn scene {i} into a claymation style", "resolution": "720P"}).encode()


def run_pipeline(
    n: int,
    *,
    seed: int = 7,
    log: Callable[[str], None] | None = None,
    transport: str = "inprocess",
    verify: bool = False,
) -> PipelineRun:
    """`transport`: "inprocess" (moto.mock_aws with bench/fastmoto.py's shortcuts, the default) or
    "server" (moto's HTTP server on loopback, as `wanedit local up`); the handlers, emulator and
    pump are the same in both. `verify` (in process): check every shortcut against moto's own."""
    from bench.common import sample_clip
    from bench.inproc import InProcessStack
    from local.emulator import ManualClock
    from local.stack import LocalStack
    from wanedit import container
    from wanedit.domain.lifecycle import JobState

    say = log or (lambda _m: None)
    wall0 = time.perf_counter()
    rng = random.Random(seed)
    task_seconds = [round(rng.uniform(*TASK_SECONDS), 3) for _ in range(n)]
    clip_path = sample_clip()
    clip = clip_path.read_bytes()

    counter = CallCounter()
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    counter.install(boto3.DEFAULT_SESSION)
    manual = ManualClock(start=START)
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
    emulator_options = {"prerendered": clip_path, "seed": seed}
    stack: Any
    if transport == "inprocess":
        stack = InProcessStack(
            emulator_clock=manual,
            task_seconds=TASK_SECONDS,
            max_concurrent_tasks=CAP,
            emulator_options=emulator_options,
            verify_fast_moto=verify,
        )
    else:
        stack = LocalStack(
            emulator_clock=manual,
            task_seconds=TASK_SECONDS,
            max_concurrent_tasks=CAP,
            emulator_options=emulator_options,
        )
    stack.start()
    invocations = Invocations()
    originals: dict[str, Any] = {}
    try:
        emulator = stack.emulator
        emulator.faults.task_seconds_queue.extend(task_seconds)
        pump = stack.pump

        def meanwhile() -> None:
            # Lambda's ESM would hand each completion message over as it is sent; the poll to
            # find one is only made when one was sent and not yet handled (the ESM's idle long
            # polling is not counted, as in RESULTS.md, and costs moto calls for nothing).
            handled = pump.stats.records.get("complete", 0) - pump.stats.failures.get("complete", 0)
            if completion.sent > handled:
                with counter.acting("esm"):
                    pump.deliver("complete")

        svc = container.services()
        api = CountingApi(svc.api)
        completion = CountingSends(svc.completion)
        svc = dataclasses.replace(
            svc,
            clock=BenchClock(manual, meanwhile),
            api=api,
            completion=completion,
        )
        container.install(svc)

        for name in HANDLERS:
            module = importlib.import_module(f"functions.{name}.app")
            originals[name] = module.lambda_handler
            setattr(module, "lambda_handler", _timed(name, originals[name], counter, invocations, svc.clock))  # noqa: B010

        s3 = stack.client("s3")
        bucket = stack.resources.bucket
        counter.enabled = True
        t0 = manual.now()
        for i in range(n):
            s3.put_object(Bucket=bucket, Key=f"incoming/bench/p{i:05d}.mp4", Body=clip)
            s3.put_object(Bucket=bucket, Key=f"incoming/bench/p{i:05d}.json", Body=_sidecar(i))
        say(f"  N={n}: uploaded {2 * n} objects in {time.perf_counter() - wall0:.1f} s")
        pump.drain(rounds=1000)
        ingest_events = pump.stats.records.get("submit", 0)
        say(f"  N={n}: intake done ({ingest_events} events) at {time.perf_counter() - wall0:.1f} s wall")

        next_tick = t0
        limit = t0 + 2 * optimum(task_seconds, emulator.pending_seconds) + 3600
        ticks = 0
        while True:
            if manual.now() < next_tick:
                manual.set(next_tick)
            pump.tick(timeout_seconds=SCHEDULE_SECONDS)
            pump.drain()
            ticks += 1
            next_tick += SCHEDULE_SECONDS
            done = pump.stats.records.get("complete", 0) - pump.stats.failures.get("complete", 0)
            if ticks % 50 == 0:
                say(
                    f"  N={n}: {ticks} ticks, {done} persisted, sim +{manual.now() - t0:.0f} s,"
                    f" {time.perf_counter() - wall0:.0f} s wall"
                )
            # The table scan (every job terminal?) costs O(N) per call: only when it can be true,
            # i.e. all completions handled, or neither of the poller's lists holds a job.
            idle = (
                ticks % 50 == 0 and svc.store.next_poll_due() is None and svc.store.next_queued_due() is None
            )
            if done >= n or idle:
                jobs = svc.store.list_jobs(limit=10 * n + 10)
                if len(jobs) >= n and all(job.state.is_terminal for job in jobs):
                    break
            if manual.now() > limit:
                raise RuntimeError(f"N={n}: not finished after {manual.now() - t0:.0f} simulated seconds")
        counter.enabled = False

        tasks = {t.task_id: t for t in emulator.tasks()}
        counters = emulator.counters
        states = Counter(job.state.value for job in jobs)
        detection, minute = [], []
        per_task: list[tuple[float, int]] = []
        usage = 0.0
        last_persisted = last_succeeded = t0
        for job in jobs:
            if job.state is not JobState.PERSISTED or not job.task_id:
                continue
            task = tasks[job.task_id]
            assert task.end_at is not None and job.finished_at is not None
            detection.append(job.finished_at - task.end_at)
            phase = (task.end_at - t0) / SCHEDULE_SECONDS
            minute.append(t0 + math.ceil(phase) * SCHEDULE_SECONDS - task.end_at)
            per_task.append((task.run_seconds, 1 + api.queries[job.task_id]))
            usage += (job.usage.duration or 0.0) if job.usage else 0.0
            last_persisted = max(last_persisted, job.updated_at)
            last_succeeded = max(last_succeeded, job.finished_at)
        created_keys = Counter(
            next(m["url"] for m in body["input"]["media"] if m["type"] == "video").split("?")[0]
            for body in counters["created_bodies"]
        )
        return PipelineRun(
            n=n,
            seed=seed,
            task_seconds=task_seconds,
            pending_seconds=emulator.pending_seconds,
            t0=t0,
            makespan=last_persisted - t0,
            last_succeeded=last_succeeded - t0,
            optimum=optimum(task_seconds, emulator.pending_seconds),
            fifo_ideal=fifo_ideal(task_seconds, emulator.pending_seconds),
            states=states,
            detection=detection,
            detection_minute_baseline=minute,
            creates=counters["creates"],
            tasks_created=counters["tasks_created"],
            queries=counters["queries"],
            lists=counters["lists"],
            throttled=counters["throttled"],
            duplicate_creates=sum(c - 1 for c in created_keys.values()),
            per_task_calls=per_task,
            max_running_seen=counters["max_running_seen"],
            calls=counter,
            invocations=invocations,
            usage_seconds=usage,
            ingest_events=ingest_events,
            wall_seconds=time.perf_counter() - wall0,
            result_bytes=clip_path.stat().st_size,
            clip_bytes=len(clip),
            transport=transport,
        )
    finally:
        counter.enabled = False
        for name, handler in originals.items():
            setattr(importlib.import_module(f"functions.{name}.app"), "lambda_handler", handler)  # noqa: B010
        stack.stop()
        boto3.DEFAULT_SESSION = None


def _timed(
    name: str, handler: Callable[..., Any], counter: CallCounter, inv: Invocations, clock: Any
) -> Callable[..., Any]:
    def timed(event: Any, context: Any) -> Any:
        wall0, sim0 = time.perf_counter(), clock.now()
        with counter.acting(name):
            try:
                return handler(event, context)
            finally:
                wall = time.perf_counter() - wall0
                inv.count[name] += 1
                inv.wall_seconds[name] += wall
                sim = clock.now() - sim0
                inv.billed_seconds[name] += sim if name == "poll" else wall

    return timed
