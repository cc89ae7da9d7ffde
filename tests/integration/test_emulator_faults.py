# mypy: disable-error-code="attr-defined"
# (the dashscope SDK adds VideoSynthesis.list at run time; its stubs do not know it)
"""Every injectable fault, the control API, the official SDK against the emulator, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dashscope
import pytest
import requests
from dashscope import VideoSynthesis

from local.emulator import Emulator, ManualClock, fmt_cst
from local.emulator.contract import FAILED_OUTPUT_FIELDS
from local.samplemedia import make_image, probe
from tests import emulator_fixtures as ef
from tests.emulator_fixtures import API_KEY, Api, MediaServer, body

clock, emu, media = ef.clock, ef.emu, ef.media  # fixtures
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("endpoint", "status", "code"),
    [
        ("create", 429, "Throttling"),
        ("create", 500, "InternalError"),
        ("query", 502, "BadGateway"),
        ("query", 503, "ServiceUnavailable"),
        ("list", 504, "RequestTimeOut"),
        ("cancel", 500, "InternalError"),
    ],
)
def test_http_error_faults_n_times(
    emu: Emulator, media: MediaServer, endpoint: str, status: int, code: str
) -> None:
    api = Api(emu)
    tid = api.create(media.url("clip.mp4"), resolution="720P") if endpoint != "create" else ""
    emu.faults.add_spec(f"{endpoint}={status}x2")

    def call() -> requests.Response:
        if endpoint == "create":
            return api.create_raw(body(media.url("clip.mp4")))
        if endpoint == "query":
            return api.query(tid)
        if endpoint == "list":
            return api.list()
        return api.cancel(tid)

    for _ in range(2):
        r = call()
        assert (
            r.status_code == status
            and r.json()["code"] == code
            and set(r.json()) == {"request_id", "code", "message"}
        )
    assert call().status_code == 200
    assert emu.counters["tasks_created"] == 1
    assert emu.faults.snapshot()["endpoint_faults"] == []


def test_delay_on_create_creates_the_task_but_answers_late(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    emu.faults.add("create", "delay", seconds=0.6)
    with pytest.raises(requests.ReadTimeout):
        api.create_raw(body(media.url("clip.mp4")), timeout=0.2)
    assert emu.counters["tasks_created"] == 1
    assert api.list().json()["total"] == 1  # the lost create can be found by listing
    emu.faults.add("query", "delay", seconds=0.3)
    t0 = time.monotonic()
    tid = emu.counters["created_tasks"][0]["task_id"]
    assert api.query(tid).json()["output"]["task_status"] == "PENDING"
    assert time.monotonic() - t0 >= 0.3


def test_hang_and_drop_after_create_create_the_task_without_answer(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    emu.faults.add("create", "hang", seconds=0.2)
    with pytest.raises(requests.ConnectionError):
        api.create_raw(body(media.url("clip.mp4")))
    emu.faults.add_spec("create=drop_after_create")
    with pytest.raises(requests.ConnectionError):
        api.create_raw(body(media.url("clip.mp4")))
    assert emu.counters["tasks_created"] == 2
    # created tasks' bodies are recorded: the service saw exactly these
    assert [b["input"]["media"][0]["url"] for b in emu.counters["created_bodies"]] == [
        media.url("clip.mp4")
    ] * 2


def test_drop_closes_without_answer_and_creates_nothing(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    emu.faults.add_spec("create=drop")
    with pytest.raises(requests.ConnectionError):
        api.create_raw(body(media.url("clip.mp4")))
    assert emu.counters["tasks_created"] == 0
    tid = api.create(media.url("clip.mp4"))
    emu.faults.add_spec("query=drop")
    with pytest.raises(requests.ConnectionError):
        api.query(tid)
    assert api.query(tid).status_code == 200


def test_task_outcome_faults_failed_and_canceled(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    emu.faults.add_spec("task=FAILED:InternalError.Algo:Model inference failed")
    emu.faults.cancel_next()
    f = api.create(media.url("clip.mp4"))
    c = api.create(media.url("clip.mp4"))
    ok = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(200)
    out = api.output(f)
    assert out["task_status"] == "FAILED" and out["code"] == "InternalError.Algo"
    assert out["message"] == "Model inference failed"
    assert set(out) == FAILED_OUTPUT_FIELDS
    assert api.output(c)["task_status"] == "CANCELED"
    assert api.output(ok)["task_status"] == "SUCCEEDED"
    assert {d["task_id"]: d["status"] for d in api.list().json()["data"]}[f] == "FAILED"


def test_task_seconds_override_queue(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    emu.faults.task_seconds_queue.append(300.0)
    slow = api.create(media.url("clip.mp4"), resolution="720P")
    normal = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(120)
    assert api.output(slow)["task_status"] == "RUNNING"
    assert api.output(normal)["task_status"] == "SUCCEEDED"
    emu.advance(200)
    assert api.output(slow)["task_status"] == "SUCCEEDED"
    assert emu.task(slow).run_seconds == 300.0  # type: ignore[union-attr]


def test_result_download_faults(emu: Emulator, media: MediaServer) -> None:
    api = Api(emu)
    url = api.finish(api.create(media.url("clip.mp4"), resolution="720P"))["output"]["video_url"]
    emu.faults.add_spec("result=403")
    r = requests.get(url, timeout=5)
    assert r.status_code == 403 and "<Message>Request has expired.</Message>" in r.text
    emu.faults.add_spec("result=500")
    assert requests.get(url, timeout=5).status_code == 500
    r = requests.get(url, timeout=5)
    assert r.status_code == 200 and probe(r.content)["width"] == 1104
    assert emu.counters["result_downloads"] == 3


def test_control_api(emu: Emulator, media: MediaServer) -> None:
    base = emu.base_url + "/_emulator"
    r = requests.post(
        base + "/faults", json={"specs": ["create=503"], "fail_next": {"count": 1, "code": "X"}}, timeout=5
    )
    assert r.status_code == 200 and r.json()["endpoint_faults"][0]["status"] == 503
    assert requests.post(base + "/faults", json={"spec": "create=bogus"}, timeout=5).status_code == 400
    api = Api(emu)
    assert api.create_raw(body(media.url("clip.mp4"))).status_code == 503
    tid = api.create(media.url("clip.mp4"))
    before = requests.get(base + "/clock", timeout=5).json()["now"]
    after = requests.post(base + "/clock/advance", json={"seconds": 200}, timeout=5).json()["now"]
    assert after - before == 200
    assert api.output(tid)["task_status"] == "FAILED"
    c = requests.get(base + "/counters", timeout=5).json()
    assert c["tasks_created"] == 1 and c["creates_rejected"] == 1 and c["queries"] == 1
    assert c["per_key"][API_KEY]["tasks_created"] == 1
    assert requests.get(base + "/tasks", timeout=5).json()["tasks"][0]["task_id"] == tid
    assert requests.post(base + "/reset", timeout=5).json() == {"ok": True}
    assert requests.get(base + "/counters", timeout=5).json()["tasks_created"] == 0
    assert api.output(tid)["task_status"] == "UNKNOWN"


def test_official_sdk_async_example(media: MediaServer) -> None:
    """The reference's Python async example, verbatim apart from the base URL and local media URLs."""
    png = make_image(None, width=320, height=320, fmt="PNG")
    ref_url = media.put("sdk-ref.png", png)
    # real-time clock at 120x: 5 s pending + 60 s run = ~0.55 s real; SDK wait() polls after 1 s
    with Emulator(api_key=API_KEY, time_scale=120, task_seconds=60.0) as e:
        dashscope.base_http_api_url = e.base_url + "/api/v1"
        rsp = VideoSynthesis.async_call(
            api_key=API_KEY,
            model="wan2.7-videoedit",
            prompt="Replace the clothes of the girl in the video with the clothes from the image.",
            media=[
                {"type": "video", "url": media.url("clip.mp4")},
                {"type": "reference_image", "url": ref_url},
            ],
            resolution="720P",
            prompt_extend=True,
            watermark=True,
        )
        assert rsp.status_code == 200 and rsp.output.task_status == "PENDING"
        status = VideoSynthesis.fetch(task=rsp, api_key=API_KEY)
        assert status.status_code == 200 and status.output.task_status in ("PENDING", "RUNNING")
        done = VideoSynthesis.wait(task=rsp, api_key=API_KEY)
        assert done.status_code == 200 and done.output.task_status == "SUCCEEDED"
        assert done.usage["SR"] == 720 and done.usage["video_count"] == 1
        info = probe(requests.get(done.output.video_url, timeout=10).content)
        assert (info["width"], info["height"]) == (1104, 832)
        listed = VideoSynthesis.list(api_key=API_KEY)
        assert listed.status_code == 200 and listed.output["total"] == 1
        other = VideoSynthesis.async_call(
            api_key=API_KEY,
            model="wan2.7-videoedit",
            prompt="x",
            media=[{"type": "video", "url": media.url("clip.mp4")}],
        )
        cancel = VideoSynthesis.cancel(task=other, api_key=API_KEY)
        assert cancel.status_code == 200
        again = VideoSynthesis.cancel(task=other, api_key=API_KEY)
        assert again.status_code == 400 and again.code == "UnsupportedOperation"
        bad = VideoSynthesis.async_call(
            api_key="sk-nope",
            model="wan2.7-videoedit",
            prompt="x",
            media=[{"type": "video", "url": media.url("clip.mp4")}],
        )
        assert bad.status_code == 401 and bad.code == "InvalidApiKey"


