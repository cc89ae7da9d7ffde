"""What the e2e tests do to the local stack: upload, run it until every job has ended, read back."""

from __future__ import annotations

import json
from typing import Any

from wanedit.domain.job import Job


def put(stack: Any, key: str, body: bytes | dict[str, Any]) -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    stack.client("s3").put_object(Bucket=stack.resources.bucket, Key=key, Body=data)


def run_to_end(stack: Any, *, ticks: int = 8) -> list[Job]:
    """Deliver events and run scheduled polls until every job is terminal (bounded)."""
    from wanedit.container import services

    for _ in range(ticks):
        stack.pump.drain()
        jobs = services().store.list_jobs()
        if jobs and all(job.state.is_terminal for job in jobs):
            return jobs
        stack.pump.tick()
        stack.pump.drain()
    return services().store.list_jobs()


def get_object(stack: Any, key: str) -> bytes:
    return bytes(stack.client("s3").get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read())


def get_json(stack: Any, key: str) -> Any:
    return json.loads(get_object(stack, key))


def keys(stack: Any, prefix: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.resources.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))
