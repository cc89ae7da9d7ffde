"""The makespan benchmark runs end to end on a handful of jobs (structure only: no timing asserts)."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.xdist_group("e2e")


def test_makespan_benchmark_runs_with_five_jobs() -> None:
    from bench.fastmoto import Checks
    from bench.pipeline import run_pipeline

    before = Checks.responses
    run = run_pipeline(5, seed=3, verify=True)  # in process, every moto shortcut checked

    assert run.transport == "inprocess"
    assert run.persisted == 5
    assert math.isfinite(run.ratio) and run.ratio >= 1.0
    assert run.duplicate_creates == 0
    assert run.tasks_created == 5
    assert len(run.detection) == 5
    assert run.invocations.count["poll"] >= 1
    assert run.calls.by_service()["dynamodb"] > 0
    assert Checks.responses > before  # the fast serializer ran and matched moto's on every response
    # a result under one part goes up in one PutObject (and its manifest in another)
    assert run.calls.calls[("complete", "s3", "PutObject")] == 2 * 5
    assert run.calls.calls[("complete", "s3", "CreateMultipartUpload")] == 0


def test_in_process_and_moto_server_runs_give_the_same_figures() -> None:
    """moto in process (the default) only changes the transport: same schedule, same calls."""
    from bench.pipeline import run_pipeline

    fast = run_pipeline(4, seed=5)
    server = run_pipeline(4, seed=5, transport="server")

    assert server.transport == "server"
    for name in ("makespan", "optimum", "creates", "queries", "lists", "throttled", "duplicate_creates"):
        assert getattr(fast, name) == getattr(server, name), name
    # per job, in table order (job ids differ between runs)
    assert sorted(fast.detection) == sorted(server.detection)
    assert sorted(fast.per_task_calls) == sorted(server.per_task_calls)
    assert fast.states == server.states
    # every AWS request the handlers make, by function, service and operation
    handlers = ("submit", "poll", "complete")
    assert {k: v for k, v in fast.calls.calls.items() if k[0] in handlers} == {
        k: v for k, v in server.calls.calls.items() if k[0] in handlers
    }
    assert fast.calls.wru == server.calls.wru
    assert fast.calls.rru == server.calls.rru


def test_fast_moto_serializes_every_attribute_type_as_moto_does() -> None:
    from decimal import Decimal

    import boto3
    from boto3.dynamodb.conditions import Key
    from moto import mock_aws

    from bench.fastmoto import Checks, accelerated

    item = {
        "pk": "JOB#1",
        "s": "text",
        "n": 12,
        "f": Decimal("1.5"),
        "b": b"\x00\xffbytes",
        "ss": {"a", "b"},
        "ns": {1, 2},
        "bs": {b"x", b"y"},
        "m": {"inner": {"deep": [1, "two", None, True]}},
        "l": [{"k": "v"}, [1, 2], b"z"],
        "null": None,
        "bool": False,
        "empty_m": {},
        "empty_l": [],
        "active": "poll",
        "next_poll_at": 5,
    }
    with mock_aws(), accelerated(verify=True):
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "active", "AttributeType": "S"},
                {"AttributeName": "next_poll_at", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "ByNext",
                    "KeySchema": [
                        {"AttributeName": "active", "KeyType": "HASH"},
                        {"AttributeName": "next_poll_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        before = (Checks.responses, Checks.sorts)
        for i in range(12):
            table.put_item(Item={**item, "pk": f"JOB#{i}", "next_poll_at": (i * 7) % 5})
        got = table.get_item(Key={"pk": "JOB#3"}, ConsistentRead=True)["Item"]
        listed = table.query(IndexName="ByNext", KeyConditionExpression=Key("active").eq("poll"))["Items"]
        scanned = table.scan()["Items"]
    assert got["b"].value == b"\x00\xffbytes" and got["ss"] == {"a", "b"} and got["null"] is None
    assert [x["next_poll_at"] for x in listed] == sorted(x["next_poll_at"] for x in listed)
    assert len(scanned) == 12
    assert Checks.responses > before[0] and Checks.sorts > before[1]


def test_bench_cli_registers_stitch_and_survives_without_it(monkeypatch) -> None:
    import sys

    from bench.__main__ import stitch_rows

    monkeypatch.setitem(sys.modules, "bench.stitch", None)  # as if bench/stitch.py had not landed
    (row,) = stitch_rows()
    assert row.passed is None and row.measured.startswith("not available")


def test_emulator_no_render_mode_serves_the_prerendered_file_for_every_task(tmp_path) -> None:
    import requests

    from local.emulator import Emulator, ManualClock
    from local.samplemedia import make_clip

    clip = make_clip(tmp_path / "result.mp4", seconds=2, width=320, height=240, fps=8)
    headers = {"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}
    body = {
        "model": "wan2.7-videoedit",
        "input": {"prompt": "x", "media": [{"type": "video", "url": "http://127.0.0.1:9/never-fetched.mp4"}]},
    }
    with Emulator(api_key="sk-test", clock=ManualClock(), prerendered=clip, task_seconds=60.0) as emu:
        create = f"{emu.base_url}/api/v1/services/aigc/video-generation/video-synthesis"
        ids = [
            requests.post(create, json=body, headers=headers, timeout=10).json()["output"]["task_id"]
            for _ in range(2)
        ]
        emu.advance(600)
        for task_id in ids:
            task = requests.get(f"{emu.base_url}/api/v1/tasks/{task_id}", headers=headers, timeout=10).json()
            assert task["output"]["task_status"] == "SUCCEEDED"
            assert task["usage"]["input_video_duration"] == task["usage"]["output_video_duration"]
            video = requests.get(task["output"]["video_url"], timeout=10)
            assert video.status_code == 200
            assert video.content == clip.read_bytes()
