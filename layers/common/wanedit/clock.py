"""Time as a collaborator: production uses the system clock, tests and benchmarks a simulated one."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Epoch seconds now, and a way to wait that a simulation can fast-forward."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
