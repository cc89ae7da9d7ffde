"""Typed request and response bodies of the wan2.7-videoedit API (see the API reference).

Requests are strict (``extra="forbid"``, the documented values and limits): a typo fails here, not
at the service. Responses are forward-compatible (``extra="allow"``): unknown fields are kept, never
an error, and every documented field is declared. Task times come as ``YYYY-MM-DD HH:mm:ss.SSS`` in
UTC+8 (the list's as epoch milliseconds) and are parsed into aware datetimes; a time given as text
stays in ``raw_times`` as received.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from wanedit.domain.limits import MAX_REFERENCE_IMAGES, MODEL
from wanedit.domain.request import EditParameters
from wanedit.domain.usage import LooseInt, Usage

__all__ = [
    "API_TZ",
    "MAX_LIST_WINDOW",
    "MODEL",
    "CreateTaskRequest",
    "CreateTaskResponse",
    "Media",
    "TaskInput",
    "TaskList",
    "TaskListItem",
    "TaskOutput",
    "TaskParameters",
    "TaskResponse",
    "TaskStatus",
    "Usage",
    "format_list_time",
    "parse_api_time",
]

API_TZ = timezone(timedelta(hours=8), "UTC+08:00")
"""The service reports and takes wall-clock times in UTC+8."""
MAX_LIST_WINDOW = timedelta(hours=24)
"""The longest ``start_time``..``end_time`` one task-list call may cover; the service refuses more."""


# --------------------------------------------------------------------------- request


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Media(_Request):
    """One media asset: the video to edit, or a reference image (URL or ``data:`` URI)."""

    type: Literal["video", "reference_image"]
    url: str = Field(min_length=1)

    def __repr_args__(self) -> Any:
        # data: URIs run to megabytes and presigned URLs carry signatures: show neither in full.
        yield "type", self.type
        yield "url", _ellipsize(self.url)


class TaskInput(_Request):
    prompt: str | None = None
    negative_prompt: str | None = None
    media: list[Media] = Field(min_length=1)

    @model_validator(mode="after")
    def _media_limits(self) -> TaskInput:
        videos = sum(1 for m in self.media if m.type == "video")
        images = len(self.media) - videos
        if videos != 1:
            raise ValueError(f"media must hold exactly one video (got {videos})")
        if images > MAX_REFERENCE_IMAGES:
            raise ValueError(f"media may hold at most {MAX_REFERENCE_IMAGES} reference images (got {images})")
        return self


TaskParameters = EditParameters
"""The API's ``parameters`` object (the job's own model: `wanedit.domain.request.EditParameters`)."""


class CreateTaskRequest(_Request):
    """The body of ``POST /api/v1/services/aigc/video-generation/video-synthesis``."""

    model: str = MODEL
    input: TaskInput
    parameters: TaskParameters | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body: unset fields left out (so the service's defaults apply), no empty parameters."""
        body = self.model_dump(mode="json", exclude_none=True)
        if not body.get("parameters"):
            body.pop("parameters", None)
        return body


# --------------------------------------------------------------------------- responses


class TaskStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    """The service holds the task: it is not running now and has not ended.

    Not in the reference's list, but both official SDKs know it (Python ``TaskStatus.SUSPENDED``,
    Java ``TaskStatus.SUSPENDED``), and neither SDK's ``wait()`` stops on it: it keeps polling, as for
    PENDING and RUNNING. No document says when the service suspends a task (Model Studio's
    fine-tuning API uses the word for a job paused by the service and resumed later). So it is a
    live task, like PENDING: neither terminal nor UNKNOWN. Never expire or replace it before its
    24 h lifetime is over.
    """
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"
    """The task does not exist (e.g. older than 24 h) or its status is unknown."""

    @classmethod
    def _missing_(cls, value: object) -> TaskStatus:
        # Case differences are tolerated; a status the reference does not list is, by the
        # reference's own definition, a status that is unknown to us.
        if isinstance(value, str):
            for member in cls:
                if member.value == value.strip().upper():
                    return member
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """SUCCEEDED, FAILED or CANCELED: the task will not change any more.

        UNKNOWN is not terminal by itself: it means expired (after 24 h) or not (yet) known, and
        only the caller knows the task's age.
        """
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED)

    @property
    def is_active(self) -> bool:
        """PENDING, RUNNING or SUSPENDED: the task lives and will change; poll again later."""
        return self in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUSPENDED)


_API_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S")


