"""The chaos world: the fault harness on the in-process stack, reset between schedules, on a simulated clock.

One `ChaosWorld` (one moto in process, one emulator in no-render mode) runs many schedules; between
two, every bucket version, table item, queue message, emulator task and fault is cleared, and the
clock simply runs on. A schedule runs as the deployed stack would:

- uploads go to the bucket at their time; their S3 events reach the SubmitFunction as EventBridge
  and SQS deliver them: at once, or late, or more than once (`Delivery`);
- the PollFunction runs on the schedule's fixed one-minute rate, each run up to its deadline;
  while it waits (its `clock.sleep`), whatever is due meanwhile happens: timed actions and faults,
  the SubmitFunction and CompleteFunction consuming their queues (as concurrent Lambdas would);
- a record a function failed (or crashed on) is redelivered after its queue's visibility timeout,
  in simulated time, and dead-lettered after maxReceiveCount; once everything else is quiet, an
  operator redrives the DLQs (README: "Redriving dead letters");
- minutes in which nothing can change are skipped: no poll due, or every busy job's task known to
  be RUNNING at the service until a known time (then no query could tell anything new).

Every step samples the SLOTS item and the service's tasks in flight (`Samples`), and everything that
happened is kept in a timeline for the account of a failing run.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import importlib
import itertools
import json
import logging
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from botocore.exceptions import ClientError
from urllib3.exceptions import ProtocolError

from bench.inproc import InProcessStack
from local.emulator import server as emulator_server
from local.pump import RUNNING_FUNCTION, Pump, PumpStats, SimulatedCrash
from tests.chaos.schedule import (
    HOLD_SECONDS,
    ApiFault,
    Crash,
    Delivery,
    Schedule,
    TaskEnd,
    Truncate,
    Upload,
    UserAction,
    Vanish,
)
from tests.faults.harness import Harness, Interceptor, Plan, moving_to
from wanedit.adapters.download import HttpResultDownloader
from wanedit.adapters.messaging import DeadLetterQueue
from wanedit.dashscope import DashScopeError
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.usecases.cancel import CancelRefused, cancel_job
from wanedit.usecases.redrive import (
    completion_message_problem,
    ingest_message_problem,
    long_clip_message_problem,
    redrive,
)

SCHEDULE_SECONDS = 60.0  # the PollSchedule default, rate(1 minute)
# Shorter than the emulator's hold (HOLD_SECONDS), so a held answer times out in a fraction of a
# second of real time; long enough that an answer from a busy 2-core box never does.
CREATE_TIMEOUT = (2.0, 0.5)
READ_TIMEOUT = (2.0, 0.5)
TASK_LIFETIME = 24 * 3600.0
# After the last action, time enough for every deadline the pipeline has: a task's 24 h lifetime,
# then completion resends and persist retries.
HORIZON_SECONDS = 27 * 3600.0
MAX_REDRIVES = 3
DEFAULT_RUN_SECONDS = 60.0  # a task's run time once the schedule's own list is used up
# A reconciling job this long past its create has seen every reconcile window close: what keeps it
# waiting is a candidate task still running (it shows whose it is only when it ends).
RECONCILE_PATIENCE = 600.0


def sidecar_body(
    stem: str, version: int, *, valid: bool = True, long: bool = False, shared: bool = False
) -> bytes:
    """Each sidecar version has its own prompt, or (`shared`) each version number one for all clips:
    with the clip's key and version it names the job a task is for."""
    fields: dict[str, Any] = {
        "prompt": f"{'' if shared else stem + ' '}v{version}: turn the scene into claymation",
        "resolution": "720P",
    }
    if long:
        fields["long_clip"] = "split"
    if not valid:
        fields["ratio"] = "2:1"
    return json.dumps(fields).encode()


# -- the transport -----------------------------------------------------------------------------------


