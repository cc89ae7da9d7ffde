"""In-memory fakes of every collaborator of the use cases (`wanedit.ports`): decisions tested without I/O.

The store fake keeps the DynamoDB adapter's semantics (conditional moves, the lifecycle check,
claims, the poller's two lists, task claims, slots, create locks); `tests/integration/test_store_contract.py`
runs the same scenarios against both, so the fake cannot drift from what deploys. The API fake is
scriptable: tests queue errors for its next calls and set its tasks' statuses.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wanedit.adapters.jobstore import list_for
from wanedit.container import Services
from wanedit.dashscope import (
    CreateTaskRequest,
    CreateTaskResponse,
    FinalError,
    TaskList,
    TaskListItem,
    TaskResponse,
    TaskStatus,
)
from wanedit.domain.budget import Period
from wanedit.domain.job import Job, SourceObject
from wanedit.domain.lifecycle import JobState, check_initial
from wanedit.domain.request import EditParameters, EditRequest
from wanedit.media.reader import BytesRangeReader
from wanedit.metrics import Metric
from wanedit.ports import ConditionalWrite, CreateLock, HalfRecord, JobStore, LedgerEntry, ObjectInfo
from wanedit.settings import Settings

START = 1_800_000_000.0
BUCKET = "media"


class FakeClock:
    """A clock that moves only when slept on (or told to)."""

    def __init__(self, start: float = START) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    advance = sleep


# --------------------------------------------------------------------------- job store


class FakeJobStore(JobStore):
    """`wanedit.ports.JobStore` in memory, with the DynamoDB adapter's semantics."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.lists: dict[str, tuple[str, float]] = {}  # job id -> (list name, next poll time)
        self.halves: dict[str, HalfRecord] = {}
        self.tasks: dict[str, str] = {}  # task id -> job id
        self.slots: dict[str, float] = {}
        self.moves: list[tuple[str, JobState, JobState]] = []  # every transition made
        self.paused_until = 0.0
        self.keys: set[str] = set()
        self.create_locks: dict[str, CreateLock] = {}  # prompt fingerprint -> its holder (until expiry)

    def put_new(self, job: Job) -> bool:
        check_initial(job.state)
        if job.job_id in self.jobs:
            return False
        self.jobs[job.job_id] = job.model_copy(deep=True)
        self._schedule(job.job_id, job.state, job.next_poll_at)
        return True

    def get(self, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return job.model_copy(deep=True) if job else None

    def write(self, write: ConditionalWrite) -> Job | None:
        job = self.jobs.get(write.job_id)
        held = write.held
        if job is None or job.state not in write.states or (held and getattr(job, held.field) != held.since):
            return None
        if write.to is not job.state:
            self.moves.append((job.job_id, job.state, write.to))
        scheduled = write.next_poll_at if not write.to.is_terminal else None
        now = write.now
        updated = Job.model_validate(
            {
                **job.model_dump(),
                **write.changes,
                "state": write.to,
                "updated_at": now,
                "next_poll_at": scheduled,
            }
        )
        self.jobs[job.job_id] = updated
        self._schedule(job.job_id, write.to, scheduled)
        return updated.model_copy(deep=True)

    def _schedule(self, job_id: str, state: JobState, next_poll_at: float | None) -> None:
        if next_poll_at is None or state.is_terminal:
            self.lists.pop(job_id, None)
        else:
            self.lists[job_id] = (list_for(state), next_poll_at)

    def _on(self, name: str) -> list[tuple[float, str]]:
        return sorted((at, job_id) for job_id, (list_name, at) in self.lists.items() if list_name == name)

    def active(self, limit: int = 100) -> list[Job]:
        return [self.jobs[job_id].model_copy(deep=True) for _, job_id in self._on("poll")[:limit]]

    def queued(self, now: float, limit: int) -> list[Job]:
        due = [job_id for at, job_id in self._on("queue") if at <= now]
        return [self.jobs[job_id].model_copy(deep=True) for job_id in due[: max(limit, 0)]]

    def held(self, limit: int) -> list[Job]:
        return [self.jobs[job_id].model_copy(deep=True) for _, job_id in self._on("held")[:limit]]

    def next_poll_due(self) -> float | None:
        on = self._on("poll")
        return on[0][0] if on else None

    def next_queued_due(self) -> float | None:
        on = self._on("queue")
        return on[0][0] if on else None

    def list_jobs(self, limit: int = 1000) -> list[Job]:
        return [job.model_copy(deep=True) for job in list(self.jobs.values())[:limit]]

    def record_half(self, bucket: str, stem: str, *, kind: str, key: str, version: str, now: float) -> None:
        self.halves[f"{bucket}/{stem}"] = HalfRecord(
            stem=stem, kind=kind, key=key, version=version, updated_at=now
        )

    def clear_half(self, bucket: str, stem: str) -> None:
        self.halves.pop(f"{bucket}/{stem}", None)

    def waiting_halves(self) -> list[HalfRecord]:
        return list(self.halves.values())

    def claim_task(self, task_id: str, job_id: str, now: float) -> bool:
        owner = self.tasks.setdefault(task_id, job_id)
        return owner == job_id

    def task_owner(self, task_id: str) -> str | None:
        return self.tasks.get(task_id)

    def pause_submissions(self, until: float, reason: str, now: float) -> bool:
        if self.paused_until > now:
            return False
        self.paused_until = until
        return True

    def submissions_paused_until(self, now: float) -> float | None:
        return self.paused_until if self.paused_until > now else None

    def key_identities(self) -> set[str]:
        return set(self.keys)

    def note_key_identities(self, ids: set[str], now: float) -> None:
        self.keys |= ids

    def acquire_create_lock(self, fingerprint: str, job_id: str, *, now: float, until: float) -> bool:
        held = self.create_lock(fingerprint, now)
        if held is not None and held.holder != job_id:
            return False
        self.create_locks[fingerprint] = CreateLock(job_id, until)
        return True

    def create_lock(self, fingerprint: str, now: float) -> CreateLock | None:
        lock = self.create_locks.get(fingerprint)
        return lock if lock is not None and lock.until > now else None

    def release_create_lock(self, fingerprint: str, job_id: str) -> None:
        lock = self.create_locks.get(fingerprint)
        if lock is not None and lock.holder == job_id:
            del self.create_locks[fingerprint]

    def acquire_slot(self, job_id: str, cap: int, now: float) -> bool:
        if job_id not in self.slots and len(self.slots) >= cap:
            return False
        self.slots[job_id] = now
        return True

    def release_slot(self, job_id: str) -> None:
        self.slots.pop(job_id, None)

    def slot_holders(self) -> dict[str, float]:
        return dict(self.slots)

    # for tests ---------------------------------------------------------------------------------

    def state(self, job_id: str) -> JobState:
        return self.jobs[job_id].state


# --------------------------------------------------------------------------- objects


@dataclass
class StoredObject:
    body: bytes
    version_id: str
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class FakeObjectStore:
    """A versioned bucket in memory."""

    def __init__(self, bucket: str = BUCKET) -> None:
        self.bucket = bucket
        self.objects: dict[str, list[StoredObject]] = {}
        self.fail_uploads: list[Exception] = []  # raised by the next upload_stream calls
        self._versions = itertools.count(1)

    def put(
        self, key: str, body: bytes, content_type: str | None = None, tags: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        stored = StoredObject(body, f"v{next(self._versions)}", content_type, dict(tags or {}))
        self.objects.setdefault(key, []).append(stored)
        return self._info(key, stored)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def body(self, key: str) -> bytes:
        return self.objects[key][-1].body

    def json(self, key: str) -> Any:
        return json.loads(self.body(key))

    def _find(self, key: str, version_id: str | None) -> StoredObject | None:
        versions = self.objects.get(key, [])
        if version_id is None:
            return versions[-1] if versions else None
        return next((v for v in versions if v.version_id == version_id), None)

    def _info(self, key: str, stored: StoredObject) -> ObjectInfo:
        etag = f"etag-{stored.version_id}"
        return ObjectInfo(
            key=key,
            size=len(stored.body),
            etag=etag,
            version_id=stored.version_id,
            content_type=stored.content_type,
        )

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo | None:
        stored = self._find(key, version_id)
        return self._info(key, stored) if stored else None

    def range_reader(self, info: ObjectInfo) -> BytesRangeReader:
        stored = self._find(info.key, info.version_id)
        return BytesRangeReader(stored.body if stored else b"")

    def read_head(self, info: ObjectInfo, max_bytes: int) -> bytes:
        return self.range_reader(info).read(0, max_bytes)

    def presign_get_version(self, key: str, version_id: str | None, ttl_seconds: int) -> str:
        return f"https://{self.bucket}.s3.example/{key}?versionId={version_id}&X-Amz-Expires={ttl_seconds}"

    def put_json(
        self, key: str, document: Mapping[str, Any], *, tags: Mapping[str, str] | None = None
    ) -> None:
        self.put(key, json.dumps(document).encode(), "application/json", tags)

    def put_bytes(
        self, key: str, body: bytes, *, content_type: str, tags: Mapping[str, str] | None = None
    ) -> None:
        self.put(key, body, content_type, tags)

    def tag_version(self, key: str, version_id: str | None, tags: Mapping[str, str]) -> bool:
        stored = self._find(key, version_id)
        if stored is None:
            return False
        stored.tags.update(tags)
        return True

    def download_version(self, key: str, version_id: str | None, path: str) -> None:
        stored = self._find(key, version_id)
        if stored is None:
            raise FileNotFoundError(key)
        Path(path).write_bytes(stored.body)

    def upload_file(
        self, key: str, path: str, *, content_type: str, tags: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        return self.put(key, Path(path).read_bytes(), content_type, tags)

    def upload_stream(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str = "video/mp4",
        tags: Mapping[str, str] | None = None,
    ) -> int:
        if self.fail_uploads:
            raise self.fail_uploads.pop(0)
        body = b"".join(chunks)
        self.put(key, body, content_type, tags)
        return len(body)

    def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self.objects if key.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)


# --------------------------------------------------------------------------- the API


@dataclass
class FakeTask:
    task_id: str
    created_at: float
    request: CreateTaskRequest | None
    prompt: str | None
    key: str = "key-ours"  # the api_key_id the list shows
    status: TaskStatus = TaskStatus.PENDING
    code: str | None = None
    message: str | None = None
    video_url: str | None = None
    usage: dict[str, Any] | None = None


class FakeApi:
    """The wan2.7-videoedit API, scripted: tasks whose status tests set, errors queued per call kind."""

    base_url = "https://dashscope.example"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tasks: dict[str, FakeTask] = {}
        self.errors: dict[str, list[Exception]] = {"create": [], "get": [], "list": [], "cancel": []}
        self.calls: dict[str, int] = {"create": 0, "get": 0, "list": 0, "cancel": 0}
        self.list_windows: list[float] = []  # seconds each list call spanned
        self.made_despite_error = False  # the next create error still makes a task (a lost answer)
        self._ids = itertools.count(1)

    def fail_next(self, kind: str, *errors: Exception) -> None:
        self.errors[kind].extend(errors)

    def _call(self, kind: str) -> None:
        self.calls[kind] += 1
        if self.errors[kind]:
            raise self.errors[kind].pop(0)

    def create_task(self, request: CreateTaskRequest) -> CreateTaskResponse:
        self.calls["create"] += 1
        if self.errors["create"]:
            error = self.errors["create"].pop(0)
            if self.made_despite_error:
                self.made_despite_error = False
                self._make(request)
            raise error
        task = self._make(request)
        return CreateTaskResponse.model_validate(
            {
                "request_id": f"r-create-{task.task_id}",
                "output": {"task_id": task.task_id, "task_status": "PENDING"},
            }
        )

    def _make(self, request: CreateTaskRequest | None, *, at: float | None = None) -> FakeTask:
        task = FakeTask(
            task_id=f"t-{next(self._ids)}",
            created_at=self.clock.now() if at is None else at,
            request=request,
            prompt=request.input.prompt if request is not None else None,
        )
        self.tasks[task.task_id] = task
        return task

    def unclaimed_task(
        self, *, at: float, status: TaskStatus, prompt: str | None = None, key: str = "key-ours"
    ) -> FakeTask:
        """A task no job claimed: one a lost create made, or (another `key`) another workload's; its
        prompt shows once it succeeded."""
        task = self._make(None, at=at)
        task.prompt, task.key = prompt, key
        self.finish(task.task_id, status)
        return task

    def finish(
        self, task_id: str, status: TaskStatus = TaskStatus.SUCCEEDED, *, code: str | None = None
    ) -> None:
        task = self.tasks[task_id]
        task.status = status
        task.code = code
        if status is TaskStatus.SUCCEEDED:
            task.video_url = f"https://results.example/{task_id}.mp4?Expires=1"
            task.usage = {
                "duration": 8.0,
                "input_video_duration": 4.0,
                "output_video_duration": 4.0,
                "SR": 720,
                "video_count": 1,
            }

    def get_task(self, task_id: str) -> TaskResponse:
        self._call("get")
        task = self.tasks.get(task_id)
        if task is None:
            return TaskResponse.model_validate(
                {"request_id": "r-q", "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            )
        output: dict[str, Any] = {"task_id": task_id, "task_status": task.status.value}
        if task.status is TaskStatus.SUCCEEDED:
            output.update(video_url=task.video_url, orig_prompt=task.prompt)
        if task.code:
            output.update(code=task.code, message=f"the task {task.status.value.lower()}")
        return TaskResponse.model_validate(
            {"request_id": f"r-q-{task_id}", "output": output, "usage": task.usage}
        )

    def cancel_task(self, task_id: str) -> str:
        self._call("cancel")
        task = self.tasks.get(task_id)
        if task is None or task.status is not TaskStatus.PENDING:
            raise FinalError(400, "UnsupportedOperation", "only PENDING tasks can be canceled", "r-c")
        task.status = TaskStatus.CANCELED
        return "r-c"

    def list_tasks(
        self, *, start: datetime, end: datetime, page_no: int = 1, page_size: int = 10, **filters: Any
    ) -> TaskList:
        self._call("list")
        self.list_windows.append(end.timestamp() - start.timestamp())
        window = [t for t in self.tasks.values() if start.timestamp() <= t.created_at <= end.timestamp()]
        window.sort(key=lambda t: t.created_at, reverse=True)
        page = window[(page_no - 1) * page_size : page_no * page_size]
        data = [
            {
                "task_id": t.task_id,
                "status": t.status.value,
                "gmt_create": int(t.created_at * 1000),
                "request_id": f"r-{t.task_id}",
                "api_key_id": t.key,
            }
            for t in page
        ]
        pages = max(1, -(-len(window) // page_size))
        return TaskList.model_validate(
            {
                "data": data,
                "page_no": page_no,
                "page_size": page_size,
                "total": len(window),
                "total_page": pages,
            }
        )

    def iter_tasks(self, *, start: datetime, end: datetime, **filters: Any) -> Iterator[TaskListItem]:
        yield from self.list_tasks(start=start, end=end, page_size=1000).data


# --------------------------------------------------------------------------- messaging


class FakeNotifier:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.published.append((detail_type, dict(detail)))

    def types(self) -> list[str]:
        return [detail_type for detail_type, _ in self.published]


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)


class FakeDownloader:
    """Result URLs -> bytes; an exception queued for a URL is raised instead of serving it."""

    def __init__(self) -> None:
        self.results: dict[str, bytes] = {}
        self.declared: dict[str, int] = {}  # a Content-Length other than the body's (a cut transfer)
        self.errors: list[Exception] = []

    @contextmanager
    def open(self, url: str) -> Iterator[tuple[int | None, Iterator[bytes]]]:
        if self.errors:
            raise self.errors.pop(0)
        body = self.results.get(url, b"edited:" + url.encode())
        yield self.declared.get(url, len(body)), iter([body[i : i + 4] for i in range(0, len(body), 4)])


# --------------------------------------------------------------------------- wiring


@dataclass
class World:
    """Services wired to fakes, and the fakes themselves for the test to drive and inspect."""

    svc: Services
    clock: FakeClock
    store: FakeJobStore
    objects: FakeObjectStore
    api: FakeApi
    notifier: FakeNotifier
    completion: FakeQueue
    long_clips: FakeQueue
    downloader: FakeDownloader
    ledger: FakeLedger
    lease: FakeLease
    metrics: FakeMetrics


def settings(**overrides: Any) -> Settings:
    values = {
        "BUCKET_NAME": BUCKET,
        "JOB_TABLE_NAME": "jobs",
        "COMPLETE_QUEUE_URL": "https://sqs.example/complete",
        "API_KEY_SECRET_ID": "secret",
        "LONG_CLIP_QUEUE_URL": "https://sqs.example/longclip",
        "MAX_CONCURRENT_TASKS": 2,
        **overrides,
    }
    return Settings.model_validate(values)


def world(**setting_overrides: Any) -> World:
    clock = FakeClock()
    store, objects, api = FakeJobStore(), FakeObjectStore(), FakeApi(clock)
    notifier, completion, long_clips, downloader = FakeNotifier(), FakeQueue(), FakeQueue(), FakeDownloader()
    ledger, lease, metrics = FakeLedger(), FakeLease(), FakeMetrics()
    svc = Services(
        settings=settings(**setting_overrides),
        store=store,
        objects=objects,
        api=api,
        notifier=notifier,
        completion=completion,
        downloader=downloader,
        long_clips=long_clips,
        ledger=ledger,
        lease=lease,
        metrics=metrics,
        clock=clock,
    )
    return World(
        svc, clock, store, objects, api, notifier, completion, long_clips, downloader, ledger, lease, metrics
    )


def make_job(w: World | None = None, *, stem: str = "team/clip", **fields: Any) -> Job:
    """A valid QUEUED job whose inputs exist in `w`'s bucket (when given)."""
    video = SourceObject(key=f"incoming/{stem}.mp4", version_id="v-video")
    sidecar = SourceObject(key=f"incoming/{stem}.json", version_id="v-sidecar")
    if w is not None:
        video_info = w.objects.put(video.key, b"\x00video")
        sidecar_info = w.objects.put(sidecar.key, b'{"prompt": "snow"}')
        video = SourceObject(key=video.key, version_id=video_info.version_id, etag=video_info.etag)
        sidecar = SourceObject(key=sidecar.key, version_id=sidecar_info.version_id, etag=sidecar_info.etag)
    now = w.clock.now() if w is not None else START
    values: dict[str, Any] = {
        "job_id": f"j-{stem.replace('/', '-')}",
        "state": JobState.QUEUED,
        "bucket": BUCKET,
        "stem": stem,
        "video": video,
        "sidecar": sidecar,
        "prompt": "make it snow",
        "request": EditRequest(parameters=EditParameters(resolution="720P")),
        "created_at": now,
        "updated_at": now,
        "next_poll_at": now,
        **fields,
    }
    return Job.model_validate(values)


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class FakeLedger:
    """`wanedit.ports.BudgetLedger` in memory, with the DynamoDB ledger's all-or-none commit."""

    def __init__(self) -> None:
        self.entries: dict[Period, LedgerEntry] = {}

    def entry(self, period: Period) -> LedgerEntry:
        return self.entries.get(period, LedgerEntry(period, 0.0, 0.0, {}))

    def commit(self, job_id: str, amount: float, limits: Sequence[tuple[Period, float]]) -> bool:
        pending = [(p, limit) for p, limit in limits if job_id not in self.entry(p).jobs]
        if any(self.entry(p).spent + self.entry(p).committed + amount > limit for p, limit in pending):
            return False
        for period, _ in pending:
            entry = self.entry(period)
            self.entries[period] = LedgerEntry(
                period, entry.spent, round(entry.committed + amount, 6), {**entry.jobs, job_id: amount}
            )
        return True

    def settle(self, job_id: str, actual: float, period: Period) -> None:
        entry = self.entry(period)
        if job_id in entry.jobs:
            jobs = {k: v for k, v in entry.jobs.items() if k != job_id}
            committed = round(entry.committed - entry.jobs[job_id], 6)
            self.entries[period] = LedgerEntry(period, round(entry.spent + actual, 6), committed, jobs)


class FakeLease:
    """`wanedit.ports.PollerLease` in memory: held until released or its deadline passes."""

    def __init__(self) -> None:
        self.holder: str | None = None
        self.until = 0.0

    def acquire(self, holder: str, now: float, deadline: float | None = None) -> bool:
        if self.holder not in (None, holder) and now < self.until:
            return False
        self.holder, self.until = holder, deadline if deadline is not None else now + 60.0
        return True

    def renew(self, holder: str, now: float, deadline: float | None = None) -> bool:
        return self.holder == holder and now < self.until and self.acquire(holder, now, deadline)

    def release(self, holder: str) -> None:
        if self.holder == holder:
            self.holder = None


class FakeMetrics:
    """`wanedit.ports.Metrics` that remembers: (name, dimension) -> the values emitted."""

    def __init__(self) -> None:
        self.emitted: dict[tuple[str, str | None], list[float]] = {}

    def emit(self, metric: Metric, value: float = 1.0, *, dimension: str | None = None) -> None:
        assert (metric.by is None) == (dimension is None), metric
        self.emitted.setdefault((metric.name, dimension), []).append(value)

    def total(self, metric: Metric, dimension: str | None = None) -> float:
        return sum(self.emitted.get((metric.name, dimension), []))
