"""Where the API lives: base URLs per region and the request paths."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlsplit

from .errors import InvalidRequestError
from .models import MAX_LIST_WINDOW, TaskStatus, format_list_time

__all__ = [
    "CREATE_PATH",
    "LIST_PATH",
    "Region",
    "cancel_path",
    "endpoint_for",
    "list_params",
    "normalize_base_url",
    "task_path",
    "validate_task_id",
]

Region = Literal["singapore", "intl", "beijing"]

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
LIST_PATH = "/api/v1/tasks"

INTL_URL = "https://dashscope-intl.aliyuncs.com"
BEIJING_URL = "https://dashscope.aliyuncs.com"
SINGAPORE_WORKSPACE_URL = "https://{workspace_id}.ap-southeast-1.maas.aliyuncs.com"

# A workspace id becomes a DNS label: letters, digits, inner hyphens, at most 63 characters.
_WORKSPACE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Task ids are UUIDs; allow a little more, but nothing that could leave the path segment.
_TASK_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def endpoint_for(region: Region, workspace_id: str | None = None, base_url: str | None = None) -> str:
    """The API base URL (scheme and host, no trailing slash, no ``/api/v1``).

    An explicit ``base_url`` wins (the local emulator, a proxy); it may end in ``/api/v1`` as the
    SDKs' ``base_http_api_url`` does. ``singapore`` uses the workspace-specific domain; without a
    workspace id it uses ``dashscope-intl``, the same region's shared domain, which the reference
    says "remains fully functional". ``intl`` is that shared domain, ``beijing`` the mainland one.
    """
    if base_url:
        return normalize_base_url(base_url)
    if region == "singapore":
        if not workspace_id:
            return INTL_URL
        if not _WORKSPACE_RE.fullmatch(workspace_id):
            raise ValueError(
                "workspace id must be letters, digits and inner hyphens (at most 63): it becomes a host name"
            )
        return SINGAPORE_WORKSPACE_URL.format(workspace_id=workspace_id)
    if region == "intl":
        return INTL_URL
    if region == "beijing":
        return BEIJING_URL
    raise ValueError(f"unknown region {region!r}: expected singapore, intl or beijing")


def normalize_base_url(base_url: str) -> str:
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url must be an http(s) URL with a host, e.g. http://127.0.0.1:5555")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("base_url must not carry credentials, a query or a fragment")
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def validate_task_id(task_id: str) -> str:
    """The task id if it is safe as one path segment, else ValueError."""
    if not isinstance(task_id, str) or not _TASK_ID_RE.fullmatch(task_id):
        raise ValueError("task id must be 1-128 letters, digits, '-' or '_'")
    return task_id


def task_path(task_id: str) -> str:
    return f"{LIST_PATH}/{quote(validate_task_id(task_id), safe='')}"


def cancel_path(task_id: str) -> str:
    return f"{task_path(task_id)}/cancel"


def list_params(
    start: datetime,
    end: datetime,
    status: TaskStatus | str | None,
    model_name: str | None,
    page_no: int,
    page_size: int,
) -> dict[str, str]:
    """The query of a task-list call; refused here (nothing sent) when the service would refuse it."""
    try:
        start_text, end_text = format_list_time(start), format_list_time(end)
    except ValueError as exc:
        raise InvalidRequestError(None, "InvalidParameter", str(exc), None) from None
    if end < start:
        raise InvalidRequestError(None, "InvalidParameter", "end must not be before start", None)
    if end - start > MAX_LIST_WINDOW:
        raise InvalidRequestError(
            None,
            "ListWindowTooLong",
            f"a task list covers at most {MAX_LIST_WINDOW} (asked for {end - start}); list shorter windows",
            None,
        )
    if page_no < 1 or page_size < 1:
        raise InvalidRequestError(None, "InvalidParameter", "page_no and page_size must be at least 1", None)
    params = {"start_time": start_text, "end_time": end_text}
    if model_name:
        params["model_name"] = model_name
    if status:
        params["status"] = str(status.value if isinstance(status, TaskStatus) else status).upper()
    params["page_no"] = str(page_no)
    params["page_size"] = str(page_size)
    return params
