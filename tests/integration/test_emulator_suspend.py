"""SUSPENDED: a live task the service holds, put there by a fault, the Python API or the control API."""

from __future__ import annotations

from datetime import datetime, timedelta

import requests

from local.emulator import Emulator
from tests import emulator_fixtures as ef
from tests.emulator_fixtures import Api, MediaServer

clock, emu, media = ef.clock, ef.emu, ef.media  # fixtures
MSG = "Failed to cancel the task, please confirm if the task is in PENDING status."


def _ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")


def test_a_suspended_pending_task_steps_out_of_the_queue_and_back(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    held = api.create(media.url("clip.mp4"), resolution="720P")
    behind = api.create(media.url("clip.mp4"), resolution="720P")
    emu.suspend(held)
    emu.advance(6)
    out = api.output(held)
    assert out["task_status"] == "SUSPENDED" and set(out) == {"task_id", "task_status", "submit_time"}
    assert api.output(behind)["task_status"] == "RUNNING"  # it does not block the queue
    listed = {d["task_id"]: d["status"] for d in api.list().json()["data"]}
    assert listed == {held: "SUSPENDED", behind: "RUNNING"}
    assert api.cancel(held).status_code == 400 and api.cancel(held).json()["message"] == MSG
    emu.advance(600)
    assert api.output(held)["task_status"] == "SUSPENDED"  # it waits as long as it is held
    emu.resume(held)
    emu.advance(1)
    out = api.output(held)
    assert out["task_status"] == "RUNNING"
    emu.advance(100)
    out = api.output(held)
    assert out["task_status"] == "SUCCEEDED"
    assert _ts(out["scheduled_time"]) - _ts(out["submit_time"]) >= timedelta(seconds=606)


def test_a_suspended_running_task_keeps_its_slot_and_its_remaining_run(
    emu: Emulator, media: MediaServer
) -> None:
    api = Api(emu)
    ids = [api.create(media.url("clip.mp4"), resolution="720P") for _ in range(5)]
    emu.advance(1.0)  # past the second of 5 creates
    sixth = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(30)  # the five run (90 s each); the sixth waits for a slot
    emu.suspend(ids[0], seconds=120)  # for 120 s, then it goes on by itself
    emu.advance(70)  # the other four end; their slots go to the sixth
    assert api.output(ids[0])["task_status"] == "SUSPENDED"
    assert [api.output(t)["task_status"] for t in ids[1:]] == ["SUCCEEDED"] * 4
    assert api.output(sixth)["task_status"] == "RUNNING"
    assert emu.counters["running_now"] == 2  # the suspended task still holds its slot
    emu.advance(60)  # resumed at +120 s with 60 s left of its run
    assert api.output(ids[0])["task_status"] == "RUNNING"
    emu.advance(60)
    out = api.output(ids[0])
    assert out["task_status"] == "SUCCEEDED"
    assert _ts(out["end_time"]) - _ts(out["scheduled_time"]) == timedelta(seconds=90 + 120)


def test_the_suspend_fault_and_the_control_api(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    emu.faults.add_spec("task=SUSPENDED:30")
    tid = api.create(media.url("clip.mp4"), resolution="720P")
    assert api.output(tid)["task_status"] == "SUSPENDED"  # from its creation
    emu.advance(29)
    assert api.output(tid)["task_status"] == "SUSPENDED"
    emu.advance(2)
    out = api.output(tid)  # queued again at +30 s; its 5 s of PENDING were over: it runs at once
    assert out["task_status"] == "RUNNING"
    assert _ts(out["scheduled_time"]) - _ts(out["submit_time"]) == timedelta(seconds=30)
    base = emu.base_url + "/_emulator/tasks"
    answer = requests.post(f"{base}/{tid}/suspend", json={}, timeout=5)
    assert answer.json() == {"task_id": tid, "status": "SUSPENDED"}
    assert requests.post(f"{base}/{tid}/suspend", json={}, timeout=5).status_code == 400  # already held
    assert requests.post(f"{base}/{tid}/resume", timeout=5).json()["status"] == "RUNNING"
    assert requests.post(f"{base}/{tid}/resume", timeout=5).status_code == 400
    assert requests.post(f"{base}/nope/suspend", json={}, timeout=5).status_code == 404
    assert requests.post(emu.base_url + "/_emulator/faults", json={"suspend_next": 2}, timeout=5).json()[
        "suspensions"
    ] == [60.0, 60.0]