class _Receipts:
    """The pump's SQS client, remembering which received records were not deleted (their handler failed)."""

    def __init__(self, inner: Any, clock: Any) -> None:
        self._inner, self._clock = inner, clock
        self.outstanding: dict[str, tuple[str, float]] = {}  # receipt handle -> (queue url, received at)

    def receive_message(self, **kwargs: Any) -> Any:
        response = self._inner.receive_message(**kwargs)
        for message in response.get("Messages", []):
            self.outstanding[message["ReceiptHandle"]] = (kwargs["QueueUrl"], self._clock.now())
        return response

    def delete_message(self, **kwargs: Any) -> Any:
        self.outstanding.pop(kwargs["ReceiptHandle"], None)
        return self._inner.delete_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class SimTimePump(Pump):
    """The event pump, with a failed record redelivered after its queue's visibility timeout in
    simulated time (moto counts visibility in wall-clock time; the stock pump redelivers at once)."""

    def __init__(self, resources: Any, clock: Any) -> None:
        super().__init__(resources, clock, redeliver_failures_at_once=False)
        self._visibility = {
            resources.ingest_queue_url: float(resources.ingest_visibility_timeout),
            resources.complete_queue_url: float(resources.complete_visibility_timeout),
            resources.longclip_queue_url: float(resources.longclip_visibility_timeout),
        }
        self._function = {url: function for function, (url, _) in self._sources.items()}
        self._raw_sqs = self._sqs
        self._receipts = _Receipts(self._sqs, clock)
        self._sqs = self._receipts  # the stock pump's only SQS client
        self.invisible: list[tuple[float, str, str]] = []  # (visible again at, queue url, receipt handle)

    def reset(self) -> None:
        self.stats = PumpStats()
        self.invisible.clear()
        self._receipts.outstanding.clear()

    def deliver(self, function: str, *, wait_seconds: int = 0, max_batches: int = 100) -> int:
        delivered = super().deliver(function, wait_seconds=wait_seconds, max_batches=max_batches)
        for handle, (url, received_at) in self._receipts.outstanding.items():
            heapq.heappush(self.invisible, (received_at + self._visibility[url], url, handle))
        self._receipts.outstanding.clear()
        return delivered

    def next_visible_at(self) -> float | None:
        return self.invisible[0][0] if self.invisible else None

    def release_due(self, now: float) -> list[str]:
        """Make the records whose visibility timeout has passed visible again; returns their functions."""
        released = []
        while self.invisible and self.invisible[0][0] <= now:
            _, url, handle = heapq.heappop(self.invisible)
            with contextlib.suppress(ClientError):  # moved to its DLQ meanwhile
                self._raw_sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0
                )
            released.append(self._function[url])
        return released


