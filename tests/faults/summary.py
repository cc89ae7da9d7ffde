"""The fault suite's summary table, printed at the end of the run.

Each case appends one row; with pytest-xdist the workers send their rows to the controller
(`workeroutput`), which prints the table in `pytest_terminal_summary`. The controller does not
collect (so it never loads tests/faults/conftest.py): `tests/conftest.py` registers this module as
a plugin in every process instead.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

ROWS: list[dict[str, Any]] = []
_OUTPUT_KEY = "wanedit_fault_rows"


def record_row(row: dict[str, Any]) -> None:
    ROWS.append(row)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and ROWS:
        workeroutput[_OUTPUT_KEY] = json.dumps(ROWS)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_testnodedown(node: Any, error: Any) -> None:
    rows = getattr(node, "workeroutput", {}).get(_OUTPUT_KEY)
    if rows:
        ROWS.extend(json.loads(rows))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
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
