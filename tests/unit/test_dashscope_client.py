"""DashScopeClient over real sockets: a scripted loopback HTTP server, no real network, no real sleep."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.unit.test_dashscope_models import (
    CREATE_SUCCESS,
    CURL_INSTRUCTION_ONLY,
    CURL_WITH_REFERENCE_IMAGE,
    QUERY_EXPIRED,
    QUERY_FAILED,
    QUERY_SUCCEEDED,
    SDK_QUERY_SR_STRING,
    parse_curl,
    request_from_curl_body,
)
from wanedit.dashscope import (
    MAX_LIST_WINDOW,
    CreateOutcomeUnknown,
    CreateTaskRequest,
    DashScopeClient,
    DashScopeError,
    FinalError,
    InvalidRequestError,
    QuotaExhaustedError,
    RetryableError,
    TaskStatus,
    ThrottledError,
    endpoint_for,
)

KEY = "sk-SECRET-do-not-leak-0123456789abcdef"
READ_TIMEOUT = 1.0  # real seconds on loopback: long enough for a loaded CI box, short for the stalls
CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
TASK_ID = "0385dc79-5ff8-4d82-bcb6-xxxxxx"


# --------------------------------------------------------------------------- scripted server


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes as is
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "reply"  # reply | drop (close after reading the request) | stall (past the read timeout)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                server.seen.append(
                    Seen(
                        self.command,
                        parts.path,
                        parse_qs(parts.query),
                        dict(self.headers.items()),
                        body,
                        self.client_address[1],
                    )
                )
                reply = server.replies.popleft() if server.replies else Reply(599, {"code": "NoScript"})
                if reply.action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.action == "stall":
                    server.release.wait(READ_TIMEOUT * 4)
                    self.close_connection = True
                    return
                if isinstance(reply.body, dict):
                    payload = json.dumps(reply.body).encode()
                    ctype = "application/json"
                elif isinstance(reply.body, str):
                    payload = reply.body.encode()
                    ctype = "text/html"
                else:
                    payload = reply.body or b""
                    ctype = "application/octet-stream"
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.pop("Content-Type", ctype))
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _handle
            do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def make_client(base_url: str, sleeps: SleepRecorder, **kw: Any) -> DashScopeClient:
    kw.setdefault("timeout", (1.0, READ_TIMEOUT))
    kw.setdefault("rng", random.Random(7))
    return DashScopeClient(kw.pop("api_key", KEY), base_url, sleep=sleeps, **kw)


@pytest.fixture
def client(server: ScriptedServer, sleeps: SleepRecorder) -> Iterator[DashScopeClient]:
    c = make_client(server.url, sleeps)
    yield c
    c.close()


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}"


def ok(text: str) -> Reply:
    return Reply(200, json.loads(text))


def err(status: int, code: str | None, message: str = "boom", **headers: str) -> Reply:
    body: dict[str, Any] = {"request_id": f"rq-{status}", "message": message}
    if code is not None:
        body["code"] = code
    return Reply(status, body, dict(headers))


def reference_request(curl: str = CURL_INSTRUCTION_ONLY) -> CreateTaskRequest:
    return request_from_curl_body(json.loads(parse_curl(curl)[2]))


# --------------------------------------------------------------------------- endpoints & requests


@pytest.mark.parametrize("curl", [CURL_INSTRUCTION_ONLY, CURL_WITH_REFERENCE_IMAGE])
def test_create_sends_what_the_reference_curl_sends(
    server: ScriptedServer, client: DashScopeClient, curl: str
) -> None:
    url, headers, raw = parse_curl(curl)
    server.script(ok(CREATE_SUCCESS))
    created = client.create_task(reference_request(curl))
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.path == urlsplit(url).path == CREATE_PATH
    assert json.loads(seen.body) == json.loads(raw)
    assert seen.headers["X-DashScope-Async"] == headers["X-DashScope-Async"] == "enable"
    assert seen.headers["Content-Type"] == headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert created.output.task_id == TASK_ID
    assert created.output.task_status is TaskStatus.PENDING
    assert created.request_id == "4909100c-7b5a-9f92-bfe5-xxxxxx"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (QUERY_SUCCEEDED, TaskStatus.SUCCEEDED),
        (QUERY_FAILED, TaskStatus.FAILED),
        (QUERY_EXPIRED, TaskStatus.UNKNOWN),
        (SDK_QUERY_SR_STRING, TaskStatus.SUCCEEDED),
    ],
)
def test_get_task(server: ScriptedServer, client: DashScopeClient, text: str, status: TaskStatus) -> None:
    server.script(ok(text))
    response = client.get_task(TASK_ID)
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.body) == ("GET", f"/api/v1/tasks/{TASK_ID}", b"")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert response.output.task_status is status


def test_cancel_task(server: ScriptedServer, client: DashScopeClient) -> None:
    server.script(Reply(200, {"request_id": "cancel-rq"}))
    assert client.cancel_task(TASK_ID) == "cancel-rq"
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", f"/api/v1/tasks/{TASK_ID}/cancel")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"


def test_list_tasks_sends_utc8_compact_times(server: ScriptedServer, client: DashScopeClient) -> None:
    server.script(Reply(200, {"request_id": "r", "data": [], "page_no": 2, "page_size": 5, "total": 0}))
    page = client.list_tasks(
        start=datetime(2026, 4, 2, 16, 0, 0, tzinfo=UTC),
        end=datetime(2026, 4, 2, 17, 30, 59, tzinfo=UTC),
        status=TaskStatus.SUCCEEDED,
        model_name="wan2.7-videoedit",
        page_no=2,
        page_size=5,
    )
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("GET", "/api/v1/tasks")
    assert seen.query == {
        "start_time": ["20260403000000"],
        "end_time": ["20260403013059"],
        "status": ["SUCCEEDED"],
        "model_name": ["wan2.7-videoedit"],
        "page_no": ["2"],
        "page_size": ["5"],
    }
    assert page.page_no == 2 and page.data == []


def test_list_tasks_refuses_naive_or_reversed_times(server: ScriptedServer, client: DashScopeClient) -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidRequestError):
        client.list_tasks(start=datetime(2026, 4, 2), end=datetime(2026, 4, 3))
    with pytest.raises(InvalidRequestError):
        client.list_tasks(start=now, end=now - timedelta(seconds=1))
    with pytest.raises(InvalidRequestError):
        client.list_tasks(start=now, end=now, page_no=0)
    assert server.seen == []


def test_list_window_of_24_hours_is_sent_and_a_longer_one_never(
    server: ScriptedServer, client: DashScopeClient
) -> None:
    end = datetime(2026, 4, 3, 12, 0, 0, tzinfo=UTC)
    assert timedelta(hours=24) == MAX_LIST_WINDOW
    server.script(Reply(200, {"request_id": "r", "data": [], "total": 0}))
    client.list_tasks(start=end - MAX_LIST_WINDOW, end=end)  # exactly 24 h: sent
    (seen,) = server.seen
    assert seen.query["start_time"] == ["20260402200000"] and seen.query["end_time"] == ["20260403200000"]
    for too_long in (MAX_LIST_WINDOW + timedelta(seconds=1), timedelta(hours=25)):
        with pytest.raises(InvalidRequestError) as info:
            client.list_tasks(start=end - too_long, end=end)
        assert info.value.code == "ListWindowTooLong" and info.value.status is None
        assert not info.value.retryable
        # iter_tasks refuses at the call, before anything is read or sent
        with pytest.raises(InvalidRequestError) as info:
            client.iter_tasks(start=end - too_long, end=end)
        assert info.value.code == "ListWindowTooLong"
    assert len(server.seen) == 1


def page(task_ids: list[str], page_no: int, total_page: int | None) -> Reply:
    body: dict[str, Any] = {
        "request_id": f"p{page_no}",
        "data": [{"task_id": t, "status": "RUNNING"} for t in task_ids],
        "page_no": page_no,
        "page_size": 2,
    }
    if total_page is not None:
        body["total_page"] = total_page
    return Reply(200, body)


def test_iter_tasks_pages_through_and_dedupes(server: ScriptedServer, client: DashScopeClient) -> None:
    # A task created mid-listing shifts "t2" onto page 2 as well: it is yielded once.
    server.script(page(["t1", "t2"], 1, 3), page(["t2", "t3"], 2, 3), page(["t4"], 3, 3))
    now = datetime.now(UTC)
    items = list(client.iter_tasks(start=now - timedelta(hours=1), end=now, page_size=2))
    assert [i.task_id for i in items] == ["t1", "t2", "t3", "t4"]
    assert [s.query["page_no"] for s in server.seen] == [["1"], ["2"], ["3"]]


def test_iter_tasks_without_total_page_stops_on_a_short_page(
    server: ScriptedServer, client: DashScopeClient
) -> None:
    server.script(page(["t1", "t2"], 1, None), page(["t3"], 2, None))
    now = datetime.now(UTC)
    assert len(list(client.iter_tasks(start=now, end=now, page_size=2))) == 3
    assert len(server.seen) == 2


def test_iter_tasks_is_bounded(server: ScriptedServer, client: DashScopeClient) -> None:
    server.script(*(page([f"a{n}", f"b{n}"], n, 99) for n in range(1, 4)))
    now = datetime.now(UTC)
    with pytest.raises(FinalError) as info:
        list(client.iter_tasks(start=now, end=now, page_size=2, max_pages=3))
    assert info.value.code == "TooManyPages"
    assert len(server.seen) == 3


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "..", "a.b", "a b", "a?b", "a#b", "%2e%2e", "x" * 129])
def test_task_ids_must_be_path_safe(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder, bad: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.get_task(bad)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidRequestError):
        client.cancel_task(bad)
    assert server.seen == [] and sleeps.calls == []


def test_connections_are_pooled(server: ScriptedServer, client: DashScopeClient) -> None:
    server.script(ok(QUERY_EXPIRED), ok(QUERY_EXPIRED), ok(QUERY_EXPIRED))
    for _ in range(3):
        client.get_task(TASK_ID)
    assert len({s.client_port for s in server.seen}) == 1


class RecordingSession(requests.Session):
    def __init__(self, raise_exc: Exception | None = None) -> None:
        super().__init__()
        self.kwargs: list[dict[str, Any]] = []
        self.raise_exc = raise_exc

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        self.kwargs.append({"method": method, "url": url, **kwargs})
        if self.raise_exc is not None:
            raise self.raise_exc
        return super().request(method, url, *args, **kwargs)


def test_every_call_has_a_timeout_and_no_redirects(server: ScriptedServer, sleeps: SleepRecorder) -> None:
    session = RecordingSession()
    client = make_client(server.url, sleeps, session=session, timeout=(2.0, 9.0))
    now = datetime.now(UTC)
    server.script(
        ok(CREATE_SUCCESS), ok(QUERY_EXPIRED), Reply(200, {"request_id": "c"}), page([], 1, 0), page([], 1, 0)
    )
    client.create_task(reference_request())
    client.get_task(TASK_ID)
    client.cancel_task(TASK_ID)
    client.list_tasks(start=now, end=now)
    list(client.iter_tasks(start=now, end=now))
    assert len(session.kwargs) == 5
    for call in session.kwargs:
        assert call["timeout"] == (2.0, 9.0)
        assert call["allow_redirects"] is False


def test_redirects_are_not_followed(server: ScriptedServer, client: DashScopeClient) -> None:
    server.script(Reply(302, "", {"Location": "http://127.0.0.2:1/steal"}))
    with pytest.raises(FinalError):
        client.get_task(TASK_ID)
    assert len(server.seen) == 1


def test_default_session_is_pooled_without_hidden_retries() -> None:
    client = DashScopeClient(KEY, "https://dashscope-intl.aliyuncs.com")
    adapter = client._session.get_adapter("https://dashscope-intl.aliyuncs.com/api/v1/tasks")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter._pool_maxsize >= 8  # type: ignore[attr-defined]
    assert adapter.max_retries.total == 0


# --------------------------------------------------------------------------- endpoint_for


@pytest.mark.parametrize(
    ("region", "workspace", "expected"),
    [
        ("singapore", "ws-1a2B3c", "https://ws-1a2B3c.ap-southeast-1.maas.aliyuncs.com"),
        ("singapore", "llm-abc123", "https://llm-abc123.ap-southeast-1.maas.aliyuncs.com"),
        ("singapore", None, "https://dashscope-intl.aliyuncs.com"),  # the shared Singapore domain
        ("singapore", "", "https://dashscope-intl.aliyuncs.com"),
        ("intl", None, "https://dashscope-intl.aliyuncs.com"),
        ("intl", "ignored", "https://dashscope-intl.aliyuncs.com"),
        ("beijing", None, "https://dashscope.aliyuncs.com"),
    ],
)
def test_endpoint_for_regions(region: Any, workspace: str | None, expected: str) -> None:
    assert endpoint_for(region, workspace, None) == expected


@pytest.mark.parametrize(
    "workspace",
    ["evil.com", "a/b", "a.b", "ws_1", "-ws", "ws-", "ws 1", "ws@x", "x" * 64, "ws\n", "ws%2F", "ws:80"],
)
def test_endpoint_for_refuses_bad_workspace_ids(workspace: str) -> None:
    with pytest.raises(ValueError, match="workspace id"):
        endpoint_for("singapore", workspace, None)


def test_endpoint_for_unknown_region() -> None:
    with pytest.raises(ValueError, match="region"):
        endpoint_for("frankfurt", None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:5555", "http://127.0.0.1:5555"),
        ("http://127.0.0.1:5555/", "http://127.0.0.1:5555"),
        ("http://127.0.0.1:5555/api/v1", "http://127.0.0.1:5555"),
        ("https://proxy.example/dashscope/api/v1/", "https://proxy.example/dashscope"),
    ],
)
def test_explicit_base_url_wins(base_url: str, expected: str) -> None:
    for region in ("singapore", "intl", "beijing"):
        assert endpoint_for(region, "ws-1", base_url) == expected


@pytest.mark.parametrize(
    "base_url", ["ftp://x", "127.0.0.1:5555", "http://", "https://user:pw@host", "https://h/?q=1"]
)
def test_bad_base_urls(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        endpoint_for("intl", None, base_url)


def test_client_talks_to_the_path_prefix(server: ScriptedServer, sleeps: SleepRecorder) -> None:
    client = make_client(server.url + "/api/v1/", sleeps)
    server.script(ok(QUERY_EXPIRED))
    client.get_task(TASK_ID)
    assert server.seen[0].path == f"/api/v1/tasks/{TASK_ID}"


# --------------------------------------------------------------------------- classification

HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center>502 Bad Gateway</center></body></html>"
)

READ_TABLE = [
    (err(400, "InvalidParameter"), FinalError),
    (err(400, "InvalidParameter.DataInspection"), FinalError),
    (err(401, "InvalidApiKey", "Invalid API-key provided."), FinalError),
    (err(403, "AccessDenied"), FinalError),
    (err(403, "AccessDenied.Unpurchased"), FinalError),
    (err(400, "Arrearage"), FinalError),
    (err(400, "DataInspectionFailed"), FinalError),
    (err(404, "ModelNotFound"), FinalError),
    (err(400, "UnsupportedOperation"), FinalError),
    (err(404, "NotFound"), FinalError),
    (err(418, None), FinalError),
    (err(408, "RequestTimeOut"), RetryableError),
    (err(429, "Throttling"), ThrottledError),
    (err(429, "Throttling.RateQuota"), ThrottledError),
    (err(429, "Throttling.AllocationQuota"), QuotaExhaustedError),
    (err(400, "Throttling.User"), ThrottledError),
    (err(429, None), ThrottledError),
    (err(500, "InternalError"), RetryableError),
    (err(500, "InternalError.Algo"), RetryableError),
    (err(502, "BadGateway"), RetryableError),
    (err(503, "ServiceUnavailable"), RetryableError),
    (err(504, "RequestTimeOut"), RetryableError),
    (Reply(502, HTML_502), RetryableError),
    (Reply(503, b""), RetryableError),
    (Reply(500, "not json"), RetryableError),
]


def table_id(entry: tuple[Reply, type]) -> str:
    reply, cls = entry
    code = reply.body.get("code") if isinstance(reply.body, dict) else "non-json"
    return f"{reply.status}-{code}-{cls.__name__}"


@pytest.mark.parametrize(("reply", "expected"), READ_TABLE, ids=[table_id(e) for e in READ_TABLE])
def test_read_classification(
    server: ScriptedServer, sleeps: SleepRecorder, reply: Reply, expected: type[DashScopeError]
) -> None:
    client = make_client(server.url, sleeps, max_query_attempts=1)
    server.script(reply)
    with pytest.raises(DashScopeError) as info:
        client.get_task(TASK_ID)
    error = info.value
    assert type(error) is expected
    assert error.status == reply.status
    assert error.retryable is issubclass(expected, RetryableError)
    assert error.delivered is True
    if isinstance(reply.body, dict):
        assert error.code == reply.body.get("code")
        assert error.message == reply.body["message"]
        assert error.request_id == reply.body["request_id"]
    else:
        assert error.code is None and error.request_id is None
        assert str(reply.status) in error.message


def test_non_json_gateway_error_keeps_a_snippet(server: ScriptedServer, sleeps: SleepRecorder) -> None:
    client = make_client(server.url, sleeps, max_query_attempts=1)
    server.script(Reply(502, HTML_502))
    with pytest.raises(RetryableError) as info:
        client.get_task(TASK_ID)
    assert "502 Bad Gateway" in info.value.message
    assert len(info.value.message) < 400


def test_request_id_from_headers_when_the_body_has_none(
    server: ScriptedServer, sleeps: SleepRecorder
) -> None:
    client = make_client(server.url, sleeps, max_query_attempts=1)
    server.script(Reply(503, "busy", {"X-Request-Id": "hdr-rq"}))
    with pytest.raises(RetryableError) as info:
        client.get_task(TASK_ID)
    assert info.value.request_id == "hdr-rq"


CREATE_TABLE = [
    (err(400, "InvalidParameter"), FinalError),
    (err(401, "InvalidApiKey"), FinalError),
    (err(403, "AccessDenied", "current user api does not support synchronous calls"), FinalError),
    (err(400, "Arrearage"), FinalError),
    (err(400, "DataInspectionFailed"), FinalError),
    (err(404, "ModelNotFound"), FinalError),
    (err(408, "RequestTimeOut"), RetryableError),  # the server gave up reading: nothing made
    (err(429, "Throttling"), ThrottledError),
    (err(429, "Throttling.RateQuota"), ThrottledError),
    (err(429, "Throttling.AllocationQuota"), QuotaExhaustedError),
    (err(503, "ServiceUnavailable"), RetryableError),  # refused for load: nothing made
    (err(500, "InternalError"), CreateOutcomeUnknown),  # failed while handling: unknown
    (err(502, "BadGateway"), CreateOutcomeUnknown),  # the gateway had forwarded it
    (err(504, "RequestTimeOut"), CreateOutcomeUnknown),  # the textbook "maybe done"
    (Reply(502, HTML_502), CreateOutcomeUnknown),
    (Reply(200, "<html>ok?</html>"), CreateOutcomeUnknown),  # answered, but no task id to be seen
    (Reply(200, {"request_id": "r", "output": {"task_status": "PENDING"}}), CreateOutcomeUnknown),
    (Reply(200, {"request_id": "r"}), CreateOutcomeUnknown),
]


@pytest.mark.parametrize(("reply", "expected"), CREATE_TABLE, ids=[table_id(e) for e in CREATE_TABLE])
def test_create_classification_and_never_retried(
    server: ScriptedServer,
    client: DashScopeClient,
    sleeps: SleepRecorder,
    reply: Reply,
    expected: type[DashScopeError],
) -> None:
    server.script(reply, ok(CREATE_SUCCESS), ok(CREATE_SUCCESS))
    with pytest.raises(DashScopeError) as info:
        client.create_task(reference_request())
    assert type(info.value) is expected
    assert len(server.seen) == 1
    assert sleeps.calls == []
    if expected is CreateOutcomeUnknown:
        assert not info.value.retryable


def test_create_read_timeout_is_outcome_unknown(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(Reply(action="stall"), ok(CREATE_SUCCESS))
    with pytest.raises(CreateOutcomeUnknown) as info:
        client.create_task(reference_request())
    assert info.value.code == "ReadTimeout"
    assert info.value.delivered is None
    assert len(server.seen) == 1 and sleeps.calls == []


def test_create_dropped_after_sending_is_outcome_unknown(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(Reply(action="drop"), ok(CREATE_SUCCESS))
    with pytest.raises(CreateOutcomeUnknown) as info:
        client.create_task(reference_request())
    assert info.value.code == "ConnectionLost"
    assert len(server.seen) == 1 and sleeps.calls == []


def test_create_connection_refused_is_retryable_and_nothing_was_sent(
    server: ScriptedServer, sleeps: SleepRecorder
) -> None:
    client = make_client(closed_port_url(), sleeps)
    with pytest.raises(RetryableError) as info:
        client.create_task(reference_request())
    assert not isinstance(info.value, CreateOutcomeUnknown)
    assert info.value.code == "ConnectionFailed"
    assert info.value.delivered is False
    assert server.seen == [] and sleeps.calls == []


def test_create_connect_timeout_is_retryable(sleeps: SleepRecorder) -> None:
    session = RecordingSession(requests.exceptions.ConnectTimeout("connect timed out"))
    client = make_client("https://dashscope-intl.aliyuncs.com", sleeps, session=session)
    with pytest.raises(RetryableError) as info:
        client.create_task(reference_request())
    assert info.value.code == "ConnectTimeout" and info.value.delivered is False
    assert len(session.kwargs) == 1


def test_unknown_outcome_is_not_a_retryable_error() -> None:
    assert not issubclass(CreateOutcomeUnknown, RetryableError)
    assert not issubclass(CreateOutcomeUnknown, FinalError)
    assert issubclass(ThrottledError, RetryableError)


# --------------------------------------------------------------------------- retries


def test_query_retries_with_full_jitter_then_succeeds(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(err(503, "ServiceUnavailable"), err(500, "InternalError"), err(429, "Throttling"))
    server.script(ok(QUERY_SUCCEEDED))
    response = client.get_task(TASK_ID)
    assert response.output.task_status is TaskStatus.SUCCEEDED
    assert len(server.seen) == 4
    replica = random.Random(7)
    assert sleeps.calls == [replica.uniform(0, min(8.0, 0.5 * 2**n)) for n in range(3)]


def test_query_gives_up_after_max_attempts(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(*(err(500, "InternalError") for _ in range(6)))
    with pytest.raises(RetryableError):
        client.get_task(TASK_ID)
    assert len(server.seen) == 4
    assert len(sleeps.calls) == 3


def test_backoff_bounds_and_cap(server: ScriptedServer, sleeps: SleepRecorder) -> None:
    client = make_client(
        server.url, sleeps, max_query_attempts=8, backoff_base=1.0, backoff_cap=3.0, rng=random.Random(1)
    )
    server.script(*(err(503, "ServiceUnavailable") for _ in range(8)))
    with pytest.raises(RetryableError):
        client.get_task(TASK_ID)
    assert len(sleeps.calls) == 7
    for n, delay in enumerate(sleeps.calls):
        assert 0 <= delay <= min(3.0, 1.0 * 2**n)


def test_jitter_spreads(sleeps: SleepRecorder) -> None:
    client = DashScopeClient(
        KEY, "http://127.0.0.1:9", rng=random.Random(3), backoff_base=1.0, backoff_cap=8.0
    )
    delays = [client._backoff(3) for _ in range(200)]
    assert 0 <= min(delays) < 1.0 and 7.0 < max(delays) <= 8.0


def test_final_errors_are_not_retried(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(err(401, "InvalidApiKey"), ok(QUERY_SUCCEEDED))
    with pytest.raises(FinalError):
        client.get_task(TASK_ID)
    assert len(server.seen) == 1 and sleeps.calls == []


@pytest.mark.parametrize("action", ["stall", "drop"])
def test_query_retries_timeouts_and_drops(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder, action: str
) -> None:
    server.script(Reply(action=action), ok(QUERY_SUCCEEDED))
    assert client.get_task(TASK_ID).output.task_status is TaskStatus.SUCCEEDED
    assert len(server.seen) == 2 and len(sleeps.calls) == 1


def test_query_connection_refused_retries_then_raises(sleeps: SleepRecorder) -> None:
    client = make_client(closed_port_url(), sleeps)
    with pytest.raises(RetryableError) as info:
        client.get_task(TASK_ID)
    assert info.value.code == "ConnectionFailed"
    assert len(sleeps.calls) == 3


def test_malformed_query_answer_is_retried(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(Reply(200, "<html/>"), Reply(200, {"request_id": "r"}), ok(QUERY_FAILED))
    assert client.get_task(TASK_ID).output.task_status is TaskStatus.FAILED
    assert len(sleeps.calls) == 2


def test_list_is_retried(server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder) -> None:
    server.script(err(502, "BadGateway"), page(["t1"], 1, 1))
    now = datetime.now(UTC)
    assert [t.task_id for t in client.list_tasks(start=now, end=now).data] == ["t1"]
    assert len(sleeps.calls) == 1


def test_retry_after_is_honoured(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(err(429, "Throttling", **{"Retry-After": "3"}), ok(QUERY_SUCCEEDED))
    client.get_task(TASK_ID)
    assert len(sleeps.calls) == 1
    assert 3.0 <= sleeps.calls[0] <= 8.0


def test_retry_after_http_date(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    server.script(err(503, "ServiceUnavailable", **{"Retry-After": when}), ok(QUERY_SUCCEEDED))
    client.get_task(TASK_ID)
    assert 3.0 <= sleeps.calls[0] <= 5.0


def test_retry_after_beyond_the_cap_is_handed_to_the_caller(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(err(429, "Throttling", **{"Retry-After": "60"}), ok(QUERY_SUCCEEDED))
    with pytest.raises(ThrottledError) as info:
        client.get_task(TASK_ID)
    assert info.value.retry_after == 60.0
    assert len(server.seen) == 1 and sleeps.calls == []


def test_garbage_retry_after_is_ignored(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    server.script(err(503, "ServiceUnavailable", **{"Retry-After": "soon"}), ok(QUERY_SUCCEEDED))
    client.get_task(TASK_ID)
    assert 0 <= sleeps.calls[0] <= 0.5


def test_an_exhausted_quota_is_never_retried(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder
) -> None:
    """A used-up quota does not come back in seconds: every call hands it to the caller at once."""
    quota = err(
        429, "Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit."
    )
    server.script(quota, quota, quota, ok(QUERY_SUCCEEDED))
    now = datetime.now(UTC)
    with pytest.raises(QuotaExhaustedError) as info:
        client.get_task(TASK_ID)
    assert isinstance(info.value, ThrottledError) and info.value.status == 429
    with pytest.raises(QuotaExhaustedError):
        client.list_tasks(start=now, end=now)
    with pytest.raises(QuotaExhaustedError):
        client.cancel_task(TASK_ID)
    assert len(server.seen) == 3 and sleeps.calls == []


# cancel: retried only when the service provably did not act on it.


@pytest.mark.parametrize(
    "reply", [err(503, "ServiceUnavailable"), err(429, "Throttling"), err(408, "Timeout")]
)
def test_cancel_retries_refusals(
    server: ScriptedServer, client: DashScopeClient, sleeps: SleepRecorder, reply: Reply
) -> None:
    server.script(reply, Reply(200, {"request_id": "ok"}))
    assert client.cancel_task(TASK_ID) == "ok"
    assert len(server.seen) == 2 and len(sleeps.calls) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (err(500, "InternalError"), RetryableError),
        (err(502, "BadGateway"), RetryableError),
        (Reply(action="drop"), RetryableError),
        (Reply(action="stall"), RetryableError),
        (err(400, "UnsupportedOperation", "Failed to cancel the task"), FinalError),
    ],
)
def test_cancel_does_not_resend_when_it_may_have_acted(
    server: ScriptedServer,
    client: DashScopeClient,
    sleeps: SleepRecorder,
    reply: Reply,
    expected: type[DashScopeError],
) -> None:
    server.script(reply, Reply(200, {"request_id": "ok"}))
    with pytest.raises(expected):
        client.cancel_task(TASK_ID)
    assert len(server.seen) == 1 and sleeps.calls == []


def test_cancel_connection_refused_is_retried(sleeps: SleepRecorder) -> None:
    client = make_client(closed_port_url(), sleeps)
    with pytest.raises(RetryableError):
        client.cancel_task(TASK_ID)
    assert len(sleeps.calls) == 3


# --------------------------------------------------------------------------- the API key


def test_key_callable_is_asked_on_every_call(server: ScriptedServer, sleeps: SleepRecorder) -> None:
    keys = iter(["sk-one", "sk-two"])
    client = make_client(server.url, sleeps, api_key=lambda: next(keys))
    server.script(ok(QUERY_EXPIRED), ok(QUERY_EXPIRED))
    client.get_task(TASK_ID)
    client.get_task(TASK_ID)
    assert [s.headers["Authorization"] for s in server.seen] == ["Bearer sk-one", "Bearer sk-two"]


def test_failing_key_source_is_retryable_and_sends_nothing(
    server: ScriptedServer, sleeps: SleepRecorder
) -> None:
    def broken() -> str:
        raise RuntimeError(f"secret store down; last value {KEY}")

    client = make_client(server.url, sleeps, api_key=broken, max_query_attempts=1)
    with pytest.raises(RetryableError) as info:
        client.create_task(reference_request())
    assert info.value.code == "ApiKeyUnavailable"
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert server.seen == []


@pytest.mark.parametrize("bad", ["", "sk-a\r\nX-Evil: 1", "sk a", "sk-ü"])
def test_unusable_keys_are_refused_before_sending(
    server: ScriptedServer, sleeps: SleepRecorder, bad: str
) -> None:
    client = make_client(server.url, sleeps, api_key=bad)
    with pytest.raises(InvalidRequestError) as info:
        client.get_task(TASK_ID)
    assert info.value.code == "InvalidApiKey"
    assert server.seen == [] and sleeps.calls == []


# --------------------------------------------------------------------------- secrecy

SECRET_SCENARIOS: list[tuple[str, list[Reply], str]] = [
    ("401-echoing-the-key", [err(401, "InvalidApiKey", f"Invalid API-key provided: {KEY}")], "get"),
    ("400-echoing-the-key", [err(400, "InvalidParameter", f"bad header Bearer {KEY}")], "create"),
    ("429", [err(429, "Throttling")] * 4, "get"),
    ("500-create", [err(500, "InternalError")], "create"),
    ("html-502-echo", [Reply(502, f"<html>{KEY}</html>")] * 4, "get"),
    ("html-502-create", [Reply(502, f"<html>{KEY}</html>")], "create"),
    ("stall-create", [Reply(action="stall")], "create"),
    ("drop-create", [Reply(action="drop")], "create"),
    ("stall-get", [Reply(action="stall")] * 4, "get"),
    ("drop-cancel", [Reply(action="drop")], "cancel"),
    ("malformed-create", [Reply(200, f"not json {KEY}")], "create"),
    ("malformed-get", [Reply(200, {"request_id": KEY})] * 4, "get"),
    ("list-403", [err(403, "AccessDenied", KEY)], "list"),
]


def call(client: DashScopeClient, what: str) -> None:
    now = datetime.now(UTC)
    if what == "create":
        client.create_task(reference_request())
    elif what == "get":
        client.get_task(TASK_ID)
    elif what == "cancel":
        client.cancel_task(TASK_ID)
    else:
        client.list_tasks(start=now, end=now)


def assert_no_key(error: BaseException, client: DashScopeClient, caplog: pytest.LogCaptureFixture) -> None:
    texts = [str(error), repr(error), repr(error.args), repr(client), str(vars(client)), caplog.text]
    texts += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    for text in texts:
        assert KEY not in text


@pytest.mark.parametrize(("name", "replies", "what"), SECRET_SCENARIOS, ids=[s[0] for s in SECRET_SCENARIOS])
def test_the_key_never_leaks(
    server: ScriptedServer,
    sleeps: SleepRecorder,
    caplog: pytest.LogCaptureFixture,
    name: str,
    replies: list[Reply],
    what: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(server.url, sleeps)
    server.script(*replies)
    with pytest.raises(DashScopeError) as info:
        call(client, what)
    assert server.seen, "the scenario reached the server"
    assert all(s.headers["Authorization"] == f"Bearer {KEY}" for s in server.seen)
    assert_no_key(info.value, client, caplog)


@pytest.mark.parametrize("what", ["create", "get", "cancel", "list"])
def test_the_key_never_leaks_on_connection_refused(
    sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(closed_port_url(), sleeps)
    with pytest.raises(RetryableError) as info:
        call(client, what)
    assert_no_key(info.value, client, caplog)


def test_the_key_never_leaks_on_success_paths(
    server: ScriptedServer, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(server.url, sleeps, api_key=lambda: KEY)
    server.script(ok(CREATE_SUCCESS), ok(QUERY_SUCCEEDED))
    created = client.create_task(reference_request())
    got = client.get_task(created.output.task_id)
    for text in (repr(client), repr(created), repr(got), caplog.text, repr(client._key)):
        assert KEY not in text


def test_errors_pickle_and_keep_their_fields() -> None:
    import pickle

    error = ThrottledError(429, "Throttling", "slow down", "rq", retry_after=2.0)
    again = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)
    assert type(again) is ThrottledError
    assert (again.status, again.code, again.message, again.request_id, again.retry_after) == (
        429,
        "Throttling",
        "slow down",
        "rq",
        2.0,
    )
    assert str(again) == "slow down (status=429, code=Throttling, request_id=rq)"
