"""HTTP client of the wan2.7-videoedit API (asynchronous tasks): create, query, cancel, list.

One pooled ``requests.Session`` per client, a (connect, read) timeout on every call, typed errors
(``errors.py``) and bounded retries with full-jitter backoff where retrying is safe:

- query and list (reads): every retryable error is retried, up to ``max_query_attempts`` attempts,
  except ``QuotaExhaustedError`` (a used-up quota does not come back within seconds: it goes to the
  caller at once).
- cancel (a POST; sending it twice turns a success into "not PENDING"): retried only when the
  service provably did not act on it: the connection was never made, 408, 429/Throttling (but not
  an exhausted quota), 503.
- create: never retried here. A failure that proves nothing was created raises ``RetryableError``
  (``ThrottledError`` for throttling); one after which a task may exist raises
  ``CreateOutcomeUnknown``, and the caller reconciles (list/query) before creating again.

Which create failures prove nothing was made: no connection (refused, DNS, connect timeout), 408
(the server gave up reading the request), 429/``Throttling*`` (refused by rate/quota) and 503
(refused for load). 500 ``InternalError`` means the service failed *while* handling the request,
and 502/504 come from a gateway that had already forwarded it (504 is the textbook "may have been
done"); the reference does not say whether a task exists then, so those are ``CreateOutcomeUnknown``
like a read timeout or a connection dropped after sending. Guessing "unknown" wrongly costs a
list call; guessing "safe" wrongly costs a duplicate, billed task, which the reference forbids.

Backoff before retry n (0-based) is ``uniform(0, min(backoff_cap, backoff_base * 2**n))``; a
``Retry-After`` (seconds or HTTP date) raises that to at least the asked wait, and one longer than
``backoff_cap`` ends the retries at once: the error (with ``retry_after``) goes to the caller, whose
schedule (the poller's next run, a QUEUED job) is the better place to wait that long.

A list window longer than the service allows (``MAX_LIST_WINDOW``, 24 h) is never sent:
``list_tasks`` and ``iter_tasks`` raise ``InvalidRequestError`` with code ``ListWindowTooLong``.

The API key is read per call (a callable may rotate it), sent only in the Authorization header,
and never appears in reprs, errors or logs.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ConfigDict
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .answers import (
    Kind,
    http_error,
    json_object,
    malformed,
    parse_answer,
    request_id_of,
    scrub,
    scrub_error,
    transport_error,
)
from .endpoints import CREATE_PATH, LIST_PATH, cancel_path, list_params, normalize_base_url, task_path
from .errors import (
    DashScopeError,
    FinalError,
    InvalidRequestError,
    QuotaExhaustedError,
    RetryableError,
    ThrottledError,
)
from .models import (
    CreateTaskRequest,
    CreateTaskResponse,
    TaskList,
    TaskListItem,
    TaskResponse,
    TaskStatus,
)

__all__ = ["DashScopeClient"]

logger = logging.getLogger("wanedit.dashscope")

_M = TypeVar("_M", bound=BaseModel)

POOL_SIZE = 16  # the poller queries up to 8 tasks at once; headroom for list + create
_USER_AGENT = f"wanedit-dashscope/0.1 python-requests/{requests.__version__}"


class _CancelResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    request_id: str | None = None


class _ApiKey:
    """Holds the key (or the callable giving it); its repr says nothing."""

    __slots__ = ("_source",)

    def __init__(self, source: str | Callable[[], str]) -> None:
        self._source = source

    def get(self) -> str:
        try:
            value = self._source() if callable(self._source) else self._source
        except Exception as exc:  # noqa: BLE001  (any failure of the secret source: nothing was sent)
            raise RetryableError(
                None, "ApiKeyUnavailable", f"the API key could not be obtained ({type(exc).__name__})", None
            ) from None
        # Visible ASCII only: anything else is not a key and could break (or leak through) the header.
        if not isinstance(value, str) or not value or not all("!" <= ch <= "~" for ch in value):
            raise InvalidRequestError(
                None, "InvalidApiKey", "the configured API key is empty or not a header-safe token", None
            )
        return value

    def __repr__(self) -> str:
        return "<redacted>"


class DashScopeClient:
    """A client of one API base URL with one API key. Thread-safe for concurrent queries."""

    def __init__(
        self,
        api_key: str | Callable[[], str],
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 15),
        max_query_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_query_attempts < 1:
            raise ValueError("max_query_attempts must be at least 1")
        self._key = _ApiKey(api_key)
        self.base_url = normalize_base_url(base_url)
        self.timeout = timeout
        self.max_query_attempts = max_query_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not crypto
        self._session = session or _pooled_session()

    def __repr__(self) -> str:
        return f"DashScopeClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> DashScopeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ API

    def create_task(self, request: CreateTaskRequest) -> CreateTaskResponse:
        """Create a task (asynchronous). Never retried: see the module docstring for the outcomes."""
        created = self._attempt(
            "POST", CREATE_PATH, kind="create", model=CreateTaskResponse, body=request.to_body()
        )
        logger.info(
            "dashscope task created",
            extra={"task_id": created.output.task_id, "request_id": created.request_id},
        )
        return created

    def get_task(self, task_id: str) -> TaskResponse:
        """The task's status, and its result (``video_url``, ``usage``) once SUCCEEDED."""
        path = _path_or_error(task_path, task_id)
        return self._with_retries("GET", path, kind="read", model=TaskResponse)

    def cancel_task(self, task_id: str) -> str:
        """Cancel a PENDING task; returns the request id. Not PENDING any more -> FinalError."""
        path = _path_or_error(cancel_path, task_id)
        return self._with_retries("POST", path, kind="cancel", model=_CancelResponse).request_id or ""

    def list_tasks(
        self,
        *,
        start: datetime,
        end: datetime,
        status: TaskStatus | str | None = None,
        model_name: str | None = None,
        page_no: int = 1,
        page_size: int = 10,
    ) -> TaskList:
        """One page of the account's tasks created between ``start`` and ``end`` (aware datetimes, at
        most ``MAX_LIST_WINDOW`` apart)."""
        params = list_params(start, end, status, model_name, page_no, page_size)
        return self._with_retries("GET", LIST_PATH, kind="read", params=params, model=TaskList)

    def iter_tasks(
        self,
        *,
        start: datetime,
        end: datetime,
        status: TaskStatus | str | None = None,
        model_name: str | None = None,
        page_size: int = 100,
        max_pages: int = 50,
    ) -> Iterator[TaskListItem]:
        """Every task of the window, page by page, each once (pages may shift while we read).

        The window is checked here, before anything is sent (``InvalidRequestError``). Bounded: more
        than ``max_pages`` pages raises FinalError ``TooManyPages`` rather than silently returning
        part of the window (a reconciler must not conclude "no task" from it).
        """
        list_params(start, end, status, model_name, 1, page_size)  # now: a generator raises only when read
        return self._pages(start, end, status, model_name, page_size, max_pages)

    def _pages(
        self,
        start: datetime,
        end: datetime,
        status: TaskStatus | str | None,
        model_name: str | None,
        page_size: int,
        max_pages: int,
    ) -> Iterator[TaskListItem]:
        seen: set[str] = set()
        for page_no in range(1, max_pages + 1):
            page = self.list_tasks(
                start=start,
                end=end,
                status=status,
                model_name=model_name,
                page_no=page_no,
                page_size=page_size,
            )
            for item in page.data:
                if item.task_id not in seen:
                    seen.add(item.task_id)
                    yield item
            if not page.data:
                return
            if page.total_page is not None:
                if page_no >= page.total_page:
                    return
            elif len(page.data) < page_size:
                return
        raise FinalError(
            None,
            "TooManyPages",
            f"more than {max_pages} pages of {page_size} tasks in the window; narrow it",
            None,
        )

    # ------------------------------------------------------------------ transport

    def _with_retries(
        self, method: str, path: str, *, kind: Kind, model: type[_M], params: dict[str, str] | None = None
    ) -> _M:
        for attempt in range(self.max_query_attempts):
            try:
                return self._attempt(method, path, kind=kind, model=model, params=params)
            except DashScopeError as error:
                if attempt + 1 >= self.max_query_attempts or not _should_retry(kind, error):
                    raise
                delay = self._backoff(attempt)
                if error.retry_after is not None:
                    if error.retry_after > self.backoff_cap:
                        raise  # asked to wait longer than we may: let the caller reschedule
                    delay = max(delay, error.retry_after)
                logger.info(
                    "dashscope call failed; retrying",
                    extra={
                        "method": method,
                        "path": path,
                        "status": error.status,
                        "code": error.code,
                        "attempt": attempt + 1,
                        "delay": round(delay, 3),
                    },
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        kind: Kind,
        model: type[_M],
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> _M:
        """One request, its answer parsed into ``model``; any failure as a classified, scrubbed error."""
        key = self._key.get()
        try:
            data, response = self._exchange(method, path, kind=kind, key=key, params=params, body=body)
            return parse_answer(kind, model, data, response)
        except DashScopeError as error:
            scrub_error(error, key)
            raise

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        kind: Kind,
        key: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], requests.Response]:
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if kind == "create":
            headers["X-DashScope-Async"] = "enable"
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                data=payload,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,  # never carry the key anywhere else
            )
        except requests.RequestException as exc:
            raise transport_error(exc, kind, key) from None
        elapsed_ms = round((time.monotonic() - started) * 1000)
        data = json_object(response)
        request_id = scrub(request_id_of(data, response) or "", key) or None
        logger.debug(
            "dashscope %s %s -> %s",
            method,
            path,
            response.status_code,
            extra={"status": response.status_code, "request_id": request_id, "elapsed_ms": elapsed_ms},
        )
        if 200 <= response.status_code < 300:
            if data is None:
                raise malformed(kind, response, request_id)
            return data, response
        raise http_error(kind, response, data, key)


# ---------------------------------------------------------------------- helpers


def _pooled_session() -> requests.Session:
    session = requests.Session()
    # No retries below us: the client decides what is safe to send twice.
    adapter = HTTPAdapter(
        pool_connections=4,
        pool_maxsize=POOL_SIZE,
        max_retries=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False  # no ~/.netrc credentials or proxy settings picked up implicitly
    return session


def _path_or_error(build: Callable[[str], str], task_id: str) -> str:
    try:
        return build(task_id)
    except ValueError as exc:
        raise InvalidRequestError(None, "InvalidTaskId", str(exc), None) from None


def _should_retry(kind: Kind, error: DashScopeError) -> bool:
    if not isinstance(error, RetryableError) or isinstance(error, QuotaExhaustedError):
        return False
    if kind == "read":
        return True
    if kind == "cancel":
        return error.delivered is False or isinstance(error, ThrottledError) or error.status in (408, 503)
    return False  # create: never