def parse_api_time(value: Any) -> datetime | None:
    """A service time as an aware datetime.

    Takes ``YYYY-MM-DD HH:mm:ss.SSS`` (UTC+8, as documented), the same without milliseconds,
    ``YYYYMMDDhhmmss``, ISO 8601 (naive means UTC+8), epoch seconds or milliseconds, or a datetime.
    Empty or unparseable values give None (the text is kept in ``raw_times``).
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=API_TZ)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC).astimezone(API_TZ)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit() and len(text) != 14:
        return parse_api_time(int(text))
    for fmt in _API_TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=API_TZ)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=API_TZ)


def format_list_time(moment: datetime) -> str:
    """An aware datetime as the list API's ``YYYYMMDDhhmmss`` in UTC+8."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("list times must be timezone-aware datetimes")
    return moment.astimezone(API_TZ).strftime("%Y%m%d%H%M%S")


def _empty_to_none(value: Any) -> Any:
    return None if value == "" else value


def _to_str(value: Any) -> Any:
    """An identifier as text: ``"1234"`` or ``1234`` -> ``"1234"``; ``""`` -> None."""
    if value == "":
        return None
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ApiTime = Annotated[datetime | None, BeforeValidator(parse_api_time)]
OptStr = Annotated[str | None, BeforeValidator(_empty_to_none)]
LooseStr = Annotated[str | None, BeforeValidator(_to_str)]


class _Response(BaseModel):
    # Forward-compatible: fields the reference does not list are kept (model_extra), never an error.
    model_config = ConfigDict(extra="allow", defer_build=True)


class _TimedResponse(_Response):
    """A response part with service times: the parsed values, and the text as received."""

    _time_fields: ClassVar[tuple[str, ...]] = ()
    raw_times: dict[str, str] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw_times(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = cls._time_fields
            raw = {n: data[n] for n in names if isinstance(data.get(n), str) and data[n]}
            if raw:
                data = {**data, "raw_times": {**raw, **(data.get("raw_times") or {})}}
        return data


class TaskOutput(_TimedResponse):
    """``output`` of a create or query response."""

    _time_fields: ClassVar[tuple[str, ...]] = ("submit_time", "scheduled_time", "end_time")

    task_id: str
    task_status: TaskStatus = TaskStatus.UNKNOWN
    submit_time: ApiTime = None
    scheduled_time: ApiTime = None
    end_time: ApiTime = None
    orig_prompt: str | None = None
    video_url: OptStr = Field(default=None, repr=False)  # a bearer link to the result
    code: OptStr = None
    message: OptStr = None


class TaskResponse(_Response):
    """``GET /api/v1/tasks/{task_id}``.

    ``status_code``/``code``/``message`` at the top level appear in SDK-shaped bodies only.
    """

    request_id: str | None = None
    output: TaskOutput
    usage: Usage | None = None
    status_code: int | None = None
    code: OptStr = None
    message: OptStr = None


class CreateTaskResponse(TaskResponse):
    """``POST .../video-synthesis`` (asynchronous): ``output.task_id`` and ``output.task_status``."""


class TaskListItem(_TimedResponse):
    """One task of ``GET /api/v1/tasks``: the fields of the official Java SDK's ``AsyncTaskInfo``.

    ``gmt_create`` (created), ``start_time`` (began running) and ``end_time`` come as epoch
    milliseconds and are parsed into aware datetimes (text in the API's other formats is taken too);
    a time not known yet is absent. ``request_id`` is the create call's. ``caller_parent_id`` is the
    account's main UID, ``caller_uid`` the (RAM) user who created the task, ``api_key_id`` the key:
    the list holds every task of the account, whichever workload made it. Only ``task_id`` and
    ``status`` are taken as always present.
    """

    _time_fields: ClassVar[tuple[str, ...]] = ("gmt_create", "start_time", "end_time")

    task_id: str
    status: TaskStatus = TaskStatus.UNKNOWN
    model_name: OptStr = None
    gmt_create: ApiTime = None
    start_time: ApiTime = None
    end_time: ApiTime = None
    request_id: OptStr = None
    api_key_id: LooseStr = None
    caller_parent_id: LooseStr = None
    caller_uid: LooseStr = None
    user_api_unique_key: OptStr = None
    region: OptStr = None


class TaskList(_Response):
    """``GET /api/v1/tasks``: one page of the account's tasks, newest first."""

    request_id: str | None = None
    data: list[TaskListItem] = Field(default_factory=list)
    page_no: LooseInt = None
    page_size: LooseInt = None
    total: LooseInt = None
    total_page: LooseInt = None

    @model_validator(mode="before")
    @classmethod
    def _null_data(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("data") is None and "data" in data:
            data = {**data, "data": []}
        return data


def _ellipsize(text: str, keep: int = 48) -> str:
    return text if len(text) <= keep else f"{text[:keep]}...({len(text)} chars)"
