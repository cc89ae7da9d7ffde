"""The emulator's clock: the one that stamps every time it reports.

The real service shares the wall clock with AWS, so the emulator never runs a clock of its own:
``WallClock`` is the wall clock (``wanedit local up``, ``python -m local.emulator``), and
``ManualClock`` moves only when a test calls ``advance`` (so tests never sleep) and is shared with
the pipeline's simulated clock. A time scale never touches the clock; it shortens durations (see
``Emulator``). Both return epoch seconds (floats).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

CST = timezone(timedelta(hours=8))  # the service reports wall times in UTC+8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> float: ...


class WallClock:
    """The real wall clock, as the service and AWS both read it."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start: float | None = None) -> None:
        # default: a fixed, realistic instant (2026-04-03 00:00:00 UTC+8), so runs are reproducible
        self._now = float(start) if start is not None else datetime(2026, 4, 3, tzinfo=CST).timestamp()
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += float(seconds)
            return self._now

    def set(self, epoch: float) -> None:
        with self._lock:
            if epoch < self._now:
                raise ValueError("a clock does not go backwards")
            self._now = float(epoch)


def fmt_cst(epoch: float) -> str:
    """``YYYY-MM-DD HH:mm:ss.SSS`` in UTC+8, as the service reports times."""
    dt = datetime.fromtimestamp(epoch, tz=CST)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def epoch_ms(epoch: float) -> int:
    """Epoch milliseconds, as the list API reports ``gmt_create``, ``start_time`` and ``end_time``.

    Through datetime, like ``fmt_cst``: a task's list entry and its query show the same millisecond.
    """
    return (datetime.fromtimestamp(epoch, tz=UTC) - _EPOCH) // timedelta(milliseconds=1)


def parse_compact_cst(text: str) -> float:
    """``YYYYMMDDhhmmss`` (UTC+8 wall time, as the list API takes it) -> epoch seconds."""
    dt = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CST)
    return dt.timestamp()
