"""The JobTable's create locks: one item per prompt fingerprint, the `JobStore` port's lock methods.

`PROMPT#<fingerprint>` (a hash of the prompt, never the prompt) holds `job_id` (whose create it is)
and `until` (the end of the span in which reconciliation could confuse that create's task with
another's). Taken with one conditional PutItem, free when absent, released (no `job_id`), expired
(`until <= now`) or already the caller's; released with a conditional UpdateItem that drops
`job_id` only if the caller still holds it, so no DeleteItem is needed. `expires_at` lets the
table's TTL remove a lock long after it lapsed; the condition never relies on that deletion.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from wanedit.ports import CreateLock

LOCK_PREFIX = "PROMPT#"
FREE_OR_OURS = "attribute_not_exists(pk) OR attribute_not_exists(job_id) OR #until <= :now OR job_id = :job"
LOCK_RETENTION_SECONDS = 86400  # the TTL removes a lapsed lock's item a day after it lapsed


def _conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


class DynamoCreateLocks:
    """The create-lock methods of `DynamoJobStore` (a mixin over its `_table`)."""

    _table: Any

    def acquire_create_lock(self, fingerprint: str, job_id: str, *, now: float, until: float) -> bool:
        try:
            self._table.put_item(
                Item={
                    "pk": f"{LOCK_PREFIX}{fingerprint}",
                    "job_id": job_id,
                    "until": _decimal(until),
                    "taken_at": _decimal(now),
                    "expires_at": int(until) + LOCK_RETENTION_SECONDS,
                },
                ConditionExpression=FREE_OR_OURS,
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":now": _decimal(now), ":job": job_id},
            )
        except ClientError as error:
            if _conditional_failure(error):
                return False
            raise
        return True

    def create_lock(self, fingerprint: str, now: float) -> CreateLock | None:
        key = {"pk": f"{LOCK_PREFIX}{fingerprint}"}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        if not item or "job_id" not in item or float(item["until"]) <= now:
            return None
        return CreateLock(holder=str(item["job_id"]), until=float(item["until"]))

    def release_create_lock(self, fingerprint: str, job_id: str) -> None:
        try:
            self._table.update_item(
                Key={"pk": f"{LOCK_PREFIX}{fingerprint}"},
                UpdateExpression="REMOVE job_id",
                ConditionExpression="job_id = :job",
                ExpressionAttributeValues={":job": job_id},
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise
