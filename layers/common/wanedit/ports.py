"""What the use cases need from the world, as Protocols.

The adapters (DynamoDB, S3, SQS, EventBridge/SNS, the result download) and the API client
implement them for real; the unit tests' in-memory fakes implement them too, so every decision of
the use cases is tested without moto or HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Unpack

from wanedit.domain.budget import Period
from wanedit.domain.job import Claim, Job, JobChanges
from wanedit.domain.lifecycle import JobState, check_transition
from wanedit.media.reader import RangeReader
from wanedit.metrics import Metric

if TYPE_CHECKING:
    from wanedit.dashscope.models import (
        CreateTaskRequest,
        CreateTaskResponse,
        TaskList,
        TaskListItem,
        TaskResponse,
        TaskStatus,
    )


@dataclass(frozen=True)
class ObjectInfo:
    """One object version as S3 describes it."""

    key: str
    size: int
    etag: str
    version_id: str | None
    content_type: str | None = None

    @property
    def identity(self) -> str:
        return self.version_id or self.etag


@dataclass(frozen=True)
class ConditionalWrite:
    """One write of a job: `to` (and `changes`) if it is in one of `states` and still `held`."""

    job_id: str
    states: list[JobState]
    to: JobState
    held: Claim | None
    now: float
    next_poll_at: float | None  # None, or a terminal `to`: off the poller's lists
    changes: JobChanges


@dataclass(frozen=True)
class LedgerEntry:
    """One budget period as the ledger holds it: what was spent, what is committed, and by whom."""

    period: Period
    spent: float
    committed: float
    jobs: dict[str, float]  # job id -> its committed estimate


@dataclass(frozen=True)
class HalfRecord:
    """A clip or sidecar that arrived alone and waits for its partner (WAITING_PAIR)."""

    stem: str
    kind: str
    key: str
    version: str
    updated_at: float


@dataclass(frozen=True)
class CreateLock:
    """Who may create a task of one prompt fingerprint now, and until when (`usecases.submission`)."""

    holder: str  # the job id whose create it is
    until: float


class JobStore(Protocol):
    """Jobs, their moves along the lifecycle, task ownership and the account's task slots.

    Every write is conditional: a move names the states it comes from (and the store refuses one
    the lifecycle does not allow), so of two workers racing on one job only one wins; the loser
    gets None. ``next_poll_at`` keeps a non-terminal job on the poller's lists.

    A store implements `write`, the one conditional write; the three kinds of write below are the
    same for every store, so they are defined here, once (a store subclasses this Protocol).
    """

    def write(self, write: ConditionalWrite) -> Job | None:
        """Make `write` if its condition holds (None when it does not: another worker got there first)."""
        ...

    def transition(
        self,
        job_id: str,
        expected: Iterable[JobState],
        to: JobState,
        *,
        now: float,
        next_poll_at: float | None = None,
        **changes: Unpack[JobChanges],
    ) -> Job | None:
        """Move the job from one of `expected` to `to`; `IllegalTransition` if that is no lifecycle edge."""
        states = list(expected)
        check_transition(states, to)
        return self.write(ConditionalWrite(job_id, states, to, None, now, next_poll_at, changes))

    def reschedule(
        self, job_id: str, state: JobState, *, now: float, next_poll_at: float, **changes: Unpack[JobChanges]
    ) -> Job | None:
        """Look at the job again at `next_poll_at`, in its state (recording what was seen, if anything)."""
        return self.write(ConditionalWrite(job_id, [state], state, None, now, next_poll_at, changes))

    def claim(
        self,
        job_id: str,
        state: JobState,
        held: Claim,
        *,
        now: float,
        next_poll_at: float,
        **changes: Unpack[JobChanges],
    ) -> Job | None:
        """Take the job for a worker in its state, if it is still held as `held` says."""
        return self.write(ConditionalWrite(job_id, [state], state, held, now, next_poll_at, changes))

    def put_new(self, job: Job) -> bool: ...

    def get(self, job_id: str) -> Job | None: ...

    def active(self, limit: int = 100) -> list[Job]:
        """Every job the poller follows (not the queued ones), most overdue first."""
        ...

    def queued(self, now: float, limit: int) -> list[Job]:
        """Queued jobs ready to be submitted, first come first served."""
        ...

    def held(self, limit: int) -> list[Job]:
        """Jobs held over budget, in arrival order."""
        ...

    def next_poll_due(self) -> float | None: ...

    def next_queued_due(self) -> float | None: ...

    def list_jobs(self, limit: int = 1000) -> list[Job]: ...

    def record_half(
        self, bucket: str, stem: str, *, kind: str, key: str, version: str, now: float
    ) -> None: ...

    def clear_half(self, bucket: str, stem: str) -> None: ...

    def waiting_halves(self) -> list[HalfRecord]: ...

    def claim_task(self, task_id: str, job_id: str, now: float) -> bool: ...

    def task_owner(self, task_id: str) -> str | None: ...

    def pause_submissions(self, until: float, reason: str, now: float) -> bool:
        """Stop creating tasks until `until`; True when this call began the pause (it announces it)."""
        ...

    def submissions_paused_until(self, now: float) -> float | None: ...

    def key_identities(self) -> set[str]:
        """The ``api_key_id`` values the service has shown on tasks our jobs own (our keys)."""
        ...

    def note_key_identities(self, ids: set[str], now: float) -> None: ...

    def acquire_create_lock(self, fingerprint: str, job_id: str, *, now: float, until: float) -> bool:
        """Hold the create lock of `fingerprint` for `job_id` until `until`, if it is free at `now`.

        Free: absent, released, expired (its `until` <= `now`), or held by `job_id` already (a retry
        after a crash: the lock is renewed). One conditional write, so of two jobs only one holds it.
        """
        ...

    def create_lock(self, fingerprint: str, now: float) -> CreateLock | None:
        """The create lock of `fingerprint` as it stands at `now` (None: free)."""
        ...

    def release_create_lock(self, fingerprint: str, job_id: str) -> None:
        """Free the lock, if `job_id` still holds it (a lock another job took meanwhile stays)."""
        ...

    def acquire_slot(self, job_id: str, cap: int, now: float) -> bool: ...

    def release_slot(self, job_id: str) -> None: ...

    def slot_holders(self) -> dict[str, float]: ...


class Metrics(Protocol):
    """Counts and measures for the dashboard (`wanedit.metrics` names every one)."""

    def emit(self, metric: Metric, value: float = 1.0, *, dimension: str | None = None) -> None: ...


class PollerLease(Protocol):
    """One poller at a time (`wanedit.adapters.lease`): a holder polls only while its lease holds."""

    def acquire(self, holder: str, now: float, deadline: float | None = None) -> bool: ...

    def renew(self, holder: str, now: float, deadline: float | None = None) -> bool: ...

    def release(self, holder: str) -> None: ...


class BudgetLedger(Protocol):
    """What the budgets have committed and spent, per UTC day and month (see `usecases.budget`)."""

    def commit(self, job_id: str, amount: float, limits: Sequence[tuple[Period, float]]) -> bool:
        """Count the job in every period where it is not yet, if each period's limit leaves room."""
        ...

    def settle(self, job_id: str, actual: float, period: Period) -> None:
        """Replace the job's committed estimate in `period` with what it cost; once per job."""
        ...

    def entry(self, period: Period) -> LedgerEntry: ...