class SeededIds:
    """uuid4 from a seeded generator, for the emulator's task and request ids: with them a replay of a
    seed gives the same ids, so a tie the pipeline breaks by task id breaks the same way again."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def uuid4(self) -> uuid.UUID:
        with self._lock:
            return uuid.UUID(int=self._rng.getrandbits(128), version=4)


class _BrokenBody:
    """A urllib3 response whose body breaks off half way, as a connection closed mid-transfer does
    (urllib3 raises ProtocolError for a body shorter than its Content-Length)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        length = int(self._inner.headers.get("Content-Length") or 2)
        cut = max(1, length // 2)
        sent = 0
        for chunk in self._inner.stream(amt, decode_content=decode_content):
            if sent + len(chunk) >= cut:
                yield chunk[: cut - sent]
                raise ProtocolError("Connection broken: IncompleteRead", None)
            sent += len(chunk)
            yield chunk
        raise ProtocolError("Connection broken: IncompleteRead", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TruncatingSession(requests.Session):
    """The result downloader's session: the next `armed` result bodies break off half way."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = 0
        self.broken = 0
        self._lock = threading.Lock()

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        with self._lock:
            cut = self.armed > 0 and response.status_code == 200
            if cut:
                self.armed -= 1
                self.broken += 1
        if cut:
            response.raw = _BrokenBody(response.raw)
        return response


# -- what a run leaves behind ------------------------------------------------------------------------


@dataclass
class Samples:
    """The slots and the service's load, sampled at every step."""

    count: int = 0
    max_slots: int = 0
    max_in_flight: int = 0
    max_running: int = 0
    over_cap: list[str] = field(default_factory=list)


@dataclass
class Run:
    """One schedule's run: what the invariants are checked on, and its account."""

    schedule: Schedule
    bucket: str
    t0: float
    ended_at: float
    horizon: float
    timeline: list[str]
    samples: Samples
    jobs: list[Job]
    tasks: list[Any]
    vanished: list[Any]
    lost_at: dict[str, float]  # task id -> when the service lost it
    terminal: dict[str, list[str]]
    fired: list[str]
    unfired: list[str]
    finals: dict[str, dict[str, str | None]]  # stem -> {"video": version or None, "sidecar": ...}
    redrives: int
    dlq: int
    errors: list[str]  # handler invocations that raised (not crashes)
    cut_short: int  # result downloads whose body broke off
    wall_seconds: float = 0.0


class ChaosInterceptor(Interceptor):
    """The fault harness's interceptor, also telling the world what happened (for the timeline)."""

    def __init__(self, world: ChaosWorld) -> None:
        super().__init__()
        self.world = world

    def _fire(self, plan: Plan) -> None:
        self.world.note(f"FAULT {plan.describe()}")
        super()._fire(plan)

    def after(self, target: str, method: str, args: Any, kwargs: Any, result: Any) -> None:
        world = self.world
        if target == "store" and method == "transition" and result is not None:
            world.note(f"{result.stem} {result.job_id[:10]} -> {result.state.value}")
        elif target == "store" and method == "put_new" and result is True:
            job = args[0]
            versions = f"video {_short(job.video.version_id)}, sidecar {_short(job.sidecar.version_id)}"
            world.note(f"{job.stem} {job.job_id[:10]} new job {job.state.value} ({versions})")
        elif target == "store" and method == "acquire_slot" and result is True:
            world.sample(slots=True)
        elif target == "api" and method == "create_task":
            world.note(f"task {result.output.task_id[:8]} created ({args[0].input.prompt.split(':')[0]})")
        super().after(target, method, args, kwargs, result)


def _short(version: str | None) -> str:
    return (version or "-")[:6]


def _aws_error(code: str, operation: str) -> Callable[[], BaseException]:
    return lambda: ClientError(
        {"Error": {"Code": code, "Message": "chaos: a transient AWS error"}}, operation
    )


def plan_for(crash: Crash) -> Plan:
    """The fault harness's plan for a drawn crash or AWS error."""
    return Plan(
        crash.target,
        crash.method,
        nth=crash.nth,
        when=crash.when,
        where=moving_to(JobState(crash.moving_to)) if crash.moving_to else None,
        error=_aws_error(crash.aws_error, crash.method) if crash.aws_error else None,
        times=crash.times,
    )


class ChaosClock:
    """The functions' clock: sleeping (the poller waiting) lets the rest of the world happen meanwhile."""

    def __init__(self, world: ChaosWorld) -> None:
        self._world = world

    def now(self) -> float:
        return self._world.clock.now()

    def sleep(self, seconds: float) -> None:
        self._world.wait(seconds)


class ChaosWorld(Harness):
    """The fault harness's stack, in process and reused: `run(schedule)` for each schedule."""

    def __init__(self, result: Path, long_clip: Path) -> None:
        super().__init__(
            "chaos",
            task_seconds=DEFAULT_RUN_SECONDS,
            emulator={"prerendered": result},
            stack_type=InProcessStack,
        )
        self.result = result.read_bytes()
        self.long_clip = long_clip.read_bytes()
        self._quieted: list[logging.Handler] = []
        self.downloads = TruncatingSession()
        self.timeline: list[str] = []
        self.samples = Samples()
        self._agenda: list[tuple[float, int, str, Callable[[], None]]] = []
        self._order = itertools.count()
        self._held: list[tuple[float, int, str]] = []  # (delivered at, order, event body)
        self._sent: dict[str, int] = {}  # per function: messages put on its queue by the world
        self._drained: dict[str, int] = {}
        self._busy = False
        self._errors: list[str] = []
        self._saved_purge: str | None = None
        self.schedule: Schedule | None = None

    # lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> ChaosWorld:
        # Queues are purged between schedules, seconds apart (moto refuses purges within 60 s).
        self._saved_purge = os.environ.get("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR")
        os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
        importlib.import_module("functions.longclip.app")  # before the log capture (see Harness)
        super().__enter__()
        # Powertools' own stdout handler at WARNING: the capture still gets every record (it is what
        # the key is looked for in), and JSON-formatting thousands of DEBUG lines nobody reads is slow.
        self._quieted = [
            h
            for h in logging.getLogger("wanedit").handlers
            if h is not self.logs and h.level < logging.WARNING
        ]
        for handler in self._quieted:
            handler.setLevel(logging.WARNING)
        self.raw = self._base  # the services unwrapped: the world's own reads never hit a fault plan
        self.stack.pump = SimTimePump(self.stack.resources, self.stack.clock)
        self.s3 = self.stack.client("s3")
        self.sqs = self.stack.client("sqs")
        return self

    def __exit__(self, *exc: object) -> None:
        emulator_server.uuid = uuid
        for handler in self._quieted:
            handler.setLevel(logging.NOTSET)
        super().__exit__(*exc)
        if self._saved_purge is None:
            os.environ.pop("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", None)
        else:
            os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = self._saved_purge

    def _reset(self, schedule: Schedule) -> None:
        """Back to an empty stack (the clock runs on), seeded by the schedule."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.moto_api._internal import mock_random
        from moto.sqs.models import sqs_backends

        r = self.stack.resources
        versions = self.s3.get_paginator("list_object_versions")
        for page in versions.paginate(Bucket=self.bucket):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed, "Quiet": True})
        for upload in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        table = self.stack.client("dynamodb")
        for page in table.get_paginator("scan").paginate(TableName=r.table, ProjectionExpression="pk"):
            keys = [{"DeleteRequest": {"Key": {"pk": item["pk"]}}} for item in page.get("Items", [])]
            for start in range(0, len(keys), 25):
                table.batch_write_item(RequestItems={r.table: keys[start : start + 25]})
        for url in (
            r.ingest_queue_url,
            r.ingest_dlq_url,
            r.complete_queue_url,
            r.complete_dlq_url,
            r.longclip_queue_url,
            r.longclip_dlq_url,
            self.tap.bus_queue,
            self.tap.topic_queue,
        ):
            self.sqs.purge_queue(QueueUrl=url)
        # moto remembers every receipt handle it ever deleted, and seeded below it makes the same
        # handles again: a record received under a remembered handle would never be deleted.
        for queue in sqs_backends[DEFAULT_ACCOUNT_ID][r.region].queues.values():
            queue.deleted_messages.clear()
        self.emulator.reset()
        self.emulator.faults.task_seconds_queue.extend(schedule.run_seconds)
        self.downloads.armed = self.downloads.broken = 0
        random.seed(schedule.seed)  # backoff jitter
        mock_random.seed(schedule.seed)  # moto's version ids and message ids
        emulator_server.uuid = SeededIds(schedule.seed)  # type: ignore[assignment]  # its task ids
        self.logs.lines.clear()
        self.outcome_events.clear()
        self.topic_messages.clear()
        self.vanished.clear()
        self.lost_at: dict[str, float] = {}
        self.timeline = []
        self.samples = Samples()
        self._agenda.clear()
        self._held.clear()
        self._errors = []
        self._sent = {"submit": 0, "complete": 0, "longclip": 0}
        self._drained = {}
        self.ic = ChaosInterceptor(self)
        self.ic.plans.extend(plan_for(crash) for crash in schedule.crashes)
        self.stack.pump.reset()
        self.wire(
            create_timeout=CREATE_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            downloader=HttpResultDownloader(session=self.downloads),
            clock=ChaosClock(self),
            settings=self._base.settings.model_copy(update={"max_concurrent_tasks": schedule.cap}),
        )

    # the run ---------------------------------------------------------------------------------------

    def run(self, schedule: Schedule) -> Run:
        self.schedule = schedule
        self._reset(schedule)
        t0 = self.clock.now()
        self.t0 = t0
        for item in schedule.timed:
            self._plan_item(t0, item)
        horizon = t0 + schedule.last_action_at + HORIZON_SECONDS
        next_tick = t0 + schedule.poll_phase
        redrives = 0
        while True:
            self.moment()
            event_at = self._next_event_at()
            if event_at < next_tick:  # the world acts before the schedule runs the poller again
                self._advance(event_at - self.clock.now())
                continue
            due = self._due()
            if event_at == float("inf") and not due and not self._queue_depths():
                if self.dlq_depth() and redrives < MAX_REDRIVES:
                    redrives += 1
                    self._redrive()
                    continue
                break  # quiet: nothing planned, in transit or due; every job is where it stays
            if self.clock.now() >= horizon:
                self.note("HORIZON reached with work left")
                break
            next_tick = self._skip_idle(next_tick, due)
            if min(next_tick, event_at) > self.clock.now():
                self._advance(min(next_tick, event_at) - self.clock.now())
                continue
            began = self.clock.now()
            self._poll()
            while next_tick <= began:
                next_tick += SCHEDULE_SECONDS
        self.moment()
        self.collect_outcomes()
        return Run(
            schedule=schedule,
            bucket=self.bucket,
            t0=t0,
            ended_at=self.clock.now(),
            horizon=horizon,
            timeline=self.timeline,
            samples=self.samples,
            jobs=self.raw.store.list_jobs(),
            tasks=self.emulator.tasks(),
            vanished=list(self.vanished),
            lost_at=dict(self.lost_at),
            terminal={k: list(v) for k, v in self.ic.terminal.items()},
            fired=[plan.describe() for plan in self.ic.plans if plan.fired],
            unfired=[plan.describe() for plan in self.ic.plans if not plan.fired],
            finals=self._finals(schedule),
            redrives=redrives,
            dlq=self.dlq_depth(),
            errors=self._errors,
            cut_short=self.downloads.broken,
        )

    def note(self, what: str) -> None:
        self.timeline.append(f"t={self.clock.now() - getattr(self, 't0', self.clock.now()):9.1f}s  {what}")

    # time ------------------------------------------------------------------------------------------

    def wait(self, seconds: float) -> None:
        """The poller sleeps: what is due meanwhile happens, in time order."""
        target = self.clock.now() + max(0.0, seconds)
        if self._busy:  # a nested wait (never expected): time just passes
            self._advance(target - self.clock.now())
            return
        self.moment()
        while self.clock.now() < target:
            self._advance(min(target, self._next_event_at()) - self.clock.now())
            self.moment()

    def _advance(self, seconds: float) -> None:
        if seconds > 0:
            self.clock.advance(seconds)
        self.emulator.tick()

    def _next_event_at(self) -> float:
        times = [self._agenda[0][0] if self._agenda else None, self._held[0][0] if self._held else None]
        times.append(self.stack.pump.next_visible_at())
        return min((t for t in times if t is not None), default=float("inf"))

    def moment(self) -> None:
        """Everything due now: actions, late events, redeliveries; then the queues are consumed.

        Often called while the poller sleeps: what happens meanwhile is the world's (the user's, the
        event sources'), never the PollFunction's doing (the IAM recorder attributes calls by it).
        """
        if self._busy:
            return
        self._busy = True
        token = RUNNING_FUNCTION.set(None)
        try:
            now = self.clock.now()
            for function in self.stack.pump.release_due(now):
                self._sent[function] += 1
            while self._held and self._held[0][0] <= now:
                _, _, body = heapq.heappop(self._held)
                self.sqs.send_message(QueueUrl=self.stack.resources.ingest_queue_url, MessageBody=body)
                self._sent["submit"] += 1
            while self._agenda and self._agenda[0][0] <= now:
                _, _, what, act = heapq.heappop(self._agenda)
                self.note(what)
                self._drain()
                try:
                    act()
                except SimulatedCrash as crash:  # the user's CLI died (a fault plan hit its call)
                    self.note(f"  (the user's command crashed: {crash})")
            self._drain()
            self.sample()
        finally:
            RUNNING_FUNCTION.reset(token)
            self._busy = False

    def _drain(self) -> None:
        """Each function consumes its queue, when something may have been put on it since it last did."""
        pump = self.stack.pump
        calls = self.ic.calls
        for _ in range(20):
            pending = {
                "submit": self._sent["submit"],
                "complete": self._sent["complete"] + calls["completion.send"],
                "longclip": self._sent["longclip"]
                + sum(n for name, n in calls.items() if name.startswith("long_clips.")),
            }
            stale = [function for function, n in pending.items() if self._drained.get(function) != n]
            if not stale:
                return
            for function in stale:
                self._drained[function] = pending[function]
                crashes = pump.stats.crashes.get(function, 0)
                pump.deliver(function)
                if pump.stats.crashes.get(function, 0) > crashes:
                    self.note(f"  {function} invocation crashed")

    def sample(self, *, slots: bool = False) -> None:
        """The service's tasks in flight (every step), and the SLOTS item (`slots`: after every lease
        taken, the only moment its size can grow)."""
        cap = self.svc.settings.max_concurrent_tasks
        now = self.clock.now()
        s = self.samples
        s.count += 1
        token = RUNNING_FUNCTION.set(None)  # the world's look, not the function's
        try:
            held = len(self.raw.store.slot_holders()) if slots else 0
        finally:
            RUNNING_FUNCTION.reset(token)
        live = [t for t in self.emulator.tasks() if not t.final and now - t.submit_at < TASK_LIFETIME]
        running = sum(1 for t in live if t.status == "RUNNING")
        s.max_slots, s.max_in_flight = max(s.max_slots, held), max(s.max_in_flight, len(live))
        s.max_running = max(s.max_running, running)
        if held > cap or len(live) > cap:
            s.over_cap.append(
                f"t={now - self.t0:.1f}s: {held if slots else '?'} slot leases, {len(live)} tasks in flight"
                f" ({running} RUNNING), cap {cap}"
            )

    def _due(self) -> list[float]:
        """When the poller's two lists (jobs to poll, jobs queued for a slot) next want it."""
        store = self.raw.store
        due = [t for t in (store.next_poll_due(), store.next_queued_due()) if t is not None]
        budgets = self.svc.settings.daily_budget or self.svc.settings.monthly_budget
        if budgets and store.held(1):  # each poller run looks whether a held job fits the budgets again
            due.append(self.clock.now())
        return due

    def _skip_idle(self, next_tick: float, due: list[float]) -> float:
        """The first schedule run that can find something to do: the runs before it would change nothing."""
        useful = min([*due, self._next_event_at()], default=float("inf"))
        if useful <= next_tick + SCHEDULE_SECONDS:
            steady = self._steady_until()
            if steady > useful:
                useful = min(steady, self._next_event_at())
        if useful == float("inf") or useful <= next_tick:
            return next_tick
        return next_tick + SCHEDULE_SECONDS * int((useful - next_tick) // SCHEDULE_SECONDS)

    def _steady_until(self) -> float:
        """Until when nothing can change (-inf: not steady now).

        Steady: every task in flight is RUNNING at the service, with a known end; each busy job waits
        on one of them (SUBMITTED on its own task, or RECONCILING long past any window, on a candidate
        that shows whose it is only when it ends), a long clip on segments that all exist and none of
        which ended, and the queued jobs wait for a slot. Until a task ends or reaches its 24 h
        lifetime, every query, list and reconcile would only see it RUNNING. (Conservative: a skipped
        look would only have come later, never not at all.)
        """
        now = self.clock.now()
        live = [t for t in self.emulator.tasks() if not t.final]
        if not live or any(t.status != "RUNNING" for t in live):
            return -float("inf")  # nothing to wait for, or a PENDING task (perhaps no job's yet) starts
        until = min(min(t.end_at, t.submit_at + TASK_LIFETIME) for t in live) - 2 * SCHEDULE_SECONDS
        running = {t.task_id for t in live}
        waiting: set[str] = set()
        everyone = self.raw.store.list_jobs()
        jobs = [job for job in everyone if not job.state.is_terminal]
        by_id = {job.job_id: job for job in everyone}
        for job in jobs:
            if job.state is JobState.SEGMENTED and _segments_busy(job, by_id):
                continue  # its recheck would find its segments made and none ended: it only waits
            if job.state is JobState.SUBMITTED and job.task_id in running:
                waiting.add(job.job_id)
                until = min(until, (job.submitted_at or now) + TASK_LIFETIME - 2 * SCHEDULE_SECONDS)
            elif (
                job.state is JobState.RECONCILING
                and now - (job.submitting_since or job.updated_at) > RECONCILE_PATIENCE
            ):
                waiting.add(job.job_id)
            elif job.state is not JobState.QUEUED:
                if job.next_poll_at is None:
                    return -float("inf")
                until = min(until, job.next_poll_at)
        holders = self.raw.store.slot_holders()
        if len(holders) < self.svc.settings.max_concurrent_tasks or not set(holders) <= waiting:
            for job in jobs:  # a slot is (or will be, once reaped) free for the queue
                if job.state is JobState.QUEUED:
                    until = min(until, job.next_poll_at or -float("inf"))
        return until

    def _poll(self) -> None:
        before = dict(self.stack.pump.stats.crashes)
        try:
            report = self.stack.pump.tick(timeout_seconds=SCHEDULE_SECONDS)
        except Exception as error:  # the invocation failed; the next schedule run tries again
            self._errors.append(f"poll: {type(error).__name__}: {error}")
            self.note(f"poll invocation failed: {type(error).__name__}")
            return
        if self.stack.pump.stats.crashes.get("poll", 0) > before.get("poll", 0):
            self.note("  poll invocation crashed")
        elif (
            report.get("submitted")
            or report.get("succeeded")
            or report.get("ended")
            or report.get("reconciled")
        ):
            self.note(
                "  poll: "
                + ", ".join(
                    f"{k} {report[k]}"
                    for k in ("submitted", "succeeded", "ended", "reconciled", "queried")
                    if report.get(k)
                )
            )

    # state -----------------------------------------------------------------------------------------

    def _queue_depths(self) -> int:
        r = self.stack.resources
        return sum(
            self.queue_depth(url) for url in (r.ingest_queue_url, r.complete_queue_url, r.longclip_queue_url)
        )

    def queue_depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def put(self, key: str, body: bytes) -> str:
        return str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=body).get("VersionId", ""))

    def dlq_depth(self) -> int:
        r = self.stack.resources
        return sum(
            self.queue_depth(url) for url in (r.ingest_dlq_url, r.complete_dlq_url, r.longclip_dlq_url)
        )

    def _redrive(self) -> None:
        r = self.stack.resources
        for dlq_url, source, accept in (
            (r.ingest_dlq_url, r.ingest_queue_url, ingest_message_problem),
            (r.complete_dlq_url, r.complete_queue_url, completion_message_problem),
            (r.longclip_dlq_url, r.longclip_queue_url, long_clip_message_problem),
        ):
            report = redrive(DeadLetterQueue(dlq_url, source, client=self.sqs), accept=accept)
            if report.replayed or report.kept:
                self.note(
                    f"operator redrives {len(report.replayed)} dead letter(s) ({len(report.kept)} kept)"
                )
        self._sent = {function: n + 1 for function, n in self._sent.items()}

    def _finals(self, schedule: Schedule) -> dict[str, dict[str, str | None]]:
        finals: dict[str, dict[str, str | None]] = {}
        for stem in schedule.stems:
            finals[stem] = {}
            for kind, key in (("video", f"incoming/{stem}.mp4"), ("sidecar", f"incoming/{stem}.json")):
                info = self.raw.objects.head(key)
                finals[stem][kind] = info.version_id if info else None
        return finals

    # actions ---------------------------------------------------------------------------------------

    def _at(self, when: float, what: str, act: Callable[[], None]) -> None:
        heapq.heappush(self._agenda, (when, next(self._order), what, act))

    def _plan_item(self, t0: float, item: Any) -> None:
        at = t0 + item.at
        if isinstance(item, Upload):
            self._plan_upload(at, item)
        elif isinstance(item, ApiFault):
            self._at(
                at,
                f"armed: {item.describe()}",
                lambda: self.emulator.faults.add(
                    item.endpoint,
                    item.kind,
                    status=item.status,
                    code=item.code,
                    seconds=HOLD_SECONDS,
                    times=item.times,
                ),
            )
        elif isinstance(item, TaskEnd):
            self._at(at, f"armed: {item.describe()}", lambda: self._task_end(item))
        elif isinstance(item, Vanish):
            self._at(at, item.describe(), lambda: self._vanish(item))
        elif isinstance(item, Truncate):
            self._at(at, f"armed: {item.describe()}", lambda: self._truncate(item.times))
        elif isinstance(item, UserAction):
            self._at(at, item.describe(), lambda: self._user(item))
        else:
            raise TypeError(item)

    def _plan_upload(self, at: float, item: Upload) -> None:
        long = item.stem in (self.schedule.long_stems if self.schedule else [])
        video = (f"incoming/{item.stem}.mp4", self.long_clip if long else self.result, item.video_delivery)
        sidecar = (
            f"incoming/{item.stem}.json",
            sidecar_body(
                item.stem,
                item.sidecar_version,
                valid=item.valid,
                long=long,
                shared=bool(self.schedule and self.schedule.shared_prompt),
            ),
            item.sidecar_delivery,
        )
        if item.what == "video":
            halves = [video]
        elif item.what == "sidecar":
            halves = [sidecar]
        else:
            halves = [sidecar, video] if item.sidecar_first else [video, sidecar]
        for index, (key, body, delivery) in enumerate(halves):
            when = at + (item.gap if index else 0.0)
            label = f"put {key}" + (f" [{delivery.describe()}]" if not delivery.plain else "")
            self._at(when, label, functools.partial(self._put, key, body, delivery))

    def _put(self, key: str, body: bytes, delivery: Delivery) -> None:
        version = self.put(key, body)
        self._sent["submit"] += 1
        if delivery.plain:
            return
        events = self._take_events(key, version)
        now = self.clock.now()
        for event in events:
            for copy in range(delivery.copies):
                heapq.heappush(
                    self._held, (now + delivery.delay + copy * delivery.spacing, next(self._order), event)
                )

    def _take_events(self, key: str, version: str) -> list[str]:
        """Take this upload's S3 event off the ingest queue (to deliver it late, or more than once)."""
        url = self.stack.resources.ingest_queue_url
        taken: list[str] = []
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            detail = json.loads(message["Body"]).get("detail", {}).get("object", {})
            if unquote(detail.get("key", "")) == key and detail.get("version-id") in (version, None):
                taken.append(message["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        assert taken, f"no S3 event found for {key} {version}: the world's event plumbing is broken"
        return taken

    def _task_end(self, item: TaskEnd) -> None:
        faults = self.emulator.faults
        if item.outcome == "FAILED":
            faults.fail_next(1, code="InternalError.Algo", message="The model failed (chaos).")
        elif item.outcome == "CANCELED":
            faults.cancel_next(1)
        else:
            faults.task_seconds_queue.appendleft(item.seconds)

    def _vanish(self, item: Vanish) -> None:
        live = [t for t in self.emulator.tasks() if not t.final]
        if not live:
            self.note("  (no live task to lose)")
            return
        task = live[item.pick % len(live)]
        self.vanish(task)
        self.lost_at[task.task_id] = self.clock.now()
        self.note(f"  the service lost task {task.task_id[:8]} ({task.status})")

    def _truncate(self, times: int) -> None:
        with self.downloads._lock:
            self.downloads.armed += times

    def _user(self, item: UserAction) -> None:
        if item.action == "cancel":
            mine = [job for job in self.raw.store.list_jobs() if job.stem == item.stem]
            if not mine:
                self.note("  (no job to cancel yet)")
                return
            job = max(mine, key=lambda job: job.created_at)
            try:
                canceled = cancel_job(self.svc, job.job_id)
                self.note(f"  canceled {job.job_id[:10]}: {canceled.state.value}")
            except CancelRefused as refused:
                self.note(f"  cancel refused: {refused}")
            except (DashScopeError, ClientError) as error:
                self.note(f"  cancel failed: {type(error).__name__}")
        else:
            key = f"incoming/{item.stem}.{'json' if item.action == 'delete_sidecar' else 'mp4'}"
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    # evidence --------------------------------------------------------------------------------------

    def outputs(self) -> dict[str, bytes]:
        """Every version of what the pipeline wrote (edited/, failed/, work/): key#version -> bytes."""
        found: dict[str, bytes] = {}
        s = self.svc.settings
        for prefix in (s.edited_prefix, s.failed_prefix, s.work_prefix):
            for page in self.s3.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for version in page.get("Versions", []):
                    body = self.s3.get_object(
                        Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                    )
                    found[f"{version['Key']}#{version['VersionId']}"] = bytes(body["Body"].read())
        return found

    def jobs(self) -> list[Job]:
        return list(self.raw.store.list_jobs())


def _segments_busy(parent: Job, jobs: dict[str, Job]) -> bool:
    children = [jobs.get(segment.job_id) for segment in parent.segments]
    return (
        bool(children)
        and all(child is not None for child in children)
        and not any(c.state.is_terminal and c.state is not JobState.PERSISTED for c in children if c)
        and not all(c.state is JobState.PERSISTED for c in children if c)
    )


def task_input(task: Any, bucket: str) -> tuple[str, str | None, str]:
    """(video key, version id, prompt) of a task, from the request the service received: the
    presigned URL names the object version it fetches, and each sidecar version has its own prompt."""
    body = task.body
    url = next(m["url"] for m in body["input"]["media"] if m["type"] == "video")
    parts = urlsplit(url)
    key = unquote(parts.path).lstrip("/")
    if not (parts.hostname or "").startswith(f"{bucket}.") and key.startswith(f"{bucket}/"):
        key = key[len(bucket) + 1 :]  # a path-style URL
    version = parse_qs(parts.query).get("versionId", [None])[0]
    return key, version, str(body["input"].get("prompt", ""))
