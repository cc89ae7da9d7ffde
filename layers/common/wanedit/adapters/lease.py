"""The poller's lease: one PollFunction invocation polls at a time, with no reserved concurrency.

`ReservedConcurrentExecutions: 1` would do it, but reserving concurrency fails the deploy on an
account whose Lambda quota is 10 (the unreserved pool may not drop below 10). Instead every
invocation tries to take one item of the JobTable (`pk = LEASE#poller`) with a conditional write
that succeeds only if the lease is free, has expired, or is already the caller's; whoever loses
exits at once.

Expiry: a lease holds until `min(now + ttl, deadline)`, `deadline` being the end of the holder's
invocation (start + the function's timeout, from the context's remaining time). Lambda ends an
invocation at its timeout, so a lease never outlives its holder: with the PollFunction's 60 s
timeout and the default PollSchedule of rate(1 minute), the tick after a holder's start finds its
lease lapsed whenever and however it died (crash, timeout, out of memory) and takes over, so a dead
holder is replaced within one schedule period. `ttl` (default 60 s, the function's timeout) bounds a
lease taken without a deadline. A live holder renews at every poll round and stops polling the
moment `renew` answers False; a second invocation's `acquire` answers False at once, and it exits.

The attributes are `holder`, `renewed_at` and `lease_until`, not the table's TTL attribute
(`expires_at`): DynamoDB must never delete the item, because `wanedit doctor` reads `renewed_at`
to tell whether the poller ran recently, also after the lease was released.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

import boto3
from botocore.exceptions import ClientError

from wanedit.domain.timing import POLL_FUNCTION_TIMEOUT_SECONDS

DEFAULT_TTL_SECONDS = POLL_FUNCTION_TIMEOUT_SECONDS
POLLER_LEASE = "poller"


class LeaseHolder(NamedTuple):
    """Who holds (or last held) the lease, when it was last renewed and until when it holds."""

    holder: str
    renewed_at: float
    expires_at: float


def _conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Lease:
    """A named lease in the JobTable, taken and kept by conditional writes (never read-then-write)."""

    def __init__(
        self,
        table_name: str,
        *,
        name: str = POLLER_LEASE,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        resource: Any = None,
    ) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self._key = {"pk": f"LEASE#{name}"}
        self.ttl_seconds = ttl_seconds

    def acquire(self, holder: str, now: float, deadline: float | None = None) -> bool:
        """Take the lease if it is free, lapsed or already `holder`'s; False at once otherwise."""
        return self._write(
            holder,
            now,
            deadline,
            "attribute_not_exists(pk) OR lease_until <= :now OR holder = :holder",
        )

    def renew(self, holder: str, now: float, deadline: float | None = None) -> bool:
        """Extend `holder`'s lease; False when someone else holds it now (stop polling)."""
        return self._write(holder, now, deadline, "holder = :holder")

    def release(self, holder: str) -> None:
        """Free the lease at once if `holder` still has it; `renewed_at` stays for `wanedit doctor`."""
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression="SET lease_until = :free",
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":free": 0, ":holder": holder},
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise

    def holder_info(self) -> LeaseHolder | None:
        """The lease as stored (None: no poller ever ran)."""
        item = self._table.get_item(Key=self._key, ConsistentRead=True).get("Item")
        if item is None:
            return None
        return LeaseHolder(str(item["holder"]), float(item["renewed_at"]), float(item["lease_until"]))

    def _write(self, holder: str, now: float, deadline: float | None, condition: str) -> bool:
        until = now + self.ttl_seconds if deadline is None else min(now + self.ttl_seconds, deadline)
        try:
            self._table.update_item(
                Key=self._key,
                UpdateExpression="SET holder = :holder, renewed_at = :now, lease_until = :until",
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    ":holder": holder,
                    ":now": Decimal(repr(float(now))),
                    ":until": Decimal(repr(float(until))),
                },
            )
        except ClientError as error:
            if _conditional_failure(error):
                return False
            raise
        return True
