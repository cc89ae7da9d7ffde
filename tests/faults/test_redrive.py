"""The redrive: dead letters go back to their source queue at least once, never in a loop, poison stays."""

from __future__ import annotations

import json

from tests.conftest import load_event
from tests.faults.harness import Harness, Plan
from wanedit.domain.lifecycle import JobState
from wanedit.usecases.redrive import (
    completion_message_problem,
    ingest_message_problem,
    long_clip_message_problem,
    redrive,
)


def sidecar() -> bytes:
    return json.dumps({"prompt": "Turn the scene into a claymation style", "resolution": "720P"}).encode()


def dead_letter_a_pair(h: Harness, clip: bytes) -> None:
    h.plan(Plan("store", "put_new", when="before", times=1000))
    h.pair("dead/clip", clip, sidecar())
    h.pump.drain()
    h.ic.plans.clear()
    assert h.dlq_depth() == 2


def test_dry_run_changes_nothing_and_poison_stays(clip: bytes) -> None:
    with Harness("redrive-dry-run") as h:
        dead_letter_a_pair(h, clip)
        sqs = h.stack.client("sqs")
        sqs.send_message(QueueUrl=h.stack.resources.ingest_dlq_url, MessageBody="garbage")

        dry = redrive(h.dead_letters("ingest"), dry_run=True, accept=ingest_message_problem)
        assert len(dry.replayed) == 2 and list(dry.kept.values()) == ["not a JSON object"]
        assert h.dlq_depth() == 3 and h.queue_depth(h.stack.resources.ingest_queue_url) == 0

        done = redrive(h.dead_letters("ingest"), accept=ingest_message_problem)
        assert len(done.replayed) == 2 and len(done.kept) == 1
        assert h.dlq_depth() == 1  # the poison, still there (and visible again), never replayed
        h.settle()
        assert [job.state for job in h.jobs()] == [JobState.PERSISTED]
        assert h.emulator.counters["tasks_created"] == 1


def test_a_crash_between_replay_and_delete_replays_twice_harmlessly(clip: bytes) -> None:
    with Harness("redrive-crash") as h:
        dead_letter_a_pair(h, clip)
        dlq = h.dead_letters("ingest", visibility_seconds=0)
        first = h.ic  # reuse the harness's interceptor around the DLQ adapter
        from local.pump import SimulatedCrash
        from tests.faults.harness import Proxy

        h.plan(Plan("dlq", "replay"))  # the first message is sent, then the redrive dies
        try:
            redrive(Proxy("dlq", dlq, first), accept=ingest_message_problem)  # type: ignore[arg-type]
            raise AssertionError("the planned crash did not happen")
        except SimulatedCrash:
            pass
        assert h.dlq_depth() == 2  # nothing deleted: both still in the DLQ, one also replayed
        again = redrive(dlq, accept=ingest_message_problem)
        assert len(again.replayed) == 2
        h.settle()
        assert [job.state for job in h.jobs()] == [JobState.PERSISTED]
        assert h.emulator.counters["tasks_created"] == 1  # the duplicate was a no-op


def test_a_message_that_dies_again_does_not_loop(clip: bytes) -> None:
    with Harness("redrive-dies-again") as h:
        dead_letter_a_pair(h, clip)
        h.plan(Plan("store", "put_new", when="before", times=1000))  # the outage goes on
        report = redrive(h.dead_letters("ingest"), limit=10, accept=ingest_message_problem)
        assert len(report.replayed) == 2
        h.pump.drain()
        assert h.dlq_depth() == 2  # back in the DLQ after maxReceiveCount, and the redrive ended
        assert h.jobs() == []


def test_message_checks() -> None:
    [record] = load_event("submit_sqs_object_created.json")["Records"][:1]
    assert ingest_message_problem(record["body"]) is None  # an S3 event as EventBridge delivers it
    assert ingest_message_problem("[]") == "not a JSON object"
    assert ingest_message_problem(json.dumps({"detail": {"bucket": {"name": "b"}}})) is not None
    assert completion_message_problem(json.dumps({"job_id": "j-1"})) is None
    assert completion_message_problem(json.dumps({"job": "j-1"})) == "no job_id"
    assert long_clip_message_problem(json.dumps({"action": "split", "job_id": "j-1"})) is None
    assert long_clip_message_problem(json.dumps({"action": "merge", "job_id": "j-1"})) == (
        "action: Input should be 'split', 'stitch' or 'preview'"
    )