def test_cli_prints_url_serves_faults_and_stops_on_sigterm(media: MediaServer) -> None:
    env = {**os.environ, "DASHSCOPE_API_KEY": "sk-cli"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.emulator", "--port", "0", "--fault", "create=503", "--manual-clock"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("wanedit emulator listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        h = {"Authorization": "Bearer sk-cli", "X-DashScope-Async": "enable"}
        r = requests.post(
            f"{base}/api/v1/services/aigc/video-generation/video-synthesis",
            json=body("http://127.0.0.1:9/x.mp4"),
            headers=h,
            timeout=5,
        )
        assert r.status_code == 503 and r.json()["code"] == "ServiceUnavailable"
        r = requests.post(
            f"{base}/api/v1/services/aigc/video-generation/video-synthesis",
            json=body("http://127.0.0.1:9/x.mp4"),
            headers=h,
            timeout=5,
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_help_documents_faults() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "local.emulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for needle in (
        "--fault",
        "create=429",
        "task=FAILED",
        "--task-seconds",
        "--time-scale",
        "/_emulator/faults",
    ):
        assert needle in out


def test_manual_clock_is_the_only_time_source(media: MediaServer) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    with Emulator(api_key=API_KEY, clock=clock, task_seconds=(60, 120), seed=7) as e:
        api = Api(e)
        tid = api.create(media.url("clip.mp4"), resolution="720P")
        time.sleep(0.1)  # real time passing changes nothing
        assert api.output(tid)["task_status"] == "PENDING"
        assert api.output(tid)["submit_time"] == "2027-01-15 16:00:00.000"  # UTC+8 of 1.8e9
        assert 60 <= e.task(tid).run_seconds <= 120  # type: ignore[union-attr]


def test_a_task_the_service_loses_is_unknown_everywhere_and_frees_its_slot(
    emu: Emulator, media: MediaServer
) -> None:
    api = Api(emu)
    ids = [api.create(media.url("clip.mp4"), resolution="720P") for _ in range(5)]
    emu.advance(1.0)
    queued = api.create(media.url("clip.mp4"), resolution="720P")
    emu.advance(10)
    assert api.output(queued)["task_status"] == "PENDING"  # the five slots are taken
    lost_at = emu.now()
    emu.lose_task(ids[0])
    emu.advance(0.1)
    assert api.output(ids[0]) == {"task_id": ids[0], "task_status": "UNKNOWN"}
    assert ids[0] not in {d["task_id"] for d in api.list().json()["data"]}
    out = api.output(queued)
    assert out["task_status"] == "RUNNING"  # its slot went to the next task, when it was freed
    assert out["scheduled_time"] == fmt_cst(lost_at)
    assert emu.counters["tasks_created"] == 6  # still counted as made
