"""The lifecycle table: every live state can end, ends are final, the store refuses what is not an edge."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.fakes import FakeJobStore, make_job
from wanedit.domain.job import IMMUTABLE_FIELDS, Job, JobChanges
from wanedit.domain.lifecycle import (
    EDGES,
    INITIAL,
    SLOT_HOLDING,
    TERMINAL,
    TRANSITIONS,
    UNHELD,
    IllegalTransition,
    JobState,
    check_transition,
    mermaid,
    owners,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def reachable(start: JobState) -> set[JobState]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_state_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobState)


@pytest.mark.parametrize("state", sorted(set(JobState) - TERMINAL))
def test_every_live_state_can_reach_an_end(state: JobState) -> None:
    assert reachable(state) & TERMINAL, f"{state} can never end"


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_an_end_has_no_way_out(state: JobState) -> None:
    assert TRANSITIONS[state] == frozenset()


def test_every_state_is_reachable_from_a_start() -> None:
    assert set().union(*(reachable(s) for s in INITIAL)) == set(JobState)


def test_no_self_loops_and_each_edge_once() -> None:
    # "Look again later" is the store's reschedule, never a move to the same state.
    assert all(edge.source is not edge.target for edge in EDGES)
    assert len({(e.source, e.target) for e in EDGES}) == len(EDGES)


def test_slot_and_unheld_states_are_live_ones() -> None:
    assert not (SLOT_HOLDING | UNHELD) & TERMINAL
    assert JobState.SUBMITTED.holds_slot and not JobState.QUEUED.holds_slot
    assert JobState.CANCELED.is_terminal and not JobState.SEGMENTED.is_terminal


def test_check_transition_names_the_allowed_moves() -> None:
    check_transition([JobState.QUEUED], JobState.SUBMITTING)
    with pytest.raises(IllegalTransition, match="QUEUED -> PERSISTED is not a lifecycle edge"):
        check_transition([JobState.QUEUED, JobState.SUBMITTED], JobState.PERSISTED)
    with pytest.raises(IllegalTransition, match="nothing \\(terminal\\)"):
        check_transition([JobState.FAILED], JobState.QUEUED)


def test_the_store_refuses_a_move_that_is_not_an_edge() -> None:
    store = FakeJobStore()
    job = make_job()
    assert store.put_new(job)
    with pytest.raises(IllegalTransition):
        store.transition(job.job_id, [JobState.QUEUED], JobState.SUCCEEDED, now=1.0)
    assert store.state(job.job_id) is JobState.QUEUED and store.moves == []


def test_a_job_cannot_be_created_in_the_middle_of_its_life() -> None:
    with pytest.raises(ValueError, match="cannot be created SUBMITTED"):
        FakeJobStore().put_new(make_job(state=JobState.SUBMITTED))


def test_job_changes_cover_every_field_that_may_change() -> None:
    changeable = set(Job.model_fields) - IMMUTABLE_FIELDS - {"updated_at", "next_poll_at"}
    assert set(JobChanges.__annotations__) == changeable


def test_readme_shows_the_current_diagram_and_owners() -> None:
    text = README.read_text()
    diagram = re.search(r"```mermaid\n(.*?)\n```", text, re.DOTALL)
    assert diagram is not None, "README has no mermaid block"
    assert diagram.group(1) == mermaid(), "regenerate: python -m wanedit.domain.lifecycle --mermaid"
    assert owners() in text, "regenerate: python -m wanedit.domain.lifecycle --owners"
