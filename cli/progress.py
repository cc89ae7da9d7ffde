"""Showing a job move through its states: one live, terminal-wide line on a TTY; plain lines otherwise."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from wanedit.domain.job import Job, JobState

STEPS = ("uploaded", "queued", "submitted", "running", "saving", "done")
LONG_CLIP_STEPS = ("uploaded", "splitting", "editing segments", "stitching", "done")


def step_of(job: Job | None) -> str:
    """The user-facing step of a job (None: uploaded, not yet paired and validated)."""
    if job is None:
        return "uploaded"
    state = job.state
    if state is JobState.SPLITTING:
        return "splitting"
    if state is JobState.SEGMENTED:
        return "editing segments"
    if state is JobState.STITCHING:
        return "stitching"
    if state in (JobState.QUEUED, JobState.SUBMITTING, JobState.RECONCILING):
        return "queued"
    if state is JobState.SUBMITTED:
        return "running" if job.task_status == "RUNNING" else "submitted"
    if state in (JobState.SUCCEEDED, JobState.PERSISTING):
        return "saving"
    if state is JobState.PERSISTED:
        return "done"
    return state.value.lower()  # rejected, failed, canceled, expired


class Progress:
    """Renders each observation; repeats nothing on a plain stream (CI logs stay readable)."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self._stream = stream or sys.stdout
        self._tty = self._stream.isatty() if tty is None else tty
        self._last = ""

    def show(self, job: Job | None, elapsed: float) -> None:
        step = step_of(job)
        detail = f" task {job.task_id}" if job and job.task_id else ""
        if job is not None and job.segments:
            detail = f" {len(job.segments)} segments"
        if self._tty:
            width = shutil.get_terminal_size((80, 20)).columns
            long_clip = job is not None and (bool(job.segments) or step in LONG_CLIP_STEPS[1:4])
            steps = LONG_CLIP_STEPS if long_clip else STEPS
            bar = " > ".join(s.upper() if s == step else s for s in steps)
            line = f"[{elapsed:6.1f} s] {bar}{detail}"
            self._stream.write("\r" + line[: width - 1].ljust(width - 1))
            self._stream.flush()
        elif step != self._last:
            self._stream.write(f"[{elapsed:6.1f} s] {step}{detail}\n")
            self._stream.flush()
        self._last = step

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
