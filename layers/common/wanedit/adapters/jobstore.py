"""DynamoDB JobTable: jobs, waiting halves, task claims and the shared slot lease — one table.

Items (partition key `pk` only):
  JOB#<job_id>         the job (attributes `active` + `next_poll_at` only while it still needs the
                       poller: the sparse GSI ActiveByNextPoll holds its lists: poll, queue, held)
  HALF#<bucket>/<stem> a clip or sidecar waiting for its partner (WAITING_PAIR)
  TASK#<task_id>       which job owns an API task (a create is recorded at most once)
  SLOTS                map job_id -> lease time of jobs holding one of the account's task slots
  PAUSE#submissions    until when no task is created (the account's quota is used up)
  KEYS                 map api_key_id -> last seen: the keys the service shows on our own tasks
  PROMPT#<fingerprint> whose create of that prompt may be unresolved, until when (`createlock`)

Every state change is a conditional update, so two workers racing on a job cannot both win; a
move the lifecycle does not allow is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from wanedit.adapters.createlock import DynamoCreateLocks
from wanedit.domain.job import Claim, Job
from wanedit.domain.lifecycle import JobState, check_initial
from wanedit.ports import ConditionalWrite, HalfRecord, JobStore

ACTIVE_INDEX = "ActiveByNextPoll"
# Two lists in one sparse index: jobs the poller must look at ("poll", by next poll time) and jobs
# waiting for a slot ("queue", FIFO by the time they were queued).
POLL_LIST = "poll"
QUEUE_LIST = "queue"
HELD_LIST = "held"  # over budget, in arrival order (next_poll_at is the time the job was made)
SLOTS_PK = "SLOTS"
PAUSE_PK = "PAUSE#submissions"
KEYS_PK = "KEYS"


def _to_dynamo(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return _to_dynamo(value.model_dump(mode="json", exclude_none=True))
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


def list_for(state: JobState) -> str:
    """The poller's list a non-terminal job is on."""
    return {JobState.QUEUED: QUEUE_LIST, JobState.HELD: HELD_LIST}.get(state, POLL_LIST)


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class _Update:
    """One conditional UpdateItem on a job, its expression built from typed parts."""

    def __init__(self, now: float) -> None:
        self.names: dict[str, str] = {"#state": "state"}
        self.values: dict[str, Any] = {}
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.conditions = ["attribute_exists(pk)"]
        self.set("updated_at", now)

    def _name(self, field: str) -> str:
        name = f"#n{len(self.names)}"
        self.names[name] = field
        return name

    def _value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _to_dynamo(value)
        return placeholder

    def set(self, field: str, value: Any) -> None:
        """Write `field` (None removes the attribute: the job reads it back as None)."""
        name = "#state" if field == "state" else self._name(field)
        if value is None:
            self.removes.append(name)
        else:
            self.sets.append(f"{name} = {self._value(value)}")

    def require_state(self, states: Iterable[JobState]) -> None:
        placeholders = ", ".join(self._value(state.value) for state in states)
        self.conditions.append(f"#state IN ({placeholders})")

    def require_claim(self, held: Claim) -> None:
        name = self._name(held.field)
        if held.since is None:
            self.conditions.append(f"attribute_not_exists({name})")
        else:
            self.conditions.append(f"{name} = {self._value(held.since)}")

    def schedule(self, state: JobState, next_poll_at: float | None) -> None:
        """On the poller's list for `state` until `next_poll_at`; off every list without one."""
        if next_poll_at is not None and not state.is_terminal:
            self.set("active", list_for(state))
            self.set("next_poll_at", float(next_poll_at))
        else:
            self.set("active", None)
            self.set("next_poll_at", None)

    def kwargs(self) -> dict[str, Any]:
        expression = "SET " + ", ".join(self.sets)
        if self.removes:
            expression += " REMOVE " + ", ".join(self.removes)
        return {
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(self.conditions),
            "ExpressionAttributeNames": self.names,
            "ExpressionAttributeValues": self.values,
            "ReturnValues": "ALL_NEW",
        }


