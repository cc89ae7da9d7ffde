"""The IAM recorder (tests/iam) during chaos runs, judged per schedule.

Every AWS call a handler makes in a chaos run is recorded by the suite's IAM recorder and judged
against the function's role, as everywhere in the suite. A batch runs many schedules in one test,
so the world judges after each schedule instead: a denial is then that schedule's violation, with
its seed, like any broken invariant.
"""

from __future__ import annotations


def denials() -> list[str]:
    """Judge the calls made since the last look (empty when the recorder is off: no deploy venv, or
    the xdist controller)."""
    from tests.iam import recorder

    suite = recorder._recorder
    return [] if suite is None else suite.judge()
