"""The job lifecycle: its states, and the one table of which state may follow which.

`TRANSITIONS` is the source of truth. The job store refuses any move that is not an edge here
(`IllegalTransition`), README draws it (``python -m wanedit.domain.lifecycle --mermaid``, checked
current by a test), and each edge names the step that owns it. "Look again later" is not a
transition: the store reschedules a job in its state. A job exists from QUEUED, REJECTED or
SPLITTING on; WAITING_PAIR is a half record (a clip or sidecar still missing its partner).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "QUEUED"  # valid, waiting for a free slot (or backing off after Throttling)
    HELD = "HELD"  # over the daily or monthly budget: waiting until it fits
    SUBMITTING = "SUBMITTING"  # a worker holds a slot and is calling create
    RECONCILING = "RECONCILING"  # create's outcome unknown: find the task before any resubmission
    SUBMITTED = "SUBMITTED"  # the API has the task (task_status PENDING or RUNNING)
    SUCCEEDED = "SUCCEEDED"  # the API finished; handed to the completion queue
    PERSISTING = "PERSISTING"  # a completion worker is streaming the result into the bucket
    PERSISTED = "PERSISTED"  # edited MP4 + manifest are in the bucket: done
    REJECTED = "REJECTED"  # bad input, never sent to the API
    FAILED = "FAILED"  # the API (or persisting the result) failed for good
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"  # the task id or result outlived its 24 h
    SPLITTING = "SPLITTING"  # long clip: waiting for (or in) the split worker
    SEGMENTED = "SEGMENTED"  # long clip: its segments are jobs of their own; waiting for all of them
    STITCHING = "STITCHING"  # long clip: a worker is stitching the edited segments

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def holds_slot(self) -> bool:
        """States in which the job may occupy one of the account's concurrent task slots."""
        return self in SLOT_HOLDING


S = JobState


@dataclass(frozen=True)
class Edge:
    source: JobState
    target: JobState
    step: str  # the use-case step that makes this move
    why: str


EDGES: tuple[Edge, ...] = (
    Edge(S.QUEUED, S.SUBMITTING, "submission", "a slot is free: the submitter takes the job"),
    Edge(S.QUEUED, S.CANCELED, "cancel / long clip", "the user cancels; a failed clip withdraws its segment"),
    Edge(S.QUEUED, S.HELD, "budget", "its estimate does not fit today's or this month's budget"),
    Edge(S.HELD, S.QUEUED, "budget", "it fits now (a new day or month, a raised budget)"),
    Edge(S.HELD, S.SPLITTING, "budget", "a held long clip fits now"),
    Edge(S.HELD, S.CANCELED, "cancel", "the user cancels a held job"),
    Edge(S.SUBMITTING, S.SUBMITTED, "submission", "the task is created and claimed"),
    Edge(S.SUBMITTING, S.RECONCILING, "submission / poll", "create's answer was lost, or its worker died"),
    Edge(S.SUBMITTING, S.QUEUED, "submission", "throttled, or refused before anything was made"),
    Edge(S.SUBMITTING, S.FAILED, "submission", "the API refused the request for good"),
    Edge(S.SUBMITTING, S.CANCELED, "submission", "an input was deleted or replaced meanwhile"),
    Edge(S.RECONCILING, S.SUBMITTED, "reconcile", "the lost create's task is found and adopted"),
    Edge(S.RECONCILING, S.QUEUED, "reconcile", "the list shows no such task: none was made"),
    Edge(S.RECONCILING, S.FAILED, "reconcile", "the service refuses the task list: no way to tell"),
    Edge(S.RECONCILING, S.EXPIRED, "reconcile", "no task confirmed within the 24 h task lifetime"),
    Edge(S.SUBMITTED, S.SUCCEEDED, "poll", "the task succeeded: handed to the completion queue"),
    Edge(S.SUBMITTED, S.FAILED, "poll", "the task failed"),
    Edge(S.SUBMITTED, S.CANCELED, "poll / cancel", "the task was canceled"),
    Edge(S.SUBMITTED, S.EXPIRED, "poll", "the task outlived 24 h or the service lost it"),
    Edge(S.SUBMITTED, S.QUEUED, "poll", "a long clip's segment whose task failed is retried"),
    Edge(S.SUCCEEDED, S.PERSISTING, "complete", "a completion worker claims the result"),
    Edge(S.PERSISTING, S.PERSISTED, "complete", "the edit, its manifest and its event are out"),
    Edge(S.PERSISTING, S.SUCCEEDED, "complete", "a transient failure: released for the next try"),
    Edge(S.PERSISTING, S.FAILED, "complete", "the result could not be saved within the attempts"),
    Edge(S.PERSISTING, S.EXPIRED, "complete", "the service no longer has the result"),
    Edge(S.SPLITTING, S.SEGMENTED, "long clip: split", "the segments are in work/ and listed"),
    Edge(S.SPLITTING, S.FAILED, "long clip: split", "the clip cannot be split"),
    Edge(S.SPLITTING, S.CANCELED, "cancel", "the user cancels the clip"),
    Edge(S.SPLITTING, S.HELD, "budget", "the whole clip does not fit the budget"),
    Edge(S.SEGMENTED, S.STITCHING, "long clip: stitch", "every segment is saved"),
    Edge(S.SEGMENTED, S.FAILED, "long clip: poll", "a segment failed for good"),
    Edge(S.SEGMENTED, S.CANCELED, "long clip: poll / cancel", "a segment was canceled, or the clip"),
    Edge(S.STITCHING, S.PERSISTED, "long clip: stitch", "the stitched edit and its manifest are out"),
    Edge(S.STITCHING, S.SEGMENTED, "long clip: stitch", "a transient failure: released for the next try"),
    Edge(S.STITCHING, S.FAILED, "long clip: stitch", "the segments cannot be stitched"),
)

