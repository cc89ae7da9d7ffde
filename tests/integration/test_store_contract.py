"""One contract, two stores: the DynamoDB adapter (on moto, the table as template.yaml defines it) and
the unit tests' in-memory fake behave alike, so decisions proven on the fake hold on DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.cfn import load_template
from tests.unit.fakes import FakeJobStore, make_job
from wanedit.adapters.jobstore import DynamoJobStore
from wanedit.domain.job import Claim, Segment
from wanedit.domain.lifecycle import IllegalTransition, JobState
from wanedit.domain.usage import Usage
from wanedit.ports import CreateLock

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(params=["fake", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeJobStore()
        return
    with mock_aws():
        properties = load_template(TEMPLATE)["Resources"]["JobTable"]["Properties"]
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="jobs",
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoJobStore("jobs", resource=boto3.resource("dynamodb", region_name="us-east-1"))


def test_a_job_is_made_once(store: Any) -> None:
    job = make_job()
    assert store.put_new(job) and not store.put_new(job)
    assert store.get(job.job_id) == job and store.get("j-none") is None


def test_a_move_wins_once_and_names_where_it_comes_from(store: Any) -> None:
    job = make_job()
    store.put_new(job)
    moved = store.transition(
        job.job_id, [JobState.QUEUED], JobState.SUBMITTING, now=5.0, submitting_since=5.0
    )
    assert moved is not None and moved.state is JobState.SUBMITTING and moved.submitting_since == 5.0
    assert store.transition(job.job_id, [JobState.QUEUED], JobState.SUBMITTING, now=6.0) is None
    assert store.transition("j-none", [JobState.QUEUED], JobState.SUBMITTING, now=6.0) is None
    with pytest.raises(IllegalTransition):
        store.transition(job.job_id, [JobState.SUBMITTING], JobState.PERSISTED, now=7.0)
    assert store.get(job.job_id).state is JobState.SUBMITTING


def test_changes_are_typed_and_none_clears(store: Any) -> None:
    job = make_job()
    store.put_new(job)
    store.transition(job.job_id, [JobState.QUEUED], JobState.SUBMITTING, now=1.0, submitting_since=1.0)
    usage = Usage(duration=8.5, SR=720)
    segment = Segment(
        index=0, job_id="j-s000", key="k", start=0.5, duration=8.0, frames=200, copied=True, size=3
    )
    after = store.transition(
        job.job_id,
        [JobState.SUBMITTING],
        JobState.SUBMITTED,
        now=2.0,
        next_poll_at=17.0,
        submitting_since=None,
        usage=usage,
        segments=[segment],
        request_ids=["r-1"],
    )
    assert after.submitting_since is None and after.usage == usage and after.segments == [segment]
    assert store.get(job.job_id) == after


def test_reschedule_keeps_the_state_and_moves_the_poll_time(store: Any) -> None:
    job = make_job(next_poll_at=None)
    store.put_new(job)
    store.transition(job.job_id, [JobState.QUEUED], JobState.SUBMITTING, now=1.0, next_poll_at=100.0)
    assert store.reschedule(job.job_id, JobState.SUBMITTING, now=2.0, next_poll_at=50.0, task_status="X")
    assert store.next_poll_due() == 50.0 and store.get(job.job_id).task_status == "X"
    assert store.reschedule(job.job_id, JobState.QUEUED, now=3.0, next_poll_at=1.0) is None


def test_a_claim_is_taken_once_from_what_its_taker_saw(store: Any) -> None:
    job = make_job(state=JobState.SPLITTING)
    store.put_new(job)
    held = Claim("work_started_at", None)
    first = store.claim(job.job_id, JobState.SPLITTING, held, now=1.0, next_poll_at=10.0, work_started_at=1.0)
    assert first is not None and first.work_started_at == 1.0
    assert (
        store.claim(job.job_id, JobState.SPLITTING, held, now=2.0, next_poll_at=10.0, work_started_at=2.0)
        is None
    )
    stale = Claim("work_started_at", 1.0)
    assert store.claim(job.job_id, JobState.SPLITTING, stale, now=3.0, next_poll_at=10.0, work_started_at=3.0)
    assert (
        store.claim(job.job_id, JobState.SPLITTING, stale, now=4.0, next_poll_at=10.0, work_started_at=4.0)
        is None
    )


def test_the_poller_lists(store: Any) -> None:
    queued = [make_job(stem=f"q/{i}", next_poll_at=float(10 - i)) for i in range(3)]
    for job in queued:
        store.put_new(job)
    polled = make_job(stem="p/0", next_poll_at=None)
    store.put_new(polled)
    store.transition(polled.job_id, [JobState.QUEUED], JobState.SUBMITTING, now=1.0, next_poll_at=30.0)
    assert [j.job_id for j in store.queued(9.0, 10)] == [queued[2].job_id, queued[1].job_id]
    assert store.next_queued_due() == 8.0 and store.next_poll_due() == 30.0
    assert [j.job_id for j in store.active()] == [polled.job_id]
    store.transition(polled.job_id, [JobState.SUBMITTING], JobState.FAILED, now=2.0, next_poll_at=99.0)
    assert store.active() == [] and store.next_poll_due() is None  # an end leaves every list


def test_halves_tasks_and_slots(store: Any) -> None:
    store.record_half("media", "team/clip", kind="video", key="incoming/team/clip.mp4", version="v1", now=1.0)
    [half] = store.waiting_halves()
    assert (half.stem, half.kind, half.key, half.version) == (
        "team/clip",
        "video",
        "incoming/team/clip.mp4",
        "v1",
    )
    store.clear_half("media", "team/clip")
    assert store.waiting_halves() == []
    assert store.claim_task("t-1", "j-a", 1.0) and store.claim_task("t-1", "j-a", 2.0)
    assert not store.claim_task("t-1", "j-b", 3.0) and store.task_owner("t-1") == "j-a"
    assert store.acquire_slot("j-a", 2, 1.0) and store.acquire_slot("j-b", 2, 1.0)
    assert not store.acquire_slot("j-c", 2, 1.0) and store.acquire_slot("j-a", 2, 5.0)
    store.release_slot("j-a")
    assert set(store.slot_holders()) == {"j-b"}


def test_a_create_lock_has_one_holder_until_it_is_released_or_expires(store: Any) -> None:
    fp = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # a fingerprint, never a prompt
    assert store.create_lock(fp, 1.0) is None
    assert store.acquire_create_lock(fp, "j-a", now=1.0, until=153.0)
    assert store.create_lock(fp, 2.0) == CreateLock("j-a", 153.0)
    assert not store.acquire_create_lock(fp, "j-b", now=2.0, until=154.0)  # another job's: refused
    assert store.create_lock(fp, 2.0) == CreateLock("j-a", 153.0)
    assert store.acquire_create_lock(fp, "j-a", now=3.0, until=155.0)  # its own: renewed
    assert store.create_lock(fp, 3.0) == CreateLock("j-a", 155.0)
    assert store.acquire_create_lock("another-fingerprint", "j-b", now=3.0, until=155.0)  # one per prompt
    store.release_create_lock(fp, "j-b")  # not j-b's: it stays
    assert store.create_lock(fp, 4.0) == CreateLock("j-a", 155.0)
    store.release_create_lock(fp, "j-a")
    store.release_create_lock(fp, "j-a")  # twice: a no-op
    store.release_create_lock("never-taken", "j-a")
    assert store.create_lock(fp, 4.0) is None
    assert store.acquire_create_lock(fp, "j-b", now=4.0, until=156.0)  # released: free
    assert store.create_lock(fp, 155.9) == CreateLock("j-b", 156.0)
    assert store.create_lock(fp, 156.0) is None  # expired at its `until`
    assert not store.acquire_create_lock(fp, "j-c", now=155.9, until=300.0)
    assert store.acquire_create_lock(fp, "j-c", now=156.0, until=308.0)  # expired: free
    assert store.create_lock(fp, 200.0) == CreateLock("j-c", 308.0)
