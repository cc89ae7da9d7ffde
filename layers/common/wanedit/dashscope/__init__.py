"""Client of Alibaba Cloud Model Studio's wan2.7-videoedit API (requests + pydantic only).

The use cases import this package for its models and errors; the client (and requests, a tenth
of a cold start) is loaded only when one is built, through the module `__getattr__` below.
"""

from typing import TYPE_CHECKING, Any

from .endpoints import CREATE_PATH, LIST_PATH, Region, endpoint_for, normalize_base_url, validate_task_id
from .errors import (
    CreateOutcomeUnknown,
    DashScopeError,
    FinalError,
    InvalidRequestError,
    QuotaExhaustedError,
    RetryableError,
    ThrottledError,
    classify_response,
)
from .models import (
    API_TZ,
    MAX_LIST_WINDOW,
    MODEL,
    CreateTaskRequest,
    CreateTaskResponse,
    Media,
    TaskInput,
    TaskList,
    TaskListItem,
    TaskOutput,
    TaskParameters,
    TaskResponse,
    TaskStatus,
    Usage,
    format_list_time,
    parse_api_time,
)

if TYPE_CHECKING:
    from .client import DashScopeClient


def __getattr__(name: str) -> Any:
    if name == "DashScopeClient":
        from .client import DashScopeClient

        return DashScopeClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "API_TZ",
    "CREATE_PATH",
    "LIST_PATH",
    "MAX_LIST_WINDOW",
    "MODEL",
    "CreateOutcomeUnknown",
    "CreateTaskRequest",
    "CreateTaskResponse",
    "DashScopeClient",
    "DashScopeError",
    "FinalError",
    "InvalidRequestError",
    "Media",
    "QuotaExhaustedError",
    "Region",
    "RetryableError",
    "TaskInput",
    "TaskList",
    "TaskListItem",
    "TaskOutput",
    "TaskParameters",
    "TaskResponse",
    "TaskStatus",
    "ThrottledError",
    "Usage",
    "classify_response",
    "endpoint_for",
    "format_list_time",
    "normalize_base_url",
    "parse_api_time",
    "validate_task_id",
]