INITIAL: frozenset[JobState] = frozenset({S.QUEUED, S.REJECTED, S.SPLITTING})
"""The states a job is created in: valid, refused, or a long clip to split."""

TERMINAL: frozenset[JobState] = frozenset({S.PERSISTED, S.REJECTED, S.FAILED, S.CANCELED, S.EXPIRED})

SLOT_HOLDING: frozenset[JobState] = frozenset({S.SUBMITTING, S.RECONCILING, S.SUBMITTED})

UNHELD: frozenset[JobState] = frozenset({S.QUEUED, S.HELD})
"""States no single worker holds: any submitter (or the budget's release) may take such a job at
any moment, so a job in one is ended transition first (a lost race never announces an end that
did not happen). Every other state is held by one worker (the submitter, the single poller, a
claim), so its end writes the report and the event first and the transition last: a crash in
between repeats them, never loses them."""

TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    state: frozenset(edge.target for edge in EDGES if edge.source is state) for state in JobState
}


class IllegalTransition(ValueError):
    """A move the lifecycle does not allow: a bug in the step that asked for it, never a race."""

    def __init__(self, source: JobState, target: JobState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[source])) or "nothing (terminal)"
        super().__init__(
            f"{source.value} -> {target.value} is not a lifecycle edge; {source.value} -> {allowed}"
        )
        self.source, self.target = source, target


def check_transition(expected: Iterable[JobState], target: JobState) -> None:
    """Raise `IllegalTransition` unless `target` may follow every one of `expected`."""
    for source in expected:
        if target not in TRANSITIONS[source]:
            raise IllegalTransition(source, target)


def check_initial(state: JobState) -> None:
    if state not in INITIAL:
        raise ValueError(f"a job cannot be created {state.value}; it starts in one of {sorted(INITIAL)}")


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram (README shows it)."""
    lines = ["stateDiagram-v2"]
    lines += [f"    [*] --> {state.value}" for state in JobState if state in INITIAL]
    lines += [f"    {e.source.value} --> {e.target.value}: {e.step}" for e in EDGES]
    lines += [f"    {state.value} --> [*]" for state in JobState if state in TERMINAL]
    return "\n".join(lines)


def owners() -> str:
    """Which step owns each move, as a Markdown table (README shows it)."""
    rows = ["| from | to | step | when |", "|---|---|---|---|"]
    rows += [f"| {e.source.value} | {e.target.value} | {e.step} | {e.why} |" for e in EDGES]
    return "\n".join(rows)


if __name__ == "__main__":
    views = {"--mermaid": mermaid, "--owners": owners}
    if len(sys.argv) != 2 or sys.argv[1] not in views:
        sys.exit("usage: python -m wanedit.domain.lifecycle --mermaid | --owners")
    print(views[sys.argv[1]]())
