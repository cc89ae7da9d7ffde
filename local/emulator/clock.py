"""Emulated time.

The emulator never reads the wall clock directly for task timing: it asks a clock. ``ScaledClock``
runs ``time_scale`` times faster than real time from its start; ``ManualClock`` moves only when a test
calls ``advance`` (so tests never sleep). Both return epoch seconds (floats).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol

CST = timezone(timedelta(hours=8))  # the service reports wall times in UTC+8


class Clock(Protocol):
    def now(self) -> float: ...


class ScaledClock:
    """Emulated epoch = start + (real elapsed) * time_scale."""

    def __init__(self, time_scale: float = 30.0, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = float(time_scale)
        self._real0 = time.monotonic()
        self._emu0 = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._emu0 + (time.monotonic() - self._real0) * self.time_scale


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


def parse_compact_cst(text: str) -> float:
    """``YYYYMMDDhhmmss`` (UTC+8 wall time, as the list API takes it) -> epoch seconds."""
    dt = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CST)
    return dt.timestamp()
