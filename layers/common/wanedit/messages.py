"""The body of every queue message, defined once: the sender, the handler and redrive all use these.

Ingest messages are S3 "Object Created" events that EventBridge puts on the IngestQueue: Powertools
defines them (the handler reads them with its data class, redrive checks them with its model);
completion and long-clip messages are wanedit's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class CompletionMessage(_Body):
    """A task succeeded: persist the job's result (the CompleteFunction)."""

    job_id: str = Field(min_length=1)


class LongClipMessage(_Body):
    """Work for the LongClipFunction (the function with PyAV): a long clip to split into segments or
    whose edited segments to stitch, or a saved edit to draw a before/after preview of."""

    action: Literal["split", "stitch", "preview"]
    job_id: str = Field(min_length=1)


def problem_parsing(model: type[BaseModel], body: str) -> str | None:
    """Why `body` is not a message of `model` (None: it is): what redrive keeps out of a queue."""
    try:
        model.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"] in ("json_invalid", "model_type", "dict_type") and not where:
            return "not a JSON object"
        if first["type"] == "missing":
            return f"no {where}"
        return f"{where}: {first['msg']}"
    return None
