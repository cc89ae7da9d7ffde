"""Task records and the emulated scheduler (PENDING -> RUNNING -> SUCCEEDED/FAILED/CANCELED).

The scheduler is a small discrete-event simulation driven by the emulator's clock: on each ``tick(now)``
it replays, in time order, every task end, every resume of a suspended task and every start that became
possible up to ``now`` (at most ``running_cap`` RUNNING per account, FIFO, each task PENDING at least
its ``ready_at``). So a ``ManualClock`` jump of an hour gives exactly the timestamps a real hour would
have given.

SUSPENDED (a status both official SDKs know): the service holds the task; it neither progresses nor
ends until resumed. A suspended PENDING task leaves the queue (it does not block the tasks behind it)
and goes back to its place when resumed; a suspended RUNNING task keeps its slot and the rest of its
run time.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .faults import TaskOutcome
from .render import RenderResult


@dataclass
class Task:
    seq: int
    task_id: str
    account: str
    api_key: str  # the key it was created with (an account's workload key for tasks made out of band)
    request_id: str
    body: dict[str, Any]
    prompt: str | None
    prompt_used: str
    media: list[dict[str, str]]
    params: dict[str, Any]
    submit_at: float
    ready_at: float
    run_seconds: float  # on the clock (the time scale already applied)
    outcome: TaskOutcome | None = None
    # PENDING | RUNNING | SUSPENDED | ENDED (run over, outcome pending) | SUCCEEDED | FAILED | CANCELED
    status: str = "PENDING"
    scheduled_at: float | None = None
    end_at: float | None = None
    suspended_from: str | None = None  # PENDING or RUNNING: where a resume puts it back
    resume_at: float | None = None  # a suspension that ends on its own
    remaining: float | None = None  # run time left of a task suspended while RUNNING
    code: str | None = None
    message: str | None = None
    result: RenderResult | None = None
    error: tuple[str, str] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None

    @property
    def final(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "CANCELED")

    @property
    def shown_status(self) -> str:
        """What the API reports: a task whose run is over but whose outcome is not settled is RUNNING."""
        return "RUNNING" if self.status == "ENDED" else self.status


class Scheduler:
    """Holds the tasks; all methods must be called with the emulator's lock held."""

    def __init__(self, running_cap: int, on_start: Callable[[Task], None]) -> None:
        self.running_cap = running_cap
        self.on_start = on_start
        self.tasks: dict[str, Task] = {}
        self.pending: dict[str, deque[Task]] = {}
        self.running: dict[str, set[str]] = {}  # per account; a task suspended while RUNNING stays here
        self.suspended: dict[str, Task] = {}
        self.last_free: dict[str, float] = {}
        self.max_running_seen: dict[str, int] = {}
        self.seq = 0

    def add(self, task: Task) -> None:
        self.tasks[task.task_id] = task
        self.pending.setdefault(task.account, deque()).append(task)

    def running_count(self, account: str) -> int:
        return len(self.running.get(account, ()))

    def cancel_pending(self, task: Task, now: float) -> None:
        q = self.pending.get(task.account)
        if q is not None and task in q:
            q.remove(task)
        task.status = "CANCELED"
        task.end_at = now
        task.done.set()

    def forget(self, task: Task, now: float) -> None:
        """Drop every trace of a task (the service lost it): it frees its place and, now, its slot."""
        del self.tasks[task.task_id]
        queue = self.pending.get(task.account)
        if queue is not None and task in queue:
            queue.remove(task)
        running = self.running.get(task.account, set())
        if task.task_id in running:
            running.discard(task.task_id)
            self.last_free[task.account] = now
        self.suspended.pop(task.task_id, None)

    def suspend(self, task: Task, now: float, until: float | None) -> None:
        if task.status == "PENDING":
            self.pending[task.account].remove(task)
        elif task.status == "RUNNING":
            assert task.end_at is not None
            task.remaining = max(0.0, task.end_at - now)
            task.end_at = None
        else:
            raise ValueError(f"only a PENDING or RUNNING task can be suspended (this one is {task.status})")
        task.suspended_from, task.status, task.resume_at = task.status, "SUSPENDED", until
        self.suspended[task.task_id] = task

    def resume(self, task: Task, at: float) -> None:
        if task.status != "SUSPENDED":
            raise ValueError(f"only a SUSPENDED task can be resumed (this one is {task.status})")
        del self.suspended[task.task_id]
        if task.suspended_from == "RUNNING":
            task.status, task.end_at = "RUNNING", at + (task.remaining or 0.0)
        else:
            task.status, task.ready_at = "PENDING", max(task.ready_at, at)
            queue = self.pending.setdefault(task.account, deque())
            place = next((i for i, other in enumerate(queue) if other.seq > task.seq), len(queue))
            queue.insert(place, task)  # back to its place in the FIFO
        task.suspended_from = task.resume_at = task.remaining = None

    def tick(self, now: float) -> None:
        while True:
            best: tuple[float, int, int, str, Task] | None = None
            for ids in self.running.values():
                for tid in ids:
                    t = self.tasks[tid]
                    if t.status == "RUNNING" and t.end_at is not None and t.end_at <= now:
                        cand = (t.end_at, 0, t.seq, "end", t)
                        if best is None or cand[:3] < best[:3]:
                            best = cand
            for t in self.suspended.values():
                if t.resume_at is not None and t.resume_at <= now:
                    cand = (t.resume_at, 1, t.seq, "resume", t)
                    if best is None or cand[:3] < best[:3]:
                        best = cand
            for account, q in self.pending.items():
                if not q or self.running_count(account) >= self.running_cap:
                    continue
                head = q[0]
                start = max(head.ready_at, self.last_free.get(account, 0.0))
                if start <= now:
                    cand = (start, 2, head.seq, "start", head)
                    if best is None or cand[:3] < best[:3]:
                        best = cand
            if best is None:
                return
            at, _, _, kind, t = best
            if kind == "end":
                self.running[t.account].discard(t.task_id)
                self.last_free[t.account] = at
                t.status = "ENDED"
                self.settle(t)
            elif kind == "resume":
                self.resume(t, at)
            else:
                self.pending[t.account].popleft()
                t.status = "RUNNING"
                t.scheduled_at = at
                t.end_at = at + t.run_seconds
                self.running.setdefault(t.account, set()).add(t.task_id)
                n = self.running_count(t.account)
                self.max_running_seen[t.account] = max(self.max_running_seen.get(t.account, 0), n)
                self.on_start(t)

    @staticmethod
    def settle(t: Task) -> bool:
        """Turn an ENDED task into its final status if its outcome is known. True when final."""
        if t.final:
            return True
        if t.status != "ENDED":
            return False
        if t.outcome is not None:
            t.status = t.outcome.status
            if t.outcome.status == "FAILED":
                t.code, t.message = t.outcome.code, t.outcome.message
            return True
        if not t.done.is_set():
            return False
        if t.error is not None:
            t.status = "FAILED"
            t.code, t.message = t.error
        else:
            t.status = "SUCCEEDED"
        return True
