"""Task records and the emulated scheduler (PENDING -> RUNNING -> SUCCEEDED/FAILED/CANCELED).

The scheduler is a small discrete-event simulation driven by the emulator's clock: on each ``tick(now)``
it replays, in emulated-time order, every task end and every start that became possible up to ``now``
(at most ``running_cap`` RUNNING per API key, FIFO, each task PENDING at least ``pending_seconds``).
So a ``ManualClock`` jump of an hour gives exactly the timestamps a real hour would have given.
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
    api_key: str
    request_id: str
    body: dict[str, Any]
    prompt: str | None
    prompt_used: str
    media: list[dict[str, str]]
    params: dict[str, Any]
    submit_at: float
    ready_at: float
    run_seconds: float
    outcome: TaskOutcome | None = None
    status: str = "PENDING"  # PENDING | RUNNING | ENDED (emulated end reached, outcome pending) | final
    scheduled_at: float | None = None
    end_at: float | None = None
    code: str | None = None
    message: str | None = None
    result: RenderResult | None = None
    error: tuple[str, str] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None

    @property
    def final(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "CANCELED")


class Scheduler:
    """Holds the tasks; all methods must be called with the emulator's lock held."""

    def __init__(self, running_cap: int, on_start: Callable[[Task], None]) -> None:
        self.running_cap = running_cap
        self.on_start = on_start
        self.tasks: dict[str, Task] = {}
        self.pending: dict[str, deque[Task]] = {}
        self.running: dict[str, set[str]] = {}
        self.last_free: dict[str, float] = {}
        self.max_running_seen: dict[str, int] = {}
        self.seq = 0

    def add(self, task: Task) -> None:
        self.tasks[task.task_id] = task
        self.pending.setdefault(task.api_key, deque()).append(task)

    def running_count(self, key: str) -> int:
        return len(self.running.get(key, ()))

    def cancel_pending(self, task: Task, now: float) -> None:
        q = self.pending.get(task.api_key)
        if q is not None and task in q:
            q.remove(task)
        task.status = "CANCELED"
        task.end_at = now
        task.done.set()

    def tick(self, now: float) -> None:
        while True:
            best: tuple[float, int, int, str, Task] | None = None
            for ids in self.running.values():
                for tid in ids:
                    t = self.tasks[tid]
                    assert t.end_at is not None
                    if t.end_at <= now:
                        cand = (t.end_at, 0, t.seq, "end", t)
                        if best is None or cand[:3] < best[:3]:
                            best = cand
            for key, q in self.pending.items():
                if not q or self.running_count(key) >= self.running_cap:
                    continue
                head = q[0]
                start = max(head.ready_at, self.last_free.get(key, 0.0))
                if start <= now:
                    cand = (start, 1, head.seq, "start", head)
                    if best is None or cand[:3] < best[:3]:
                        best = cand
            if best is None:
                return
            at, _, _, kind, t = best
            if kind == "end":
                self.running[t.api_key].discard(t.task_id)
                self.last_free[t.api_key] = at
                t.status = "ENDED"
                self.settle(t)
            else:
                self.pending[t.api_key].popleft()
                t.status = "RUNNING"
                t.scheduled_at = at
                t.end_at = at + t.run_seconds
                self.running.setdefault(t.api_key, set()).add(t.task_id)
                n = self.running_count(t.api_key)
                self.max_running_seen[t.api_key] = max(self.max_running_seen.get(t.api_key, 0), n)
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
