"""What the real service does that the pipeline must take, on the whole local stack (manual clock).

- Other workloads of the account: the service lists every task of the account (another
  application, a console user, a colleague's key) and runs them under the same 5-task cap; the
  pipeline must never adopt one, count it in its slots, or be thrown by it
  (`Emulator.create_workload_task`).
- SUSPENDED: a status both official SDKs know; the task is alive and ends later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.samplemedia import make_clip
from tests.e2e.steps import run_to_end
from tests.emulator_fixtures import body
from wanedit.domain.job import JobState

pytestmark = pytest.mark.xdist_group("e2e")
PROMPT = "Turn the scene into a claymation style"


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2, width=320, height=240, fps=8)
    return Path(path).read_bytes()


def upload(stack: Any, stem: str, clip: bytes, prompt: str = PROMPT) -> None:
    s3, bucket = stack.client("s3"), stack.resources.bucket
    s3.put_object(
        Bucket=bucket, Key=f"{stem}.json", Body=json.dumps({"prompt": prompt, "resolution": "720P"}).encode()
    )
    s3.put_object(Bucket=bucket, Key=f"{stem}.mp4", Body=clip)


def their_body(stack: Any, clip: bytes, prompt: str) -> dict[str, Any]:
    """A create body of the other workload: its own clip, outside anything the pipeline watches."""
    s3, bucket = stack.client("s3"), stack.resources.bucket
    s3.put_object(Bucket=bucket, Key="theirs/clip.mp4", Body=clip)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "theirs/clip.mp4"}, ExpiresIn=86400
    )
    return body(url, prompt, resolution="720P")


def test_their_tasks_fill_the_cap_and_the_list_and_ours_still_finish_as_ours(stack, clip_bytes) -> None:
    from wanedit.container import services

    emu = stack.emulator
    theirs = [
        emu.create_workload_task(their_body(stack, clip_bytes, f"their edit {n}"), run_seconds=300.0)
        for n in range(6)
    ]
    for n in range(3):
        upload(stack, f"incoming/ours/clip{n}", clip_bytes, f"{PROMPT} {n}")

    jobs = run_to_end(stack, ticks=20)

    assert [job.state for job in jobs] == [JobState.PERSISTED] * 3
    ours = {job.task_id for job in jobs}
    assert len(ours) == 3 and not ours & set(theirs)  # never one of theirs
    assert all(services().store.task_owner(task_id) is None for task_id in theirs)
    assert emu.counters["tasks_created"] == 3
    assert emu.counters["max_running_seen"] <= 5  # the account's cap held for both workloads
    stack.clock.sleep(300.0)  # their sixth, queued behind their first five, runs on after ours
    emu.tick()
    assert [emu.wait_settled(t) for t in theirs] == ["SUCCEEDED"] * 6  # their work went on undisturbed


def test_a_create_that_made_nothing_never_adopts_their_task_with_the_same_prompt(stack, clip_bytes) -> None:
    from wanedit.container import services

    emu = stack.emulator
    upload(stack, "incoming/first/clip", clip_bytes, f"{PROMPT} first")
    assert [job.state for job in run_to_end(stack, ticks=20)] == [JobState.PERSISTED]  # our key is known now
    assert services().store.key_identities()
    emu.faults.add_spec("create=drop")  # the connection closes before any task is made
    upload(stack, "incoming/lost/clip", clip_bytes)
    stack.pump.drain()  # our create is lost: the job reconciles
    theirs = emu.create_workload_task(their_body(stack, clip_bytes, PROMPT))  # at the same moment

    jobs = [job for job in run_to_end(stack, ticks=20) if job.stem == "lost/clip"]

    assert [job.state for job in jobs] == [JobState.PERSISTED]
    assert jobs[0].task_id != theirs
    assert emu.counters["tasks_created"] == 2  # the first job's, and the lost one's own


def test_a_task_suspended_for_ten_minutes_is_waited_for(stack, clip_bytes) -> None:
    stack.emulator.faults.add_spec("task=SUSPENDED:600")
    upload(stack, "incoming/held/clip", clip_bytes)

    jobs = run_to_end(stack, ticks=20)

    assert [job.state for job in jobs] == [JobState.PERSISTED]
    assert stack.emulator.counters["tasks_created"] == 1
