"""The fault suite's summary table and the chaos suite's figures, printed at the end of the run.

Each fault case appends one row, each chaos schedule one; with pytest-xdist the workers send their
rows to the controller (`workeroutput`), which prints them in `pytest_terminal_summary`. The
controller does not collect (so it never loads tests/faults/conftest.py): `tests/conftest.py`
registers this module as a plugin in every process instead.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

ROWS: list[dict[str, Any]] = []
CHAOS: list[dict[str, Any]] = []
_OUTPUT_KEY = "wanedit_fault_rows"
_CHAOS_KEY = "wanedit_chaos_rows"


def record_row(row: dict[str, Any]) -> None:
    ROWS.append(row)


def record_chaos(row: dict[str, Any]) -> None:
    """One chaos schedule's figures (tests/chaos/invariants.py:figures, plus its violations)."""
    CHAOS.append(row)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        if ROWS:
            workeroutput[_OUTPUT_KEY] = json.dumps(ROWS)
        if CHAOS:
            workeroutput[_CHAOS_KEY] = json.dumps(CHAOS)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", {})
    if output.get(_OUTPUT_KEY):
        ROWS.extend(json.loads(output[_OUTPUT_KEY]))
    if output.get(_CHAOS_KEY):
        CHAOS.extend(json.loads(output[_CHAOS_KEY]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ROWS:
        _fault_table(terminalreporter)
    if CHAOS:
        _chaos_figures(terminalreporter)


def _fault_table(terminalreporter: Any) -> None:
    rows = sorted(ROWS, key=lambda row: row["case"])
    columns = [
        ("case", "case"),
        ("fault", "fault"),
        ("end states", "end_states"),
        ("jobs", "jobs"),
        ("tasks", "tasks"),
        ("peak", "max_in_flight"),
        ("429s", "throttled"),
        ("dlq", "dlq"),
        ("lost", "lost"),
    ]
    widths = [max(len(title), *(len(str(row[key])) for row in rows)) for title, key in columns]
    tr = terminalreporter
    tr.section(
        "wanedit fault suite: fault -> end state (every case: one terminal state per job, "
        "one task per content version, in flight <= cap, every SUCCEEDED task persisted)"
    )
    tr.write_line("  ".join(title.ljust(w) for (title, _), w in zip(columns, widths, strict=True)))
    tr.write_line("  ".join("-" * w for w in widths))
    for row in rows:
        tr.write_line("  ".join(str(row[key]).ljust(w) for (_, key), w in zip(columns, widths, strict=True)))
    total = {k: sum(int(row[k]) for row in rows) for k in ("jobs", "tasks", "lost", "unavailable")}
    tr.write_line(
        f"cases {len(rows)}, jobs {total['jobs']}, tasks {total['tasks']}, lost {total['lost']}"
        f" (results refused for good by the service, reported EXPIRED: {total['unavailable']})"
    )


def _chaos_figures(terminalreporter: Any) -> None:
    tr = terminalreporter
    rows = [row for row in CHAOS if row["kind"] in ("schedule", "known")]
    pinned = [row for row in CHAOS if row["kind"] not in ("schedule", "known")]
    tr.section(
        "wanedit chaos suite: seeded schedules of combined faults (every schedule: one outcome per job, "
        "no second billed task, every finished edit saved, in flight <= cap, the key nowhere)"
    )
    if rows:
        jobs = Counter[str]()
        tasks = Counter[str]()
        kinds = Counter[str]()
        for row in rows:
            jobs.update(row["states"])
            tasks.update(row["task_states"])
            kinds.update(row["kinds"])
        broken = [row for row in rows if row["violations"]]
        known = [row for row in broken if row["kind"] == "known"]
        seeds = sorted(row["seed"] for row in rows)
        tr.write_line(
            f"schedules {len(rows)} (seeds {seeds[0]}-{seeds[-1]}), jobs {sum(jobs.values())}, "
            f"tasks {sum(tasks.values())}, fault plans fired {sum(row['fired'] for row in rows)} of "
            f"{sum(row['planned'] for row in rows)}, simulated {sum(row['sim_hours'] for row in rows):.0f} h "
            f"in {sum(row['wall'] for row in rows):.0f} s of runs"
        )
        tr.write_line("job outcomes: " + ", ".join(f"{state} {n}" for state, n in sorted(jobs.items())))
        tr.write_line("task ends:    " + ", ".join(f"{state} {n}" for state, n in sorted(tasks.items())))
        tr.write_line("fault kinds:  " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
        tr.write_line(
            f"violations {sum(row['violations'] for row in broken)} in {len(broken)} schedule(s)"
            + (f": seeds {', '.join(str(row['seed']) for row in broken)}" if broken else "")
            + (f" ({len(known)} of them known, through a pinned bug)" if known else "")
        )
    if pinned:
        tr.write_line(
            f"regression and replayed seeds: {len(pinned)} run, "
            f"{sum(1 for row in pinned if row['violations'])} still breaking an invariant "
            f"({', '.join(str(row['seed']) for row in pinned if row['violations']) or 'none'})"
        )
