"""The makespan benchmark runs end to end on a handful of jobs (structure only: no timing asserts)."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.xdist_group("e2e")


def test_makespan_benchmark_runs_with_five_jobs() -> None:
    from bench.pipeline import run_pipeline

    run = run_pipeline(5, seed=3)

    assert run.persisted == 5
    assert math.isfinite(run.ratio) and run.ratio >= 1.0
    assert run.duplicate_creates == 0
    assert run.tasks_created == 5
    assert len(run.detection) == 5
    assert run.invocations.count["poll"] >= 1
    assert run.calls.by_service()["dynamodb"] > 0


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
