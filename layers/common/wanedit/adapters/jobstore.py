"""DynamoDB JobTable: jobs, waiting halves, task claims and the shared slot lease — one table.

Items (partition key `pk` only):
  JOB#<job_id>         the job (attributes `active` + `next_poll_at` only while it still needs the
                       poller: the sparse GSI ActiveByNextPoll is the poller's work list)
  HALF#<bucket>/<stem> a clip or sidecar waiting for its partner (WAITING_PAIR)
  TASK#<task_id>       which job owns an API task (a create is recorded at most once)
  SLOTS                map job_id -> lease time of jobs holding one of the account's task slots

Every state change is a conditional update, so two workers racing on a job cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from wanedit.jobs import Job, JobState

ACTIVE_INDEX = "ActiveByNextPoll"
# Two lists in one sparse index: jobs the poller must query ("poll", by next poll time) and jobs
# waiting for a slot ("queue", FIFO by the time they were queued).
POLL_LIST = "poll"
QUEUE_LIST = "queue"
SLOTS_PK = "SLOTS"


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _list_for(state: JobState) -> str:
    return QUEUE_LIST if state is JobState.QUEUED else POLL_LIST


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class JobStore:
    """Typed access to the JobTable; the only module that speaks DynamoDB."""

    def __init__(self, table_name: str, *, retention_days: int = 30, resource: Any = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self._retention_seconds = retention_days * 86400

    # jobs -------------------------------------------------------------------------------------

    def put_new(self, job: Job) -> bool:
        """Create the job unless a job with its id exists (a repeated event is a no-op)."""
        item = self._job_item(job)
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def get(self, job_id: str) -> Job | None:
        item = self._table.get_item(Key={"pk": f"JOB#{job_id}"}, ConsistentRead=True).get("Item")
        return self._job_from_item(item) if item else None

    def transition(
        self,
        job_id: str,
        expected: Iterable[JobState],
        to: JobState,
        *,
        now: float,
        next_poll_at: float | None = None,
        condition_extra: tuple[str, dict[str, Any]] | None = None,
        **changes: Any,
    ) -> Job | None:
        """Move a job from one of `expected` states to `to`; None when another worker got there first.

        `next_poll_at` keeps the job on the poller's list; terminal states and states without it
        leave the list (the sparse index drops items without `active`).
        """
        names = {"#state": "state", "#updated": "updated_at"}
        values: dict[str, Any] = {":to": to.value, ":now": _to_dynamo(now)}
        sets = ["#state = :to", "#updated = :now"]
        removes: list[str] = []
        for index, (field, value) in enumerate(changes.items()):
            names[f"#c{index}"] = field
            if value is None:
                removes.append(f"#c{index}")
            else:
                values[f":c{index}"] = _to_dynamo(
                    value.model_dump() if hasattr(value, "model_dump") else value
                )
                sets.append(f"#c{index} = :c{index}")
        names["#active"], names["#next"] = "active", "next_poll_at"
        if next_poll_at is not None and not to.is_terminal:
            values[":active"] = _list_for(to)
            values[":next"] = _to_dynamo(float(next_poll_at))
            sets += ["#active = :active", "#next = :next"]
        else:
            removes += ["#active", "#next"]
        if to.is_terminal:
            names["#expires"] = "expires_at"
            values[":expires"] = int(now) + self._retention_seconds
            sets.append("#expires = :expires")
        expected_states = list(expected)
        placeholders = []
        for index, state in enumerate(expected_states):
            values[f":e{index}"] = state.value
            placeholders.append(f":e{index}")
        condition = f"attribute_exists(pk) AND #state IN ({', '.join(placeholders)})"
        if condition_extra:
            extra_expression, extra_values = condition_extra
            condition += f" AND ({extra_expression})"
            values.update({k: _to_dynamo(v) for k, v in extra_values.items()})
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            result = self._table.update_item(
                Key={"pk": f"JOB#{job_id}"},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        return self._job_from_item(result["Attributes"])

    def due(self, now: float, limit: int = 100) -> list[Job]:
        """Jobs (not queued) whose next poll time has come, most overdue first."""
        response = self._table.query(
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression=Key("active").eq(POLL_LIST) & Key("next_poll_at").lte(_to_dynamo(now)),
            Limit=limit,
        )
        return [self._job_from_item(item) for item in response.get("Items", [])]

    def queued(self, now: float, limit: int) -> list[Job]:
        """Queued jobs ready to be submitted, first come first served."""
        if limit <= 0:
            return []
        response = self._table.query(
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression=Key("active").eq(QUEUE_LIST) & Key("next_poll_at").lte(_to_dynamo(now)),
            Limit=limit,
        )
        return [self._job_from_item(item) for item in response.get("Items", [])]

    def next_due_at(self, list_name: str = POLL_LIST) -> float | None:
        """When the earliest job of a list wants attention (None: the list is empty)."""
        response = self._table.query(
            IndexName=ACTIVE_INDEX, KeyConditionExpression=Key("active").eq(list_name), Limit=1
        )
        items = response.get("Items", [])
        return float(items[0]["next_poll_at"]) if items else None

    def list_jobs(self, limit: int = 1000) -> list[Job]:
        """All jobs (for the CLI and tests; a scan is fine at this table's size)."""
        jobs: list[Job] = []
        kwargs: dict[str, Any] = {
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": "JOB#"},
        }
        while len(jobs) < limit:
            page = self._table.scan(**kwargs)
            jobs += [self._job_from_item(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return jobs[:limit]

    # waiting halves ---------------------------------------------------------------------------

    def record_half(self, bucket: str, stem: str, *, kind: str, key: str, version: str, now: float) -> None:
        """Remember a clip or sidecar that arrived alone (informational: the partner's event pairs)."""
        self._table.put_item(
            Item={
                "pk": f"HALF#{bucket}/{stem}",
                "state": "WAITING_PAIR",
                "kind": kind,
                "key": key,
                "version": version,
                "updated_at": _to_dynamo(now),
                "expires_at": int(now) + self._retention_seconds,
            }
        )

    def clear_half(self, bucket: str, stem: str) -> None:
        self._table.delete_item(Key={"pk": f"HALF#{bucket}/{stem}"})

    def waiting_halves(self) -> list[dict[str, Any]]:
        page = self._table.scan(
            FilterExpression="begins_with(pk, :p)", ExpressionAttributeValues={":p": "HALF#"}
        )
        return [_from_dynamo(item) for item in page.get("Items", [])]

    # task claims ------------------------------------------------------------------------------

    def claim_task(self, task_id: str, job_id: str, now: float) -> bool:
        """Record that `job_id` owns `task_id`; False if another job already does."""
        try:
            self._table.put_item(
                Item={
                    "pk": f"TASK#{task_id}",
                    "job_id": job_id,
                    "claimed_at": _to_dynamo(now),
                    "expires_at": int(now) + self._retention_seconds,
                },
                ConditionExpression="attribute_not_exists(pk) OR job_id = :job",
                ExpressionAttributeValues={":job": job_id},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def task_owner(self, task_id: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"TASK#{task_id}"}, ConsistentRead=True).get("Item")
        return str(item["job_id"]) if item else None

    # slots ------------------------------------------------------------------------------------

    def acquire_slot(self, job_id: str, cap: int, now: float) -> bool:
        """Take one of `cap` account-wide task slots for `job_id` (idempotent for a holder)."""
        self._ensure_slots_item()
        try:
            self._table.update_item(
                Key={"pk": SLOTS_PK},
                UpdateExpression="SET leases.#job = :now",
                ConditionExpression="attribute_exists(leases.#job) OR size(leases) < :cap",
                ExpressionAttributeNames={"#job": job_id},
                ExpressionAttributeValues={":now": _to_dynamo(now), ":cap": cap},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def release_slot(self, job_id: str) -> None:
        self._ensure_slots_item()
        self._table.update_item(
            Key={"pk": SLOTS_PK},
            UpdateExpression="REMOVE leases.#job",
            ExpressionAttributeNames={"#job": job_id},
        )

    def slot_holders(self) -> dict[str, float]:
        item = self._table.get_item(Key={"pk": SLOTS_PK}, ConsistentRead=True).get("Item")
        return _from_dynamo(item.get("leases", {})) if item else {}

    def _ensure_slots_item(self) -> None:
        try:
            self._table.put_item(
                Item={"pk": SLOTS_PK, "leases": {}}, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    # mapping ----------------------------------------------------------------------------------

    def _job_item(self, job: Job) -> dict[str, Any]:
        item = _to_dynamo(job.model_dump(mode="json", exclude_none=True))
        item["pk"] = f"JOB#{job.job_id}"
        if job.next_poll_at is not None and not job.state.is_terminal:
            item["active"] = _list_for(job.state)
        return dict(item)

    @staticmethod
    def _job_from_item(item: Mapping[str, Any]) -> Job:
        data = _from_dynamo(dict(item))
        for internal in ("pk", "active", "expires_at"):
            data.pop(internal, None)
        return Job.model_validate(data)
