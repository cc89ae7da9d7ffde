# mypy: disable-error-code="attr-defined"
# (the dashscope SDK adds VideoSynthesis.list at run time; its stubs do not know it)
"""The official `dashscope` SDK (2.0.2) against the emulator: list, cancel, fetch and wait, per account.

Two keys of one account see each other's tasks and share its running cap; a key of another account
sees none of them. List entries parse with the documented types (the Java SDK's AsyncTaskInfo: the
times epoch-millisecond Longs), and the service's refusals come back as the SDK reports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from http import HTTPStatus
from typing import Any

import dashscope
import pytest
import requests
from dashscope import VideoSynthesis

from local.emulator import Emulator, ManualClock
from local.emulator.clock import CST
from local.emulator.contract import LIST_ENTRY_FIELDS, LIST_OPTIONAL_FIELDS, LIST_TIME_FIELDS
from local.samplemedia import probe
from tests import emulator_fixtures as ef
from tests.emulator_fixtures import MediaServer
from wanedit.dashscope import TaskList, TaskStatus

media = ef.media  # fixture
FIRST, SECOND = "sk-sdk-first-key", "sk-sdk-second-key"  # one account
STRANGER = "sk-sdk-other-account"
MODEL = "wan2.7-videoedit"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture
def emu(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(
        api_key=[FIRST, SECOND], accounts={"stranger": [STRANGER]}, clock=clock, task_seconds=90.0
    ) as emulator:
        monkeypatch.setattr(dashscope, "base_http_api_url", emulator.api_base_url)
        yield emulator


def create(media: MediaServer, key: str, prompt: str = "Convert the scene to claymation") -> Any:
    rsp = VideoSynthesis.async_call(
        api_key=key,
        model=MODEL,
        prompt=prompt,
        media=[{"type": "video", "url": media.url("clip.mp4")}],
        resolution="720P",
    )
    assert rsp.status_code == HTTPStatus.OK, rsp
    return rsp


def status(task: Any, key: str) -> str:
    rsp = VideoSynthesis.fetch(task=task, api_key=key)
    assert rsp.status_code == HTTPStatus.OK, rsp
    return str(rsp.output.task_status)


def compact(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=CST).strftime("%Y%m%d%H%M%S")


def test_two_keys_of_one_account_see_and_cancel_each_others_tasks(emu: Emulator, media: MediaServer) -> None:
    mine = create(media, FIRST)
    assert status(mine, SECOND) == "PENDING"
    assert status(mine.output.task_id, STRANGER) == "UNKNOWN"  # as an unknown id
    listed = VideoSynthesis.list(api_key=SECOND)
    assert listed.status_code == HTTPStatus.OK
    assert [d["task_id"] for d in listed.output["data"]] == [mine.output.task_id]
    assert VideoSynthesis.list(api_key=STRANGER).output["total"] == 0

    theirs = create(media, SECOND)
    refused = VideoSynthesis.cancel(task=theirs, api_key=STRANGER)
    assert refused.status_code == HTTPStatus.BAD_REQUEST and refused.code == "UnsupportedOperation"
    canceled = VideoSynthesis.cancel(task=theirs, api_key=FIRST)
    assert canceled.status_code == HTTPStatus.OK
    assert status(theirs, SECOND) == "CANCELED"
    again = VideoSynthesis.cancel(task=theirs, api_key=SECOND)
    assert again.status_code == HTTPStatus.BAD_REQUEST and again.code == "UnsupportedOperation"


def test_two_keys_share_the_accounts_running_cap(emu: Emulator, media: MediaServer) -> None:
    tasks = [create(media, key) for key in (FIRST, SECOND, FIRST, SECOND, FIRST)]
    emu.advance(1.0)  # 5 creates per second per account, whichever key
    tasks.append(create(media, SECOND))
    stranger = create(media, STRANGER)
    emu.advance(6.0)
    statuses = [status(t, FIRST) for t in tasks]
    assert statuses == ["RUNNING"] * 5 + ["PENDING"]  # five for the account, not five per key
    assert status(stranger, STRANGER) == "RUNNING"  # another account's cap is its own
    emu.advance(90.0)
    assert status(tasks[-1], FIRST) == "RUNNING"  # a slot freed
    assert emu.counters["max_running_seen_per_account"] == {"default": 5, "stranger": 1}


def test_list_entries_parse_with_the_documented_types(emu: Emulator, media: MediaServer) -> None:
    done = create(media, FIRST)
    emu.advance(100.0)
    running = create(media, SECOND)
    emu.advance(10.0)
    waiting = create(media, FIRST)
    listed = VideoSynthesis.list(api_key=SECOND, model_name=MODEL, page_size=100)
    assert listed.status_code == HTTPStatus.OK
    data = listed.output["data"]
    assert [d["task_id"] for d in data] == [t.output.task_id for t in (waiting, running, done)]
    for entry in data:
        assert LIST_ENTRY_FIELDS - LIST_OPTIONAL_FIELDS <= set(entry) <= LIST_ENTRY_FIELDS
        # The Java SDK's AsyncTaskInfo: Long times, String everything else.
        for field, value in entry.items():
            assert type(value) is (int if field in LIST_TIME_FIELDS else str), (field, value)
    assert set(data[2]) == LIST_ENTRY_FIELDS  # a finished task has every field
    assert (
        data[2]["status"] == "SUCCEEDED"
        and data[2]["end_time"] > data[2]["start_time"] > data[2]["gmt_create"]
    )
    assert data[2]["gmt_create"] == 1_800_000_000_000  # epoch milliseconds on the shared clock
    page = TaskList.model_validate({"request_id": listed.request_id, **listed.output})  # our client's model
    assert [item.status for item in page.data] == [
        TaskStatus.PENDING,
        TaskStatus.RUNNING,
        TaskStatus.SUCCEEDED,
    ]
    assert page.data[2].gmt_create is not None and page.data[2].gmt_create.timestamp() == 1_800_000_000.0
    assert page.data[2].model_extra == {}
    assert (listed.output["total"], listed.output["total_page"]) == (3, 1)


def test_a_25_hour_window_and_a_21st_list_within_a_second_are_refused(
    emu: Emulator, clock: ManualClock
) -> None:
    now = clock.now()
    wide = VideoSynthesis.list(api_key=FIRST, start_time=compact(now - 25 * 3600), end_time=compact(now))
    assert wide.status_code == HTTPStatus.BAD_REQUEST and wide.code == "InvalidParameter"
    assert "24 hours" in wide.message
    day = VideoSynthesis.list(api_key=FIRST, start_time=compact(now - 24 * 3600), end_time=compact(now))
    assert day.status_code == HTTPStatus.OK  # exactly 24 h is taken
    # Within this one second the account has made 2 list calls; 18 more are allowed, from any key.
    answers = [VideoSynthesis.list(api_key=(FIRST, SECOND)[n % 2]) for n in range(18)]
    assert [a.status_code for a in answers] == [HTTPStatus.OK] * 18
    refused = VideoSynthesis.list(api_key=SECOND)  # the 21st
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS and refused.code == "Throttling.RateQuota"
    assert VideoSynthesis.list(api_key=STRANGER).status_code == HTTPStatus.OK  # another account
    emu.advance(1.0)
    assert VideoSynthesis.list(api_key=FIRST).status_code == HTTPStatus.OK


def test_fetch_and_wait_on_the_real_clock(media: MediaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real clock at 120x: 5 s PENDING + 60 s run take about half a second; wait() polls each second.
    with Emulator(api_key=[FIRST, SECOND], time_scale=120, task_seconds=60.0) as emulator:
        monkeypatch.setattr(dashscope, "base_http_api_url", emulator.api_base_url)
        task = create(media, FIRST)
        assert status(task, SECOND) in ("PENDING", "RUNNING")
        done = VideoSynthesis.wait(task=task, api_key=SECOND, wait_timeout=30)
        assert done.status_code == HTTPStatus.OK and done.output.task_status == "SUCCEEDED"
        assert done.usage.video_count == 1 and done.usage["SR"] == 720
        info = probe(requests.get(done.output.video_url, timeout=10).content)
        assert (info["width"], info["height"]) == (1104, 832)
