"""Accounts, not keys: what one account's keys share, what another account never sees, and tasks that
other workloads of the account create beside the pipeline's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from local.emulator import Emulator, ManualClock, parse_account_spec
from local.emulator.validate import BadRequest
from tests import emulator_fixtures as ef
from tests.emulator_fixtures import API_KEY, OTHER_ACCOUNT_KEY, SAME_ACCOUNT_KEY, Api, MediaServer, body

clock, emu, media = ef.clock, ef.emu, ef.media  # fixtures
ROOT = Path(__file__).resolve().parents[2]


def test_a_key_belongs_to_one_account_and_api_key_alone_still_works() -> None:
    with pytest.raises(ValueError, match="one account only"):
        Emulator(api_key=["sk-a", "sk-b"], accounts={"team": ["sk-b"]})
    with pytest.raises(ValueError, match="at least one"):
        Emulator(api_key=[], accounts={"team": []})
    single = Emulator(api_key="sk-only")
    assert single.accounts.describe() == {"default": 1}
    only_named = Emulator(accounts={"team": ["sk-t1", "sk-t2"]})
    assert only_named.accounts.describe() == {"team": 2} and only_named.accounts.default.name == "team"
    assert parse_account_spec("team-b=sk-1, sk-2") == ("team-b", ["sk-1", "sk-2"])
    for bad in ("team", "=sk-1", "team="):
        with pytest.raises(ValueError, match="NAME=KEY"):
            parse_account_spec(bad)


def test_workload_tasks_share_the_account_but_are_not_the_pipelines(
    emu: Emulator, media: MediaServer
) -> None:
    api = Api(emu)
    emu.faults.fail_next(1)  # meant for the pipeline's next task: a workload task must not take it
    emu.faults.task_seconds_queue.append(500.0)
    foreign = [
        emu.create_workload_task(body(media.url("clip.mp4"), "their edit", resolution="720P"))
        for _ in range(5)
    ]
    emu.advance(6)
    ours = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(6)
    # The account's five slots are taken by the other workload: the pipeline's task waits.
    assert api.output(ours)["task_status"] == "PENDING"
    assert [api.output(t)["task_status"] for t in foreign] == ["RUNNING"] * 5
    listed = {d["task_id"]: d for d in Api(emu, key=SAME_ACCOUNT_KEY).list().json()["data"]}
    assert set(listed) == {ours, *foreign}  # the account's list shows both workloads' tasks
    assert listed[foreign[0]]["api_key_id"] != listed[ours]["api_key_id"]  # made with another key
    assert listed[foreign[0]]["caller_parent_id"] == listed[ours]["caller_parent_id"]  # one account
    assert Api(emu, key=OTHER_ACCOUNT_KEY).list().json()["total"] == 0
    assert Api(emu, key=OTHER_ACCOUNT_KEY).output(foreign[0])["task_status"] == "UNKNOWN"
    emu.advance(200)
    assert api.output(foreign[0])["task_status"] == "SUCCEEDED"
    assert api.output(foreign[0])["orig_prompt"] == "their edit"
    emu.advance(600)
    out = api.output(ours)
    assert out["task_status"] == "FAILED"  # the faults were still there for it
    assert emu.task(ours).run_seconds == 500.0  # type: ignore[union-attr]
    c = emu.counters
    assert c["tasks_created"] == 1 and c["workload_tasks_created"] == 5
    assert [t["task_id"] for t in c["created_tasks"]] == [ours]  # only what came over HTTP


def test_workload_tasks_of_another_account_and_bad_bodies(emu: Emulator, media: MediaServer) -> None:
    theirs = emu.create_workload_task(body(media.url("clip.mp4"), resolution="720P"), account="other")
    assert Api(emu, key=OTHER_ACCOUNT_KEY).output(theirs)["task_status"] == "PENDING"
    assert Api(emu).output(theirs)["task_status"] == "UNKNOWN"
    with pytest.raises(KeyError, match="nobody"):
        emu.create_workload_task(body(media.url("clip.mp4")), account="nobody")
    with pytest.raises(BadRequest):
        emu.create_workload_task({"model": "wan2.7-videoedit", "input": {"media": []}})


def test_control_api_for_accounts_and_workload_tasks(emu: Emulator, media: MediaServer) -> None:
    base = emu.base_url + "/_emulator"
    assert requests.get(base + "/accounts", timeout=5).json() == {"accounts": {"default": 2, "other": 1}}
    made = requests.post(
        base + "/tasks",
        json={"body": body(media.url("clip.mp4")), "account": "other", "run_seconds": 10},
        timeout=5,
    )
    assert made.status_code == 200
    task_id = made.json()["task_id"]
    rows = {r["task_id"]: r for r in requests.get(base + "/tasks", timeout=5).json()["tasks"]}
    assert rows[task_id]["account"] == "other" and rows[task_id]["run_seconds"] == 10
    assert requests.post(base + "/tasks", json={"account": "other"}, timeout=5).status_code == 400
    bad = requests.post(base + "/tasks", json={"body": {"model": "x"}}, timeout=5)
    assert bad.status_code == 400 and "model" in bad.json()["error"]
    assert (
        requests.post(
            base + "/tasks", json={"body": body("http://x/v.mp4"), "account": "no"}, timeout=5
        ).status_code
        == 400
    )


def test_the_emulator_command_takes_accounts() -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "local.emulator", "--port", "0", "--manual-clock",
            "--api-key", "sk-one", "--api-key", "sk-two", "--account", "team=sk-three",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}/layers/common:{ROOT}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        assert requests.get(f"{base}/_emulator/accounts", timeout=5).json()["accounts"] == {
            "default": 2,
            "team": 1,
        }
        headers = {"Authorization": "Bearer sk-one", "X-DashScope-Async": "enable"}
        created = requests.post(
            base + ef.CREATE, json=body("http://127.0.0.1:9/x.mp4"), headers=headers, timeout=5
        ).json()["output"]["task_id"]

        def status(key: str) -> str:
            answer = requests.get(
                f"{base}/api/v1/tasks/{created}", headers={"Authorization": f"Bearer {key}"}, timeout=5
            )
            return str(answer.json()["output"]["task_status"])

        assert (status("sk-two"), status("sk-three")) == ("PENDING", "UNKNOWN")
        clock_info = requests.get(f"{base}/_emulator/clock", timeout=5).json()
        assert clock_info["manual"] and clock_info["time_scale"] == 1.0  # a manual clock is not scaled
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_account_keys_clash_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local.emulator", "--api-key", "sk-1", "--account", "team=sk-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "one account only" in done.stderr


def test_accounts_keep_their_own_clock_view(media: MediaServer) -> None:
    """Two accounts on one manual clock: each sees only its own tasks, at the same times."""
    clock = ManualClock(start=1_800_000_000.0)
    with Emulator(api_key=API_KEY, accounts={"b": ["sk-b"]}, clock=clock, task_seconds=30.0) as e:
        mine = Api(e).create(media.url("clip.mp4"), resolution="720P")
        theirs = Api(e, key="sk-b").create(media.url("clip.mp4"), resolution="720P")
        assert Api(e).output(mine)["submit_time"] == Api(e, key="sk-b").output(theirs)["submit_time"]
        assert [d["task_id"] for d in Api(e).list().json()["data"]] == [mine]
        assert [d["task_id"] for d in Api(e, key="sk-b").list().json()["data"]] == [theirs]
