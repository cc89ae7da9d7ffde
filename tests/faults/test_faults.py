"""Issue 6: exactly one outcome per job under duplicates, crashes, throttling and API faults.

One table row per fault: what goes wrong, and the end state every job must reach. Each case runs on
its own local stack (moto + the emulator, a manual clock: nothing sleeps for real) and then must pass
`harness.check`: one terminal state per job reached by one terminal transition, one task per
content version (the emulator's own records), in flight never above the cap, every SUCCEEDED task
persisted, every end reported and announced, poison only in the DLQs, and the API key nowhere.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.faults.harness import Harness, Plan, check, moving_to
from tests.faults.summary import record_row
from tests.unit.mediafiles import padded_file
from wanedit.dashscope import TaskResponse, TaskStatus
from wanedit.domain.lifecycle import JobState
from wanedit.usecases.intake import ObjectEvent, handle_object_created
from wanedit.usecases.redrive import ingest_message_problem, redrive
from wanedit.usecases.submission import try_submit


def sidecar(prompt: str = "Turn the scene into a claymation style", **fields: Any) -> bytes:
    return json.dumps({"prompt": prompt, "resolution": "720P", **fields}).encode()


def succeeded(args: Any, kwargs: Any, result: Any) -> bool:
    return isinstance(result, TaskResponse) and result.output.task_status is TaskStatus.SUCCEEDED


def s3_error() -> ClientError:
    return ClientError(
        {"Error": {"Code": "InternalError", "Message": "We encountered an internal error."}}, "S3"
    )


@dataclass
class Case:
    name: str
    fault: str
    expected: dict[str, int]
    setup: Callable[[Harness], object] = lambda h: None
    run: Callable[[Harness, bytes], int] | None = None  # default: one pair, then settle
    cap: int = 5
    task_seconds: float = 60.0
    plans: list[Callable[[], Plan]] = field(default_factory=list)
    big_result: bool = False  # every result a 17 MB MP4: persisted in three multipart parts
    bug: str | None = None  # a known bug the case demonstrates (strict xfail until fixed)


def three_pairs(h: Harness, clip: bytes) -> int:
    for i in range(3):
        h.pair(f"s/c{i}", clip, sidecar())
    return h.settle()


def one_pair(h: Harness, clip: bytes) -> int:
    h.pair("team/clip", clip, sidecar())
    return h.settle()


# -- runs that need more than "one pair, then settle" --------------------------------------------


def create_rate_burst(h: Harness, clip: bytes) -> int:
    for i in range(10):
        h.pair(f"burst/c{i:02d}", clip, sidecar())
    ticks = h.settle()
    assert h.emulator.counters["throttled"] > 0  # the service's 5 creates/s did answer 429
    return ticks


def burst_50(h: Harness, clip: bytes) -> int:
    for i in range(50):
        h.pair(f"burst/c{i:02d}", clip, sidecar())
    ticks = h.settle(max_ticks=80)
    assert h.emulator.counters["throttled"] == 0, "the cap keeps creates under the service's rate"
    return ticks


def lose_task_at_the_service(h: Harness, clip: bytes) -> int:
    h.pair("team/clip", clip, sidecar())
    h.pump.drain()
    (task,) = h.emulator.tasks()
    assert task.status == "PENDING"
    h.vanish(task)
    return h.settle()


def stuck_past_24h(h: Harness, clip: bytes) -> int:
    h.emulator.faults.task_seconds_queue.append(30 * 3600.0)
    h.pair("team/clip", clip, sidecar())
    h.pump.drain()
    h.tick()
    h.advance(24 * 3600.0)
    return h.settle()


def completion_25h_late(h: Harness, clip: bytes) -> int:
    h.pair("team/clip", clip, sidecar())
    h.pump.deliver("submit")
    for _ in range(5):
        h.tick()  # the CompleteFunction does not run (its queue is not delivered)
    assert h.job("team/clip").state is JobState.SUCCEEDED
    h.advance(25 * 3600.0)
    h.result_unavailable = 1
    return h.settle()


def no_multipart_left(h: Harness, clip: bytes) -> int:
    ticks = one_pair(h, clip)
    uploads = h.stack.client("s3").list_multipart_uploads(Bucket=h.bucket).get("Uploads", [])
    assert uploads == [], "a failed multipart upload was left behind"
    return ticks


def same_event_3x(h: Harness, clip: bytes) -> int:
    h.put("incoming/dup/clip.json", sidecar())
    h.pump.drain()
    h.put("incoming/dup/clip.mp4", clip)
    sqs = h.stack.client("sqs")
    url = h.stack.resources.ingest_queue_url
    message = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
    return h.settle()


def sidecar_first(h: Harness, clip: bytes) -> int:
    h.put("incoming/team/clip.json", sidecar())
    h.pump.drain()
    assert h.jobs() == []
    h.put("incoming/team/clip.mp4", clip)
    return h.settle()


def video_reuploaded_while_running(h: Harness, clip: bytes) -> int:
    h.pair("team/clip", clip, sidecar())
    h.pump.drain()
    h.tick()
    assert h.job("team/clip").state is JobState.SUBMITTED
    h.put("incoming/team/clip.mp4", clip)  # a new version of the same key
    return h.settle()


def sidecar_deleted_while_queued(h: Harness, clip: bytes) -> int:
    h.pair("first/clip", clip, sidecar())
    h.pair("second/clip", clip, sidecar())
    h.pump.drain()
    assert h.job("second/clip").state is JobState.QUEUED  # cap 1: the first holds the slot
    h.delete("incoming/second/clip.json")
    ticks = h.settle()
    assert h.job("second/clip").error_code == "InputWithdrawn"
    return ticks


def poison(h: Harness, clip: bytes) -> int:
    sqs = h.stack.client("sqs")
    r = h.stack.resources
    sqs.send_message(QueueUrl=r.ingest_queue_url, MessageBody="this is not an S3 event")
    sqs.send_message(QueueUrl=r.ingest_queue_url, MessageBody=json.dumps({"detail": {"object": {}}}))
    sqs.send_message(QueueUrl=r.complete_queue_url, MessageBody="{not json")
    h.expected_dlq = 3
    ticks = h.settle()
    assert h.pump.stats.records["submit"] == 2 * 5, "each poison record tried maxReceiveCount times, no more"
    return ticks


def dead_then_redriven(h: Harness, clip: bytes) -> int:
    """The SubmitFunction dies on every try until the events are dead-lettered; then a redrive."""
    h.plan(Plan("store", "put_new", when="before", times=1000))
    h.pair("dead/clip", clip, sidecar())
    h.pump.drain()
    assert h.jobs() == [] and h.dlq_depth() == 2, "both events dead-lettered after maxReceiveCount"
    h.ic.plans.clear()  # the outage is over
    report = redrive(h.dead_letters("ingest"), accept=ingest_message_problem)
    assert len(report.replayed) == 2 and not report.kept
    return h.settle()


def two_submitters_race(h: Harness, clip: bytes) -> int:
    """The same event handled by two SubmitFunctions at once: both reach the job's put together."""
    h.put("incoming/race/clip.mp4", clip)
    h.pump.drain()
    version = h.put("incoming/race/clip.json", sidecar())
    h.plan(Plan("store", "put_new", when="before", barrier=threading.Barrier(2), times=2))
    event = ObjectEvent(bucket=h.bucket, key="incoming/race/clip.json", version_id=version)
    outcomes: list[str] = []
    workers = [
        threading.Thread(target=lambda: outcomes.append(handle_object_created(h.svc, event)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(outcomes) == ["duplicate", "submitted"], outcomes
    return h.settle()


def poller_and_submitter_race(h: Harness, clip: bytes) -> int:
    """A QUEUED job taken by two workers at once: only one conditional QUEUED -> SUBMITTING wins."""
    h.plan(Plan("store", "acquire_slot", when="before", error=lambda: _NoSlot()))
    h.pair("race/clip", clip, sidecar())
    h.pump.drain()  # intake's try_submit failed before taking a slot: the job stays QUEUED
    h.ic.plans.clear()
    job = h.job("race/clip")
    assert job.state is JobState.QUEUED
    h.plan(Plan("store", "transition", when="before", barrier=threading.Barrier(2), times=2))
    results: list[JobState] = []
    workers = [
        threading.Thread(target=lambda: results.append(try_submit(h.svc, job).state)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert results.count(JobState.SUBMITTED) >= 1 and h.emulator.counters["tasks_created"] == 1, results
    return h.settle()


class _NoSlot(Exception):
    """Stands for a SubmitFunction that failed before taking a slot."""


def crashed_fail_report(h: Harness, clip: bytes) -> int:
    h.emulator.faults.fail_next(1, code="InternalError.Algo", message="The model failed.")
    h.plan(Plan("objects", "put_json", when="before"))
    return one_pair(h, clip)


def rejected_crash(h: Harness, clip: bytes) -> int:
    h.plan(Plan("store", "put_new", when="before"))
    h.pair("bad/clip", clip, json.dumps({"prompt": "x", "ratio": "2:1"}).encode())
    return h.settle()


BIG_RESULT = 17_000_000  # over two 8 MiB parts

CASES = [
    Case("baseline", "none", {"PERSISTED": 1}),
    # throttling --------------------------------------------------------------------------------
    Case(
        "create-429-storm",
        "create -> 429 Throttling x12, 3 jobs",
        {"PERSISTED": 3},
        setup=lambda h: h.emulator.faults.add("create", status=429, times=12),
        run=lambda h, clip: three_pairs(h, clip),
    ),
    Case(
        "create-rate-burst",
        "10 uploads at once, cap 10: the service's 5 creates/s answers 429 RateQuota",
        {"PERSISTED": 10},
        run=create_rate_burst,
        cap=10,
    ),
    Case("burst-50-cap-5", "50 uploads at once, cap 5", {"PERSISTED": 50}, run=burst_50),
    # API faults on create ------------------------------------------------------------------------
    Case(
        "create-timeout-task-made",
        "create answer held past the read timeout; the task exists",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", "hang", seconds=2.5),
    ),
    Case(
        "create-late-answer",
        "create answered after the read timeout; the task exists",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", "delay", seconds=2.5),
    ),
    Case(
        "create-drop-after-create",
        "connection dropped after the task was made",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", "drop_after_create"),
    ),
    Case(
        "create-drop",
        "connection dropped, nothing made",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", "drop"),
    ),
    Case(
        "create-500",
        "create -> 500 InternalError (outcome unknown)",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", status=500),
    ),
    Case(
        "create-504",
        "create -> 504 (outcome unknown)",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", status=504),
    ),
    Case(
        "create-503",
        "create -> 503 x3 (refused: nothing made)",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", status=503, times=3),
    ),
    Case(
        "create-400-final",
        "create -> 400 InvalidParameter",
        {"FAILED": 1},
        setup=lambda h: h.emulator.faults.add(
            "create", status=400, code="InvalidParameter", message="The size is not match"
        ),
    ),
    Case(
        "reconcile-list-500",
        "create dropped after create, then list -> 500 x8",
        {"PERSISTED": 1},
        setup=lambda h: (
            h.emulator.faults.add("create", "drop_after_create"),
            h.emulator.faults.add("list", status=500, times=8),
        ),
    ),
    # API faults on query -------------------------------------------------------------------------
    Case(
        "query-500",
        "query -> 500 x6",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("query", status=500, times=6),
    ),
    Case(
        "query-503",
        "query -> 503 x6",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("query", status=503, times=6),
    ),
    Case(
        "query-drop",
        "query connection dropped x5",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("query", "drop", times=5),
    ),
    Case(
        "query-429",
        "query -> 429 x6",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("query", status=429, times=6),
    ),
    # task outcomes -------------------------------------------------------------------------------
    Case(
        "task-failed",
        "task ends FAILED",
        {"FAILED": 1},
        setup=lambda h: h.emulator.faults.fail_next(1, code="InternalError.Algo"),
    ),
    Case(
        "task-canceled",
        "task ends CANCELED",
        {"CANCELED": 1},
        setup=lambda h: h.emulator.faults.cancel_next(1),
    ),
    Case(
        "task-unknown", "the service loses the task (UNKNOWN)", {"EXPIRED": 1}, run=lose_task_at_the_service
    ),
    Case("task-stuck-24h", "task still RUNNING after 24 h", {"EXPIRED": 1}, run=stuck_past_24h),
    # the result --------------------------------------------------------------------------------
    Case(
        "result-403-once",
        "result URL -> 403 once",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("result", status=403),
    ),
    Case(
        "result-500",
        "result URL -> 500 x2",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("result", status=500, times=2),
    ),
    Case("result-expired", "result fetched 25 h late (403 expired)", {"EXPIRED": 1}, run=completion_25h_late),
    Case(
        "s3-multipart-complete-fails",
        "S3 CompleteMultipartUpload -> 500",
        {"PERSISTED": 1},
        plans=[lambda: Plan("s3", "complete_multipart_upload", when="before", error=s3_error)],
        run=no_multipart_left,
        big_result=True,
    ),
    Case(
        "s3-upload-part-fails",
        "S3 UploadPart -> 500 x2",
        {"PERSISTED": 1},
        plans=[lambda: Plan("s3", "upload_part", when="before", error=s3_error, times=2)],
        run=no_multipart_left,
        big_result=True,
    ),
    Case(
        "crash-in-part-upload",
        "crash: a result's second part being uploaded",
        {"PERSISTED": 1},
        plans=[lambda: Plan("s3", "upload_part", nth=2, when="before")],
        big_result=True,
    ),
    # events ------------------------------------------------------------------------------------
    Case("same-event-3x", "the same S3 event delivered 3x", {"PERSISTED": 1}, run=same_event_3x),
    Case("sidecar-first", "sidecar uploaded before the video", {"PERSISTED": 1}, run=sidecar_first),
    Case(
        "video-reuploaded",
        "video re-uploaded while its job runs",
        {"PERSISTED": 2},
        run=video_reuploaded_while_running,
    ),
    Case(
        "sidecar-deleted-queued",
        "sidecar deleted while its job is QUEUED (cap 1)",
        {"PERSISTED": 1, "CANCELED": 1},
        run=sidecar_deleted_while_queued,
        cap=1,
    ),
    Case("poison", "3 malformed messages on the queues", {}, run=poison),
    Case(
        "dlq-then-redrive",
        "SubmitFunction dies 5x per event (DLQ), then `redrive`",
        {"PERSISTED": 1},
        run=dead_then_redriven,
    ),
    Case(
        "race-two-submitters",
        "one event, two SubmitFunctions at once",
        {"PERSISTED": 1},
        run=two_submitters_race,
    ),
    Case(
        "race-poller-submitter",
        "a QUEUED job taken by two workers at once",
        {"PERSISTED": 1},
        run=poller_and_submitter_race,
    ),
    # crashes between steps -----------------------------------------------------------------------
    Case(
        "crash-after-job-record",
        "crash: job recorded, before taking a slot",
        {"PERSISTED": 1},
        plans=[lambda: Plan("store", "put_new")],
    ),
    Case(
        "crash-after-slot",
        "crash: slot taken, before SUBMITTING",
        {"PERSISTED": 1},
        plans=[lambda: Plan("store", "acquire_slot")],
    ),
    Case(
        "crash-before-create",
        "crash: SUBMITTING recorded, before create",
        {"PERSISTED": 1},
        plans=[lambda: Plan("store", "transition", where=moving_to(JobState.SUBMITTING))],
    ),
    Case(
        "crash-after-create",
        "crash: task created, before it is recorded",
        {"PERSISTED": 1},
        plans=[lambda: Plan("api", "create_task")],
    ),
    Case(
        "crash-after-claim",
        "crash: task claimed, before SUBMITTED",
        {"PERSISTED": 1},
        plans=[lambda: Plan("store", "claim_task")],
    ),
    Case(
        "crash-after-query",
        "crash: query said SUCCEEDED, before recording it",
        {"PERSISTED": 1},
        plans=[lambda: Plan("api", "get_task", where=succeeded)],
    ),
    Case(
        "crash-before-handoff",
        "crash: SUCCEEDED recorded, before the completion message",
        {"PERSISTED": 1},
        plans=[lambda: Plan("completion", "send", when="before")],
    ),
    Case(
        "crash-after-persist-claim",
        "crash: PERSISTING claimed, before the download",
        {"PERSISTED": 1},
        plans=[lambda: Plan("downloader", "open", when="before")],
    ),
    Case(
        "crash-after-upload",
        "crash: edited MP4 stored, before the manifest",
        {"PERSISTED": 1},
        plans=[lambda: Plan("objects", "put_json", when="before")],
    ),
    Case(
        "crash-after-manifest",
        "crash: manifest stored, before the event",
        {"PERSISTED": 1},
        plans=[lambda: Plan("notifier", "publish", when="before")],
    ),
    Case(
        "crash-after-event",
        "crash: event sent, before PERSISTED",
        {"PERSISTED": 1},
        plans=[lambda: Plan("notifier", "publish")],
    ),
    Case(
        "crash-after-persisted",
        "crash: PERSISTED recorded, before the handler returns",
        {"PERSISTED": 1},
        plans=[lambda: Plan("store", "transition", where=moving_to(JobState.PERSISTED))],
    ),
    Case(
        "crash-before-fail-report",
        "task FAILED; crash before its report",
        {"FAILED": 1},
        run=crashed_fail_report,
    ),
    Case(
        "crash-before-reject-record", "bad input; crash after its report", {"REJECTED": 1}, run=rejected_crash
    ),
    Case(
        "crash-in-reconcile",
        "create dropped after create; crash after the reconciler claims the task",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", "drop_after_create"),
        plans=[lambda: Plan("store", "claim_task")],
    ),
    Case(
        "crash-after-throttle-release",
        "create 429; crash after the slot is released, before QUEUED",
        {"PERSISTED": 1},
        setup=lambda h: h.emulator.faults.add("create", status=429),
        plans=[lambda: Plan("store", "release_slot")],
    ),
]


PARAMS = [
    pytest.param(
        case, id=case.name, marks=[pytest.mark.xfail(reason=case.bug, strict=True)] if case.bug else []
    )
    for case in CASES
]


@pytest.mark.parametrize("case", PARAMS)
def test_fault(case: Case, clip: bytes, tmp_path: Path) -> None:
    emulator = (
        {"prerendered": str(padded_file(tmp_path / "result.mp4", clip, BIG_RESULT))}
        if case.big_result
        else None
    )
    with Harness(case.name, cap=case.cap, task_seconds=case.task_seconds, emulator=emulator) as h:
        case.setup(h)
        h.plan(*(make() for make in case.plans))
        ticks = (case.run or one_pair)(h, clip)
        for plan in h.ic.plans:
            assert plan.fired, f"{plan.describe()} never fired: the case tests nothing"
        figures = check(h, case.expected, fault=case.fault, ticks=ticks)
    record_row(asdict(figures))
