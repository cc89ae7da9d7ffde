"""How an answer of the API (or its absence) becomes a parsed model or a typed, scrubbed error.

Which failures prove nothing was sent, which leave a create's outcome unknown, and that no text
the server echoes carries the API key out: see the client's module docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import requests
from pydantic import BaseModel, ValidationError
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .errors import (
    CreateOutcomeUnknown,
    DashScopeError,
    RetryableError,
    ThrottledError,
    classify_response,
)

Kind = Literal["read", "create", "cancel"]
M = TypeVar("M", bound=BaseModel)

MAX_ERROR_TEXT = 300


def _not_sent(exc: BaseException) -> bool:
    """True when the exception proves no byte of the request reached the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError):  # refused, DNS, connect timeout
            return True
        if isinstance(current, BaseException):
            stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
            stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False


def transport_error(exc: requests.RequestException, kind: Kind, key: str) -> DashScopeError:
    not_sent = _not_sent(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        code = "ConnectTimeout"
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        code = "ReadTimeout"
    elif not_sent:
        code = "ConnectionFailed"
    else:
        code = "ConnectionLost"
    detail = scrub(f"{type(exc).__name__}: {exc}", key)
    if kind == "create" and not not_sent:
        error: DashScopeError = CreateOutcomeUnknown(
            None, code, f"create sent but not answered; a task may exist ({detail})", None
        )
    else:
        error = RetryableError(None, code, f"no answer from the API ({detail})", None)
    error.delivered = False if not_sent else None
    return error


def http_error(
    kind: Kind, response: requests.Response, data: dict[str, Any] | None, key: str
) -> DashScopeError:
    status = response.status_code
    code = _text(data.get("code")) if data else None
    message = _text(data.get("message")) if data else None
    if not message:
        message = f"HTTP {status} {response.reason or ''}".strip()
        if data is None and response.content:
            message += f": {_snippet(response)}"
    message = scrub(message, key)
    request_id = request_id_of(data, response)
    error = classify_response(status, code, message, request_id, retry_after=_retry_after(response))
    if (
        kind == "create"
        and isinstance(error, RetryableError)
        and not isinstance(error, ThrottledError)
        and status not in (408, 503)
    ):
        error = CreateOutcomeUnknown(status, code, message, request_id, retry_after=error.retry_after)
    error.delivered = True
    return error


def malformed(kind: Kind, response: requests.Response, request_id: str | None) -> DashScopeError:
    message = f"HTTP {response.status_code} with a body that is not a JSON object"
    if kind == "create":
        error: DashScopeError = CreateOutcomeUnknown(
            response.status_code, "MalformedResponse", message + "; a task may exist", request_id
        )
    else:
        error = RetryableError(response.status_code, "MalformedResponse", message, request_id)
    error.delivered = True
    return error


def parse_answer(kind: Kind, model: type[M], data: dict[str, Any], response: requests.Response) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(body)" for e in exc.errors()[:5])
        message = f"the answer does not have the documented shape (fields: {fields})"
        args = (response.status_code, "MalformedResponse", message, request_id_of(data, response))
        if kind == "create":
            error: DashScopeError = CreateOutcomeUnknown(*args[:2], message + "; a task may exist", args[3])
        else:
            error = RetryableError(*args)
        error.delivered = True
        raise error from None


def scrub_error(error: DashScopeError, key: str) -> None:
    """Whatever the server echoed, the key does not leave in an error."""
    error.message = scrub(error.message, key)
    error.code = scrub(error.code, key) if error.code else error.code
    error.request_id = scrub(error.request_id, key) if error.request_id else error.request_id
    error.args = (error.status, error.code, error.message, error.request_id)


def json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def request_id_of(data: dict[str, Any] | None, response: requests.Response) -> str | None:
    if data and isinstance(data.get("request_id"), str) and data["request_id"]:
        return str(data["request_id"])
    for header in ("X-DashScope-Request-Id", "X-Request-Id", "EagleEye-TraceId"):
        if response.headers.get(header):
            return str(response.headers[header])
    return None


def _retry_after(response: requests.Response) -> float | None:
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _snippet(response: requests.Response) -> str:
    text = response.content[:2000].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:MAX_ERROR_TEXT] + ("..." if len(text) > MAX_ERROR_TEXT else "")


def scrub(text: str, key: str) -> str:
    return text.replace(key, "***") if key else text
