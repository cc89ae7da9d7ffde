"""The spend guard on the local stack, on a simulated clock: held over budget, released the next day,
concurrent submitters never past the budget, and a dry run that creates nothing."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import pytest

from local.samplemedia import make_clip
from tests.faults.harness import SCHEDULE_SECONDS, Harness
from wanedit.domain.budget import periods_at
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import CREATE_LOCK_RETRY_SECONDS
from wanedit.events import DETAIL_HELD
from wanedit.usecases.intake import ObjectEvent, handle_object_created

# The fault suite's clip is 2 s: each edit bills 2 + 2 = 4 seconds (no price set: budgets count seconds).
BILLED = 4.0
DAY = 86400.0


@pytest.fixture(scope="module")
def clip() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(make_clip(Path(tmp) / "clip.mp4", seconds=2, width=320, height=240, fps=8)).read_bytes()


def sidecar(**fields: object) -> bytes:
    return json.dumps(
        {"prompt": "Turn the scene into a claymation style", "resolution": "720P", **fields}
    ).encode()


def test_over_budget_jobs_wait_held_and_are_edited_the_next_day(clip: bytes) -> None:
    with Harness("budget-next-day", parameters={"DailyBudget": str(2 * BILLED)}) as h:
        for i in range(3):
            h.pair(f"budget/clip{i}", clip, sidecar())
            h.clock.advance(1)  # arrival order
        h.pump.drain()
        states = sorted(job.state.value for job in h.jobs())
        assert states == ["HELD", "SUBMITTED", "SUBMITTED"]
        for _ in range(10):  # the two admitted edits run to their end; the third stays held
            h.tick()
            h.pump.drain()
        assert sorted(job.state.value for job in h.jobs()) == ["HELD", "PERSISTED", "PERSISTED"]
        h.collect_outcomes()
        held_events = [e for e in h.outcome_events if e["detail-type"] == DETAIL_HELD]
        assert len(held_events) == 1 and held_events[0]["detail"]["budgets"]["day"]["remaining"] == 0.0
        assert h.emulator.counters["tasks_created"] == 2

        h.advance(DAY)  # a new UTC day: the held edit fits
        ticks = h.settle()
        assert [job.state for job in h.jobs()] == [JobState.PERSISTED] * 3 and ticks > 0
        assert h.emulator.counters["tasks_created"] == 3
        day, _ = periods_at(h.clock.now())
        entry = h.svc.ledger.entry(day)
        assert (entry.committed, entry.jobs) == (0.0, {}) and entry.spent == BILLED


def test_ten_concurrent_submissions_against_a_budget_for_five_commit_exactly_five(clip: bytes) -> None:
    with Harness("budget-concurrent", cap=10, parameters={"DailyBudget": str(5 * BILLED)}) as h:
        for i in range(10):
            h.put(f"incoming/race/clip{i}.mp4", clip)
        h.pump.drain()  # ten clips waiting for their sidecars
        events = []
        for i in range(10):
            key = f"incoming/race/clip{i}.json"
            events.append(ObjectEvent(bucket=h.bucket, key=key, version_id=h.put(key, sidecar()) or None))
        barrier = threading.Barrier(10)

        def submit(event: ObjectEvent) -> None:
            barrier.wait(timeout=30)
            handle_object_created(h.svc, event)

        workers = [threading.Thread(target=submit, args=(event,)) for event in events]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        states = [job.state for job in h.jobs()]
        assert states.count(JobState.HELD) == 5 and len(states) == 10
        day, _ = periods_at(h.clock.now())
        entry = h.svc.ledger.entry(day)
        assert entry.committed == 5 * BILLED and len(entry.jobs) == 5
        # One prompt: one create of it at a time (the create lock); an admitted job that found the
        # lock held waits QUEUED, its commitment kept, and the poller creates it a few seconds on.
        assert 1 <= h.emulator.counters["tasks_created"] <= 5
        h.advance(CREATE_LOCK_RETRY_SECONDS)
        h.tick()
        assert h.emulator.counters["tasks_created"] == 5
        h.pump.drain()  # the sidecars' own events: duplicates now
        assert h.emulator.counters["tasks_created"] == 5


def test_a_dry_run_writes_its_estimate_and_creates_nothing(clip: bytes) -> None:
    with Harness("budget-dry-run", parameters={"PricePerSecond720P": "0.05", "DailyBudget": "10"}) as h:
        h.pair("dry/clip", clip, sidecar(dry_run=True))
        h.pump.drain()
        h.advance(SCHEDULE_SECONDS)
        h.tick()
        assert h.emulator.counters["tasks_created"] == 0 and h.jobs() == []
        body = h.stack.client("s3").get_object(Bucket=h.bucket, Key="edited/dry/clip.estimate.json")["Body"]
        estimate = json.loads(body.read())
        assert estimate["status"] == "DRY_RUN"
        assert estimate["estimate"]["billed_seconds"] == BILLED
        assert estimate["estimate"]["amount"] == 0.2 and estimate["estimate"]["unit"] == "USD"
        assert estimate["would_send"]["parameters"] == {"resolution": "720P"}
        assert estimate["would_send"]["input"]["media"][0]["key"] == "incoming/dry/clip.mp4"
        assert estimate["budgets"]["day"]["remaining"] == 10.0