class ObjectStore(Protocol):
    """The bucket: ranged reads for validation, presigned URLs for the API, writes of results."""

    bucket: str

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo | None: ...

    def range_reader(self, info: ObjectInfo) -> RangeReader: ...

    def read_head(self, info: ObjectInfo, max_bytes: int) -> bytes: ...

    def presign_get_version(self, key: str, version_id: str | None, ttl_seconds: int) -> str: ...

    def put_json(
        self, key: str, document: Mapping[str, Any], *, tags: Mapping[str, str] | None = None
    ) -> None: ...

    def put_bytes(
        self, key: str, body: bytes, *, content_type: str, tags: Mapping[str, str] | None = None
    ) -> None: ...

    def tag_version(self, key: str, version_id: str | None, tags: Mapping[str, str]) -> bool: ...

    def download_version(self, key: str, version_id: str | None, path: str) -> None: ...

    def upload_file(
        self, key: str, path: str, *, content_type: str, tags: Mapping[str, str] | None = None
    ) -> ObjectInfo: ...

    def upload_stream(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        content_type: str = "video/mp4",
        tags: Mapping[str, str] | None = None,
    ) -> int: ...

    def delete_prefix(self, prefix: str) -> int: ...


class TaskApi(Protocol):
    """The wan2.7-videoedit API (`wanedit.dashscope.DashScopeClient`)."""

    base_url: str

    def create_task(self, request: CreateTaskRequest) -> CreateTaskResponse: ...

    def get_task(self, task_id: str) -> TaskResponse: ...

    def cancel_task(self, task_id: str) -> str: ...

    def list_tasks(
        self,
        *,
        start: datetime,
        end: datetime,
        status: TaskStatus | str | None = None,
        model_name: str | None = None,
        page_no: int = 1,
        page_size: int = 10,
    ) -> TaskList: ...

    def iter_tasks(
        self,
        *,
        start: datetime,
        end: datetime,
        status: TaskStatus | str | None = None,
        model_name: str | None = None,
        page_size: int = 100,
        max_pages: int = 50,
    ) -> Iterator[TaskListItem]: ...


class Notifier(Protocol):
    """Announces an outcome (EventBridge for rules, SNS for people)."""

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


M_contra = TypeVar("M_contra", contravariant=True)


class Queue(Protocol[M_contra]):
    """Hands a message to the function behind a queue."""

    def send(self, message: M_contra) -> None: ...


class ResultUnavailable(Exception):
    """The result URL answered but will not give the file (expired link, 403/404)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"result download refused: HTTP {status} {reason}")
        self.status = status


class ResultDownloadError(Exception):
    """A transient failure fetching the result (5xx, reset, timeout); worth retrying later.

    Built without the URL or the underlying message, which would carry the URL's signature.
    """


class ResultDownloader(Protocol):
    """Streams a finished task's result URL: (content length or None, chunks).

    Raises ResultUnavailable (the URL will not give the file) or ResultDownloadError (try later).
    """

    def open(self, url: str) -> AbstractContextManager[tuple[int | None, Iterator[bytes]]]: ...