class DynamoJobStore(DynamoCreateLocks, JobStore):
    """The `wanedit.ports.JobStore` on DynamoDB (its create locks written by `createlock`)."""

    def __init__(self, table_name: str, *, retention_days: int = 30, resource: Any = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self._retention_seconds = retention_days * 86400
        self._known_keys: set[str] | None = None  # read once per execution environment, then kept

    # jobs -------------------------------------------------------------------------------------

    def put_new(self, job: Job) -> bool:
        """Create the job unless a job with its id exists (a repeated event is a no-op)."""
        check_initial(job.state)
        item = job_item(job)
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def get(self, job_id: str) -> Job | None:
        item = self._table.get_item(Key={"pk": f"JOB#{job_id}"}, ConsistentRead=True).get("Item")
        return job_from_item(item) if item else None

    def write(self, write: ConditionalWrite) -> Job | None:
        update = _Update(write.now)
        for field, value in write.changes.items():
            update.set(field, value)
        update.set("state", write.to.value)
        update.require_state(write.states)
        if write.held is not None:
            update.require_claim(write.held)
        update.schedule(write.to, write.next_poll_at)
        if write.to.is_terminal:
            update.set("expires_at", int(write.now) + self._retention_seconds)
        try:
            result = self._table.update_item(Key={"pk": f"JOB#{write.job_id}"}, **update.kwargs())
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        return job_from_item(result["Attributes"])

    def active(self, limit: int = 100) -> list[Job]:
        response = self._table.query(
            IndexName=ACTIVE_INDEX, KeyConditionExpression=Key("active").eq(POLL_LIST), Limit=limit
        )
        return [job_from_item(item) for item in response.get("Items", [])]

    def queued(self, now: float, limit: int) -> list[Job]:
        if limit <= 0:
            return []
        response = self._table.query(
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression=Key("active").eq(QUEUE_LIST) & Key("next_poll_at").lte(_to_dynamo(now)),
            Limit=limit,
        )
        return [job_from_item(item) for item in response.get("Items", [])]

    def held(self, limit: int) -> list[Job]:
        response = self._table.query(
            IndexName=ACTIVE_INDEX, KeyConditionExpression=Key("active").eq(HELD_LIST), Limit=limit
        )
        return [job_from_item(item) for item in response.get("Items", [])]

    def next_poll_due(self) -> float | None:
        """When the earliest job the poller follows wants attention (None: there is none)."""
        return self._first_due(POLL_LIST)

    def next_queued_due(self) -> float | None:
        """When the earliest queued job may be submitted (None: the queue is empty)."""
        return self._first_due(QUEUE_LIST)

    def list_jobs(self, limit: int = 1000) -> list[Job]:
        """All jobs (for the CLI and tests; a scan is fine at this table's size)."""
        return [job_from_item(item) for item in self._scan("JOB#", limit)]

    # waiting halves ---------------------------------------------------------------------------

    def record_half(self, bucket: str, stem: str, *, kind: str, key: str, version: str, now: float) -> None:
        """Remember a clip or sidecar that arrived alone (informational: the partner's event pairs)."""
        self._table.put_item(
            Item={
                "pk": f"HALF#{bucket}/{stem}",
                "state": "WAITING_PAIR",
                "stem": stem,
                "kind": kind,
                "key": key,
                "version": version,
                "updated_at": _to_dynamo(now),
                "expires_at": int(now) + self._retention_seconds,
            }
        )

    def clear_half(self, bucket: str, stem: str) -> None:
        self._table.delete_item(Key={"pk": f"HALF#{bucket}/{stem}"})

    def waiting_halves(self) -> list[HalfRecord]:
        return [
            HalfRecord(
                stem=str(item.get("stem") or item["pk"].split("/", 1)[-1]),
                kind=str(item["kind"]),
                key=str(item["key"]),
                version=str(item["version"]),
                updated_at=float(item["updated_at"]),
            )
            for item in self._scan("HALF#", 1000)
        ]

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

    # submissions paused, and our keys ---------------------------------------------------------

    def pause_submissions(self, until: float, reason: str, now: float) -> bool:
        try:
            self._table.put_item(
                Item={"pk": PAUSE_PK, "until": _to_dynamo(until), "reason": reason, "since": _to_dynamo(now)},
                ConditionExpression="attribute_not_exists(pk) OR #until < :now",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":now": _to_dynamo(now)},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False  # paused already: whoever began it announced it
            raise
        return True

    def submissions_paused_until(self, now: float) -> float | None:
        item = self._table.get_item(Key={"pk": PAUSE_PK}, ConsistentRead=True).get("Item")
        until = float(item["until"]) if item else None
        return until if until is not None and until > now else None

    def key_identities(self) -> set[str]:
        if self._known_keys is None:
            item = self._table.get_item(Key={"pk": KEYS_PK}, ConsistentRead=True).get("Item") or {}
            self._known_keys = set(item.get("keys", {}))
        return set(self._known_keys)

    def note_key_identities(self, ids: set[str], now: float) -> None:
        new = ids - self.key_identities()
        if not new:
            return
        for key_id in sorted(new):
            self._table.update_item(
                Key={"pk": KEYS_PK},
                UpdateExpression="SET #keys = if_not_exists(#keys, :empty)",
                ExpressionAttributeNames={"#keys": "keys"},
                ExpressionAttributeValues={":empty": {}},
            )
            self._table.update_item(
                Key={"pk": KEYS_PK},
                UpdateExpression="SET #keys.#id = :now",
                ExpressionAttributeNames={"#keys": "keys", "#id": key_id},
                ExpressionAttributeValues={":now": _to_dynamo(now)},
            )
        self._known_keys = (self._known_keys or set()) | new

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

    def _first_due(self, list_name: str) -> float | None:
        response = self._table.query(
            IndexName=ACTIVE_INDEX, KeyConditionExpression=Key("active").eq(list_name), Limit=1
        )
        items = response.get("Items", [])
        return float(items[0]["next_poll_at"]) if items else None

    def _scan(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": prefix},
        }
        while len(items) < limit:
            page = self._table.scan(**kwargs)
            items += [_from_dynamo(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items[:limit]


def job_item(job: Job) -> dict[str, Any]:
    """The JOB# item of a job (on the poller's list while it is live and scheduled)."""
    item = _to_dynamo(job.model_dump(mode="json", exclude_none=True))
    item["pk"] = f"JOB#{job.job_id}"
    if job.next_poll_at is not None and not job.state.is_terminal:
        item["active"] = list_for(job.state)
    return dict(item)


def job_from_item(item: Mapping[str, Any]) -> Job:
    data = _from_dynamo(dict(item))
    for internal in ("pk", "active", "expires_at"):
        data.pop(internal, None)
    return Job.model_validate(data)
