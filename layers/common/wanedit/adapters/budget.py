"""The spend guard's ledger in the JobTable: one item per UTC day and month.

  BUDGET#day#2026-12-01, BUDGET#month#2026-12
    total      committed + spent: the one number a conditional write can compare with the budget
    committed  estimates of the jobs admitted and not settled yet
    spent      what settled jobs really cost (their tasks' usage)
    jobs       job id -> its committed estimate: a commit or a settle is done once per job

A commit of both periods is one transaction whose conditions say "this job is not in, and the
total leaves room for it", so concurrent submitters can never together pass a budget; repeating a
commit or a settle after a crash changes nothing (the job's entry decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

from wanedit.domain.budget import Period
from wanedit.ports import LedgerEntry

LEDGER_PREFIX = "BUDGET#"


def _key(period: Period) -> dict[str, str]:
    return {"pk": f"{LEDGER_PREFIX}{period.kind}#{period.label}"}


def _number(value: float) -> Decimal:
    return Decimal(repr(round(value, 6)))


class DynamoBudgetLedger:
    """The `wanedit.ports.BudgetLedger` on the JobTable."""

    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self._resource = resource or boto3.resource("dynamodb")
        self._table = self._resource.Table(table_name)
        self._table_name = table_name

    def commit(self, job_id: str, amount: float, limits: Sequence[tuple[Period, float]]) -> bool:
        """Count `amount` for `job_id` in each period it is not counted in yet, if every such period's
        limit leaves room (one transaction: all or none); False when one does not."""
        pending = [(period, limit) for period, limit in limits if job_id not in self.entry(period).jobs]
        if not pending:
            return True  # a repeated admission (a retry after a crash, a second worker)
        updates = [self._count(job_id, amount, period, limit) for period, limit in pending]
        try:
            self._resource.meta.client.transact_write_items(TransactItems=updates)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return all(job_id in self.entry(period).jobs for period, _ in pending)  # another worker won
        return True

    def _count(self, job_id: str, amount: float, period: Period, limit: float) -> dict[str, Any]:
        self._ensure(period)
        return {
            "Update": {
                "TableName": self._table_name,
                "Key": _key(period),
                "UpdateExpression": "SET jobs.#job = :amount, committed = committed + :amount, "
                "#total = #total + :amount",
                "ConditionExpression": "attribute_not_exists(jobs.#job) AND #total <= :room",
                "ExpressionAttributeNames": {"#job": job_id, "#total": "total"},
                "ExpressionAttributeValues": {":amount": _number(amount), ":room": _number(limit - amount)},
            }
        }

    def settle(self, job_id: str, actual: float, period: Period) -> None:
        """Replace the job's estimate with what it really cost (0: released); once per job."""
        item = self.entry(period)
        committed = item.jobs.get(job_id)
        if committed is None:
            return
        try:
            self._table.update_item(
                Key=_key(period),
                UpdateExpression="REMOVE jobs.#job SET committed = committed - :est, "
                "spent = spent + :actual, #total = #total - :est + :actual",
                ConditionExpression="attribute_exists(jobs.#job)",
                ExpressionAttributeNames={"#job": job_id, "#total": "total"},
                ExpressionAttributeValues={":est": _number(committed), ":actual": _number(actual)},
            )
        except ClientError as error:
            # A conditional failure: settled meanwhile by another worker, nothing more to do.
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def entry(self, period: Period) -> LedgerEntry:
        item = self._table.get_item(Key=_key(period), ConsistentRead=True).get("Item") or {}
        return LedgerEntry(
            period=period,
            spent=float(item.get("spent", 0)),
            committed=float(item.get("committed", 0)),
            jobs={str(k): float(v) for k, v in item.get("jobs", {}).items()},
        )

    def _ensure(self, period: Period) -> None:
        item = {
            **_key(period),
            "jobs": {},
            "committed": 0,
            "spent": 0,
            "total": 0,
            "expires_at": period.expires_at,
        }
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
