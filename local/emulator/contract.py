"""What the emulator holds the service to, each fact once: the server answers by these, and
``wanedit conformance`` compares the real service with them.

Each fact says where it comes from: ``documented`` (the API reference, Model Studio's "Asynchronous
task management API" page, the official SDKs' sources) or ``assumed`` (nothing public settles it;
the probe is how anyone with a key finds out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wanedit.domain.limits import MODEL

Basis = Literal["documented", "assumed"]

REGION = "ap-southeast-1"
CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
TASKS_PATH = "/api/v1/tasks"

# documented: task ids and result URLs live 24 h (the reference). Never scaled: the pipeline's own
# 24 h checks must hold against the emulator as against the service.
TASK_TTL_SECONDS = 24 * 3600

# documented (Model Studio): at most 5 tasks RUNNING per account; the rest wait PENDING.
RUNNING_CAP = 5
# documented: 5 creates/s (the reference's limit for this model); 20 QPS per Alibaba Cloud account
# (all its RAM users and keys) for the query (the task management page), and for list and cancel
# "like query" (issue 15's reading of the same page). Each endpoint counts on its own.
CREATE_RATE = 5
READ_RATE = 20

# documented (Model Studio's "Asynchronous task management API" page, as issue 15 quotes it; the
# page's list section itself could not be read where this was written): one list call covers at
# most 24 h. The conformance probe checks both edges.
LIST_WINDOW_SECONDS = 24 * 3600
# assumed: ``start_time``/``end_time`` are ``YYYYMMDDhhmmss`` (documented, the SDKs' docstrings) in
# UTC+8, the zone every other time of the API is in (the zone itself is not documented).
LIST_WINDOW_TZ_HOURS = 8

# documented: the Java SDK's AsyncTaskInfo, field for field; the times are epoch milliseconds (Long),
# as in the SDK's own test fixture. Nothing else is sent (a strict client must parse every entry).
LIST_ENTRY_FIELDS = frozenset(
    {
        "api_key_id",
        "caller_parent_id",
        "caller_uid",
        "end_time",
        "gmt_create",
        "model_name",
        "region",
        "request_id",
        "start_time",
        "status",
        "task_id",
        "user_api_unique_key",
    }
)
LIST_TIME_FIELDS = ("gmt_create", "start_time", "end_time")
# assumed: a time not known yet (start_time of a PENDING task, end_time of a live one) is left out,
# as Alibaba's JSON serializers leave out nulls.
LIST_OPTIONAL_FIELDS = frozenset({"start_time", "end_time"})
# assumed: the pattern of the Java SDK's fixture ("apikey:v1:<group>:<task>:<function>:<model>")
# applied to this model's create path.
USER_API_UNIQUE_KEY = f"apikey:v1:aigc:video-generation:video-synthesis:{MODEL}"
LIST_PAGE_SIZE_MAX = 100

# documented (the reference's "Expired query"): an unknown or expired task id is a 200 whose output
# holds only these.
UNKNOWN_OUTPUT_FIELDS = frozenset({"task_id", "task_status"})
# documented (the reference's query responses): a finished task's output, beside its status.
_FINISHED = frozenset({"task_id", "task_status", "submit_time", "scheduled_time", "end_time"})
SUCCEEDED_OUTPUT_FIELDS = _FINISHED | {"orig_prompt", "video_url"}
FAILED_OUTPUT_FIELDS = _FINISHED | {"code", "message"}


@dataclass(frozen=True)
class Refusal:
    """An error answer: HTTP status, ``code`` and ``message`` (``request_id`` beside them)."""

    status: int
    code: str
    message: str
    basis: Basis


# assumed: the documented error code for a bad parameter; the service's exact words are unknown.
LIST_WINDOW_REFUSED = Refusal(
    400,
    "InvalidParameter",
    "The time range between start_time and end_time must not exceed 24 hours.",
    "assumed",
)
# assumed: what the service answers when asked to cancel a task that is not PENDING (or not the
# account's); the reference only says that PENDING tasks can be canceled.
CANCEL_REFUSED = Refusal(
    400,
    "UnsupportedOperation",
    "Failed to cancel the task, please confirm if the task is in PENDING status.",
    "assumed",
)
