"""Issue 15, "Faults in combination": seeded schedules of several faults at once, on the in-process stack.

Each schedule (tests/chaos/schedule.py) uploads a few clips and combines 3-6 kinds of fault: throttling
storms, 5xx, timeouts, creates whose answer is lost, list errors, result downloads refused or cut
short, tasks that fail, are canceled, run past 24 h or are lost by the service, crashes before or
after any adapter call, duplicate and late S3 events, re-uploads, deletes and user cancels. The
world (tests/chaos/world.py) runs it as the deployed stack would, on a simulated clock, until
nothing is due or every deadline has passed; then tests/chaos/invariants.py must all hold.

    make test                                  # CHAOS_SCHEDULES=200 (seeds 0-199), in batches
    make chaos                                 # thousands of schedules
    CHAOS_SEED=17 .venv/bin/python -m pytest tests/chaos -k replay -s   # one schedule, its account

A failing schedule prints its seed and account; it then becomes a `REGRESSIONS` entry below.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chaos.iam import denials
from tests.chaos.invariants import account, figures, violations
from tests.chaos.schedule import generate
from tests.chaos.world import ChaosWorld, Run
from tests.faults.summary import record_chaos

SCHEDULES = int(os.environ.get("CHAOS_SCHEDULES", "200"))
FIRST_SEED = int(os.environ.get("CHAOS_FIRST_SEED", "0"))
BATCH = int(os.environ.get("CHAOS_BATCH", "20"))  # schedules per test (one world is set up per test)
REPLAY = os.environ.get("CHAOS_SEED")
SHOWN = 3  # full accounts in one failed batch's message (every failing seed is listed)


@dataclass(frozen=True)
class Regression:
    seed: int
    found: str  # what the seed found, in one line
    bug: str | None = None  # a pipeline bug still open: the case is a strict xfail until it is fixed


# Seeds that once broke an invariant, kept as cases that must pass: 1216, 1823, 1996 and 2856 had the
# reconciler adopt another job's task when both shared a prompt (fixed by the per-prompt create lock,
# wanedit/usecases/submission.py); 45 lost a billed edit to a minute of result-host errors (persist
# patience, complete.py); 1 and 5 were refused by the LongClipFunction's role (template.yaml).
REGRESSIONS: list[Regression] = [
    Regression(1216, "two clips, one prompt, both creates lost at once: each adopted the other's task"),
    Regression(1823, "a long clip's two segments lost both creates: the segments swapped tasks"),
    Regression(1996, "a clip and another clip's segment, one prompt, both creates lost: they swapped tasks"),
    Regression(
        2856,
        "a create refused with 500 (nothing made) reconciled into another clip's lost task 15 s later",
    ),
    Regression(
        1206,
        "a user cancels a QUEUED job and the failure report's S3 write fails (transient InternalError): "
        "the job is CANCELED with no report in failed/ and no outcome event, for good",
        bug="wanedit/usecases/ending.py:end_job moves a QUEUED/HELD job (lifecycle.UNHELD) to its end "
        "first and writes the report and event after: a transient failure in between loses both (nothing "
        "revisits a terminal job, and cancel_job is refused on it)",
    ),
    Regression(45, "three 503s and two cut-short bodies from the result host: the edit ended PersistFailed"),
    Regression(1, "every saved edit's preview was refused reading edited/<stem>.mp4 by version (IAM)"),
    Regression(5, "a stitched long clip's preview message to the LongClipQueue was refused (IAM)"),
]


# Seeds the long run (make chaos) found breaking an invariant through a bug pinned above (one line
# each in REGRESSIONS would make every `make test` run them all): the batches expect them to break.
KNOWN: dict[int, str] = {}


def _batches() -> list[range]:
    last = FIRST_SEED + SCHEDULES
    return [range(start, min(start + BATCH, last)) for start in range(FIRST_SEED, last, BATCH)]


@pytest.fixture(scope="module")
def world(result_clip: Path, long_clip: Path) -> Iterator[ChaosWorld]:
    with ChaosWorld(result_clip, long_clip) as chaos:
        yield chaos


def run_schedule(world: ChaosWorld, seed: int, *, kind: str = "schedule") -> tuple[Run, list[str]]:
    """Run one schedule; its violations, the IAM recorder's denials among them."""
    began = time.perf_counter()
    try:
        run = world.run(generate(seed))
    except Exception:
        denials()  # its calls judged now, not in the next schedule's
        raise
    run.wall_seconds = time.perf_counter() - began
    found = violations(world, run, world.outputs())
    found += [f"IAM: {problem}" for problem in denials()]
    record_chaos({**figures(run), "violations": len(found), "kind": kind})
    return run, found


def _broken_run(world: ChaosWorld, seed: int) -> str:
    """The account of a run that raised (a harness bug): the seed, the error, the timeline so far."""
    return "\n".join(
        [
            f"CHAOS seed {seed}: the run itself raised",
            f"replay: CHAOS_SEED={seed} .venv/bin/python -m pytest tests/chaos -k replay -s",
            traceback.format_exc(),
            *world.timeline[-60:],
        ]
    )


@pytest.mark.parametrize("seeds", _batches(), ids=lambda seeds: f"seeds-{seeds.start}-{seeds.stop - 1}")
def test_schedules_keep_every_invariant(world: ChaosWorld, seeds: range) -> None:
    """Every schedule keeps every invariant; a seed known to break through an open bug (`KNOWN`) must
    still break (strictly, like an xfail: once the bug is fixed it passes, and leaves the list)."""
    pinned = {case.seed for case in REGRESSIONS}
    failed: list[tuple[int, str]] = []
    for seed in seeds:
        if seed in pinned:
            continue  # run on its own by test_regression_seed
        try:
            run, found = run_schedule(world, seed, kind="known" if seed in KNOWN else "schedule")
        except Exception:
            failed.append((seed, _broken_run(world, seed)))
            continue
        if seed in KNOWN and not found:
            failed.append((seed, f"CHAOS seed {seed} no longer breaks ({KNOWN[seed]}): remove it from KNOWN"))
        elif found and seed not in KNOWN:
            failed.append((seed, account(run, found)))
    broken = [seed for seed, _ in failed]
    assert not failed, f"{len(failed)} of {len(seeds)} schedules broke an invariant: seeds {broken}\n\n" + (
        "\n\n".join(text for _, text in failed[:SHOWN])
    )


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=f"seed-{case.seed}",
            marks=[pytest.mark.xfail(reason=case.bug, strict=True)] if case.bug else [],
        )
        for case in REGRESSIONS
    ],
)
def test_regression_seed(world: ChaosWorld, case: Regression) -> None:
    run, found = run_schedule(world, case.seed, kind="regression")
    assert not found, account(run, found)


@pytest.mark.skipif(REPLAY is None, reason="set CHAOS_SEED=<seed> to replay one schedule")
def test_replay(world: ChaosWorld) -> None:
    run, found = run_schedule(world, int(REPLAY or 0), kind="replay")
    print(account(run, found))
    assert not found, f"{len(found)} violation(s); the account is above"
