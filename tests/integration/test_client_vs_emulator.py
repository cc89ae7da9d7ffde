"""The client's retry / no-retry rules against faults injected in the emulator (real HTTP on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from local.emulator import Emulator, ManualClock
from wanedit.dashscope import (
    CreateOutcomeUnknown,
    CreateTaskRequest,
    DashScopeClient,
    FinalError,
    InvalidRequestError,
    QuotaExhaustedError,
    RetryableError,
    TaskStatus,
    ThrottledError,
)

KEY = "sk-client-vs-emulator-0123456789"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, clock=ManualClock(), task_seconds=60.0, rate_limit=False) as emulator:
        yield emulator


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(emu: Emulator, sleeps: list[float]) -> DashScopeClient:
    return DashScopeClient(KEY, emu.base_url, timeout=(1.0, 1.0), sleep=sleeps.append)


def request() -> CreateTaskRequest:
    return CreateTaskRequest.model_validate(
        {
            "input": {
                "prompt": "claymation",
                "media": [{"type": "video", "url": "http://127.0.0.1:9/clip.mp4"}],
            },
            "parameters": {"resolution": "720P"},
        }
    )


def test_a_create_is_answered_with_a_pending_task(client, emu):
    created = client.create_task(request())

    assert created.output.task_status is TaskStatus.PENDING
    assert client.get_task(created.output.task_id).output.task_id == created.output.task_id
    assert emu.counters["tasks_created"] == 1


@pytest.mark.parametrize("status", [500, 503])
def test_queries_retry_through_server_errors(client, emu, sleeps, status):
    task_id = client.create_task(request()).output.task_id
    emu.faults.add("query", "http", status=status, times=2)

    assert client.get_task(task_id).output.task_id == task_id
    assert len(sleeps) == 2  # two backoffs, then the answer
    assert all(0 <= s <= 8.0 for s in sleeps)


def test_queries_give_up_after_their_bound(client, emu, sleeps):
    task_id = client.create_task(request()).output.task_id
    emu.faults.add("query", "http", status=503, times=10)

    with pytest.raises(RetryableError):
        client.get_task(task_id)
    assert len(sleeps) == 3  # max_query_attempts=4


def test_a_throttled_create_is_not_retried_and_created_nothing(client, emu, sleeps):
    emu.faults.add("create", "http", status=429, code="Throttling.RateQuota")

    with pytest.raises(ThrottledError):
        client.create_task(request())
    assert emu.counters["tasks_created"] == 0 and sleeps == []


def test_a_create_dropped_after_the_task_was_made_is_reported_as_unknown(client, emu, sleeps):
    emu.faults.add("create", "drop_after_create")

    with pytest.raises(CreateOutcomeUnknown):
        client.create_task(request())
    assert emu.counters["tasks_created"] == 1  # it exists: the caller must reconcile, not resubmit
    assert sleeps == []
    now = datetime.fromtimestamp(emu.now(), UTC)  # the clock the emulator and its tests share
    window = client.list_tasks(start=now - timedelta(minutes=5), end=now + timedelta(minutes=1))
    assert window.total == 1


def test_a_create_answered_too_late_is_reported_as_unknown(client, emu):
    emu.faults.add("create", "delay", seconds=2.0)

    with pytest.raises(CreateOutcomeUnknown):
        client.create_task(request())
    assert emu.counters["tasks_created"] == 1


def test_a_bad_parameter_is_final(emu, sleeps):
    client = DashScopeClient(KEY, emu.base_url, sleep=sleeps.append)
    body = request().model_dump(mode="json", exclude_none=True)
    body["model"] = "wan2.1-nope"

    with pytest.raises(FinalError) as raised:
        client.create_task(CreateTaskRequest.model_validate(body))
    assert raised.value.code == "InvalidParameter" and raised.value.status == 400
    assert sleeps == [] and emu.counters["tasks_created"] == 0


def test_a_wrong_key_is_final_and_never_echoed(emu, sleeps):
    client = DashScopeClient("sk-wrong-key-abcdefghijklmnop", emu.base_url, sleep=sleeps.append)

    with pytest.raises(FinalError) as raised:
        client.get_task("00000000-0000-0000-0000-000000000000")
    assert raised.value.code == "InvalidApiKey" and raised.value.status == 401
    assert "sk-wrong-key" not in f"{raised.value!s}{raised.value!r}{client!r}"
    assert sleeps == []


def test_an_exhausted_quota_is_handed_over_at_once(client, emu, sleeps):
    emu.faults.add_spec("create=429:Throttling.AllocationQuota")
    with pytest.raises(QuotaExhaustedError) as raised:
        client.create_task(request())
    assert raised.value.code == "Throttling.AllocationQuota" and raised.value.status == 429
    assert "quota" in raised.value.message.lower()
    task_id = client.create_task(request()).output.task_id
    emu.faults.add_spec("query=429:Throttling.AllocationQuotax5")
    with pytest.raises(QuotaExhaustedError):
        client.get_task(task_id)
    assert sleeps == [] and emu.counters["queries"] == 1  # no spinning on it


def test_a_list_window_over_24_hours_never_leaves_the_client(client, emu):
    now = datetime.fromtimestamp(emu.now(), UTC)
    with pytest.raises(InvalidRequestError) as raised:
        client.list_tasks(start=now - timedelta(hours=25), end=now)
    assert raised.value.code == "ListWindowTooLong"
    with pytest.raises(InvalidRequestError):
        client.iter_tasks(start=now - timedelta(hours=24, seconds=1), end=now)
    assert emu.counters["lists"] == 0
    assert client.list_tasks(start=now - timedelta(hours=24), end=now).total == 0  # 24 h: sent, taken
    assert emu.counters["lists"] == 1
