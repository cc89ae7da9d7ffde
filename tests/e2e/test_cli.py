"""The `wanedit` command as a user runs it: subprocesses against `wanedit local up` (a real local stack)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from local.samplemedia import make_clip, make_image, probe

pytestmark = pytest.mark.xdist_group("cli")

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["local", "local up", "submit", "jobs", "status", "fetch", "cancel", "redrive", "report"]


def wanedit(*args: str, state: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    extra = ["--local-state", str(state)] if state else []
    return subprocess.run(
        [sys.executable, "-m", "cli", *args, *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": f"{REPO}/layers/common:{REPO}"},
        check=False,
    )


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`wanedit local up` with one slot (so a second job waits QUEUED), stopped with SIGTERM after."""
    state = tmp_path_factory.mktemp("cli") / "local.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "local", "up", "--max-concurrent", "1", "--local-state", str(state)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO}/layers/common:{REPO}"},
    )
    deadline = time.monotonic() + 60
    while not state.exists():  # bounded wait for the stack to come up
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "local stack did not start"
        time.sleep(0.2)
    yield state
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    assert not state.exists()  # it cleans up after itself


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = wanedit(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: wanedit" in result.stdout


def test_without_a_stack_the_cli_says_how_to_get_one(tmp_path):
    result = wanedit("jobs", state=tmp_path / "none.json")
    assert result.returncode == 2
    assert "wanedit local up" in result.stderr


def test_a_bad_sidecar_is_refused_before_upload(local_stack, tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=2, width=320, height=240, fps=8, audio=False)
    result = wanedit("submit", str(clip), "--prompt", "x", "--seed", "-1", state=local_stack)
    assert result.returncode == 2
    assert "sidecar.seed" in result.stderr


def test_submit_wait_jobs_status_fetch_report(local_stack, tmp_path):
    clip = make_clip(tmp_path / "walk.mp4", seconds=3, width=480, height=272, fps=12)
    make_image(tmp_path / "jacket.png", width=300, height=300, fmt="PNG")
    out = tmp_path / "out"

    submitted = wanedit(
        "submit", str(clip), "--prompt", "replace the jacket with the one in the image",
        "--image", str(tmp_path / "jacket.png"), "--resolution", "720P", "--ratio", "9:16",
        "--wait", "--output", str(out), "--timeout", "90",
        state=local_stack,
    )  # fmt: skip

    assert submitted.returncode == 0, submitted.stderr + submitted.stdout
    # Not a TTY: the progress is plain lines, one per step, ending in "done".
    steps = [
        line.split("] ")[1].split(" ")[0] for line in submitted.stdout.splitlines() if line.startswith("[")
    ]
    assert steps[0] == "uploaded" and steps[-1] == "done"
    assert "\r" not in submitted.stdout
    info = probe(out / "walk.mp4")
    assert (info["width"], info["height"]) == (720, 1280)
    manifest = json.loads((out / "walk.json").read_text())
    job_id = manifest["job_id"]

    listed = wanedit("jobs", state=local_stack)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == ["JOB", "CLIP", "STATE", "AGE", "TASK"]
    assert any(job_id in line and "PERSISTED" in line for line in listed.stdout.splitlines())

    by_id = json.loads(wanedit("status", job_id, state=local_stack).stdout)
    by_key = json.loads(wanedit("status", "incoming/cli/walk.mp4", state=local_stack).stdout)
    assert by_id["state"] == by_key["state"] == "PERSISTED" and by_id["job_id"] == by_key["job_id"]
    assert "video_url" not in by_id

    fetched = wanedit("fetch", job_id, "--output", str(tmp_path / "again"), state=local_stack)
    assert fetched.returncode == 0
    assert (tmp_path / "again" / "walk.mp4").read_bytes() == (out / "walk.mp4").read_bytes()

    report = wanedit("report", "--since", "1h", "--price-720p", "0.5", state=local_stack)
    assert report.returncode == 0
    billed = manifest["usage"]["duration"]
    assert f"billed seconds 720P: {billed:.2f}" in report.stdout
    assert f"estimated spend: {billed * 0.5:.2f}" in report.stdout


def test_submit_a_long_clip_and_see_it_as_one_job(local_stack, tmp_path):
    # Real time here: one slot, so the segments run one after the other, each found by a 15 s poll
    # (about a minute on an idle machine; the timeout is for a loaded CI box). It runs before the
    # cancel test, which leaves a long task holding that slot.
    clip = make_clip(tmp_path / "long.mp4", seconds=12, width=480, height=272, fps=12, gop=12)
    out = tmp_path / "out"

    submitted = wanedit(
        "submit", str(clip), "--prompt", "make it snow", "--resolution", "720P", "--long-clip", "split",
        "--wait", "--output", str(out), "--timeout", "400",
        state=local_stack, timeout=450,
    )  # fmt: skip

    assert submitted.returncode == 0, submitted.stderr + submitted.stdout
    steps = [line.split("] ")[1] for line in submitted.stdout.splitlines() if line.startswith("[")]
    assert steps[0] == "uploaded" and steps[-1].startswith("done")
    assert any(step.startswith("editing segments 2 segments") for step in steps)
    assert probe(out / "long.mp4")["duration_s"] == pytest.approx(12.0, abs=2 / 12)
    job_id = json.loads((out / "long.json").read_text())["job_id"]

    rows = [line for line in wanedit("jobs", state=local_stack).stdout.splitlines() if job_id in line]
    assert len(rows) == 1 and rows[0].split()[-2:] == ["2", "segments"]
    with_segments = wanedit("jobs", "--segments", state=local_stack).stdout
    assert sum(job_id in line for line in with_segments.splitlines()) == 3


def test_cancel_a_queued_job_and_refuse_a_finished_one(local_stack, tmp_path):
    """With one slot held by a long task, a second submission waits QUEUED: cancel ends it, no API call."""
    emulator = json.loads(local_stack.read_text())["emulator_url"]
    requests.post(
        f"{emulator}/_emulator/faults", json={"task_seconds": [6000]}, timeout=10
    ).raise_for_status()
    first = make_clip(tmp_path / "first.mp4", seconds=2, width=320, height=240, fps=8, audio=False)
    second = make_clip(tmp_path / "second.mp4", seconds=2, width=320, height=240, fps=8, audio=False)
    for clip in (first, second):
        assert (
            wanedit("submit", str(clip), "--prompt", "snow", "--folder", "q", state=local_stack).returncode
            == 0
        )
    deadline = time.monotonic() + 60
    queued = None
    while queued is None and time.monotonic() < deadline:  # bounded: until the events are handled
        rows = wanedit("jobs", "--state", "QUEUED", state=local_stack).stdout.splitlines()[1:]
        queued = rows[0].split()[0] if rows else None
    assert queued, "the second job never showed as QUEUED"

    canceled = wanedit("cancel", queued, state=local_stack)

    assert canceled.returncode == 0, canceled.stderr
    assert "CANCELED" in canceled.stdout
    assert json.loads(wanedit("status", queued, state=local_stack).stdout)["state"] == "CANCELED"
    again = wanedit("cancel", queued, state=local_stack)
    assert again.returncode == 1 and "only queued or pending" in again.stderr


def test_redrive_replays_a_dead_letter_and_keeps_poison(local_stack):
    """A dead-lettered upload event is replayed (and processed); a poison message stays, with a reason."""
    state = json.loads(local_stack.read_text())
    sqs = boto3.client(
        "sqs",
        endpoint_url=state["endpoint_url"],
        region_name=state["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    sqs.send_message(QueueUrl=state["ingest_dlq_url"], MessageBody="not an event")

    dry = wanedit("redrive", "--queue", "ingest", "--dry-run", state=local_stack)
    assert dry.returncode == 0 and "would replay 0, kept 1" in dry.stdout

    done = wanedit("redrive", "--queue", "ingest", state=local_stack)
    assert done.returncode == 0 and "replayed 0, kept 1" in done.stdout
    assert "kept" in done.stdout.splitlines()[1]
