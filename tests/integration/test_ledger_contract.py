"""The budget ledger on DynamoDB (moto, the JobTable as template.yaml defines it) and the unit tests'
fake keep one contract: all-or-none commits within the limits, once per job, settled once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.cfn import load_template
from tests.unit.fakes import FakeLedger
from wanedit.adapters.budget import DynamoBudgetLedger
from wanedit.domain.budget import Period

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
DAY, MONTH = Period("day", "2026-12-01"), Period("month", "2026-12")


@pytest.fixture(params=["fake", "dynamodb"])
def ledger(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeLedger()
        return
    with mock_aws():
        properties = load_template(TEMPLATE)["Resources"]["JobTable"]["Properties"]
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="jobs",
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoBudgetLedger("jobs", resource=boto3.resource("dynamodb", region_name="us-east-1"))


def test_commits_fit_the_limit_and_count_once(ledger: Any) -> None:
    assert ledger.commit("j-1", 6.0, [(DAY, 10.0)])
    assert ledger.commit("j-1", 6.0, [(DAY, 10.0)])  # a repeat changes nothing
    assert not ledger.commit("j-2", 6.0, [(DAY, 10.0)])
    assert ledger.commit("j-3", 4.0, [(DAY, 10.0)])  # exactly to the limit
    entry = ledger.entry(DAY)
    assert (entry.committed, entry.spent, entry.jobs) == (10.0, 0.0, {"j-1": 6.0, "j-3": 4.0})


def test_a_commit_is_all_or_none_over_the_day_and_the_month(ledger: Any) -> None:
    assert ledger.commit("j-1", 8.0, [(DAY, 100.0), (MONTH, 10.0)])
    assert not ledger.commit("j-2", 8.0, [(DAY, 100.0), (MONTH, 10.0)])  # the month refuses it...
    assert "j-2" not in ledger.entry(DAY).jobs  # ...so the day does not count it either


def test_settling_replaces_the_estimate_once(ledger: Any) -> None:
    ledger.commit("j-1", 8.0, [(DAY, 10.0)])
    ledger.settle("j-1", 6.5, DAY)
    ledger.settle("j-1", 6.5, DAY)  # a repeat changes nothing
    entry = ledger.entry(DAY)
    assert (entry.committed, entry.spent, entry.jobs) == (0.0, 6.5, {})
    assert ledger.commit("j-2", 3.5, [(DAY, 10.0)]) and not ledger.commit("j-3", 0.5, [(DAY, 10.0)])


def test_concurrent_commits_never_pass_the_limit(ledger: Any) -> None:
    # DynamoDB runs each transaction atomically; moto does not against a concurrent one, so the
    # calls are serialized here (as the fault harness does for the job store) and raced all the same.
    lock = threading.Lock()
    results: list[bool] = []

    def submit(i: int) -> None:
        with lock:
            results.append(ledger.commit(f"j-{i}", 1.0, [(DAY, 5.0), (MONTH, 50.0)]))

    workers = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results.count(True) == 5 and ledger.entry(DAY).committed == 5.0
