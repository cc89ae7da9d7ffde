"""The poller's lease (wanedit.adapters.lease) against moto's DynamoDB, on the template's JobTable.

moto runs a conditional write as "check, then write" in Python, with no lock, so two threads can
interleave between the two. DynamoDB makes each single-item write atomic; the `atomic_items`
fixture gives moto that guarantee back (one lock around its item writes) and nothing more, so the
races below race the adapter's own logic: a read-then-write lease would let two threads win.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.cfn import load_template
from wanedit.adapters.lease import DEFAULT_TTL_SECONDS, Lease, LeaseHolder

TABLE = "wanedit-test-jobs"
START = 1_795_600_000.0
PERIOD = 60.0  # the PollSchedule default, rate(1 minute)
TIMEOUT = 60.0  # the PollFunction's timeout


@pytest.fixture
def resource() -> Iterator[Any]:
    table = load_template()["Resources"]["JobTable"]["Properties"]
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
            BillingMode=table["BillingMode"],
        )
        yield dynamodb


@pytest.fixture
def atomic_items(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


def lease(resource: Any) -> Lease:
    return Lease(TABLE, resource=resource)


def race(contenders: int, attempt: Any) -> list[str]:
    """`contenders` threads released at once, each calling attempt(name); the names that got True."""
    barrier = threading.Barrier(contenders)
    winners: list[str] = []
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            if attempt(name):
                winners.append(name)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"poller-{n}",)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return winners


def test_first_taker_holds_it_and_a_second_is_refused_at_once(resource: Any) -> None:
    poller = lease(resource)
    assert poller.holder_info() is None
    assert poller.acquire("a", START)
    assert not poller.acquire("b", START + 1)
    assert poller.acquire("a", START + 2)  # already ours: taking it again is fine
    assert poller.holder_info() == LeaseHolder("a", START + 2, START + 2 + DEFAULT_TTL_SECONDS)


@pytest.mark.usefixtures("atomic_items")
@pytest.mark.parametrize("contenders", [2, 8])
def test_concurrent_acquirers_never_both_hold_it(resource: Any, contenders: int) -> None:
    poller = lease(resource)
    for round_ in range(15):
        now = START + round_ * PERIOD  # each round the previous holder's lease has lapsed
        winners = race(contenders, lambda name, now=now: poller.acquire(name, now, deadline=now + TIMEOUT))
        assert len(winners) == 1, f"round {round_}: {winners} all hold the lease"
        info = poller.holder_info()
        assert info is not None and info.holder == winners[0]
        # The losers may not renew what they never got; the winner may.
        for loser in {f"poller-{n}" for n in range(contenders)} - set(winners):
            assert not poller.renew(loser, now + 1)
        assert poller.renew(winners[0], now + 1)


@pytest.mark.usefixtures("atomic_items")
def test_concurrent_takeover_of_a_lapsed_lease_has_one_winner(resource: Any) -> None:
    poller = lease(resource)
    assert poller.acquire("dead", START, deadline=START + TIMEOUT)
    winners = race(6, lambda name: poller.acquire(name, START + PERIOD, deadline=START + PERIOD + TIMEOUT))
    assert len(winners) == 1
    assert poller.holder_info().holder == winners[0]  # type: ignore[union-attr]


def test_a_dead_holder_is_replaced_at_the_next_tick(resource: Any) -> None:
    """The holder renews late in its run, then dies: its lease ends with its invocation, so the next
    scheduled invocation (one period later) takes over, and the dead one can renew nothing."""
    poller = lease(resource)
    deadline = START + TIMEOUT
    assert poller.acquire("first", START, deadline=deadline)
    assert poller.renew("first", START + 50, deadline=deadline)  # its last sign of life
    assert poller.holder_info() == LeaseHolder("first", START + 50, deadline)  # never past its deadline
    assert not poller.acquire("overlap", START + 55, deadline=START + 55 + TIMEOUT)  # still alive
    assert poller.acquire("next-tick", START + PERIOD, deadline=START + PERIOD + TIMEOUT)
    assert not poller.renew("first", START + PERIOD + 1)  # a late renew by the old holder fails
    assert poller.holder_info().holder == "next-tick"  # type: ignore[union-attr]


def test_without_a_deadline_the_ttl_bounds_the_lease(resource: Any) -> None:
    poller = Lease(TABLE, resource=resource, ttl_seconds=30)
    assert poller.acquire("a", START)
    assert not poller.acquire("b", START + 29.9)
    assert poller.acquire("b", START + 30)


def test_release_frees_it_at_once_and_keeps_when_it_last_ran(resource: Any) -> None:
    poller = lease(resource)
    assert poller.acquire("a", START)
    poller.release("b")  # not the holder: nothing happens
    assert not poller.acquire("b", START + 1)
    poller.release("a")
    info = poller.holder_info()
    assert info is not None and info.renewed_at == START and info.expires_at == 0
    assert poller.acquire("b", START + 1)
    assert not poller.renew("a", START + 2)


def test_the_lease_item_is_not_a_job_and_never_expires_by_ttl(resource: Any) -> None:
    """The table's TTL attribute is expires_at: the lease must not carry it (doctor reads renewed_at)."""
    assert lease(resource).acquire("a", START)
    (item,) = resource.Table(TABLE).scan()["Items"]
    assert item["pk"] == "LEASE#poller"
    assert set(item) == {"pk", "holder", "renewed_at", "lease_until"}
    assert "active" not in item  # never on the poller's work list (the sparse index)
