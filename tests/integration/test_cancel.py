"""Canceling a job: while queued (no API call), while its task is PENDING (the API cancels it), not after."""

from __future__ import annotations

import pytest

from local.samplemedia import make_clip
from wanedit.container import services
from wanedit.domain.lifecycle import JobState
from wanedit.usecases.cancel import CancelRefused, cancel_job

pytestmark = pytest.mark.xdist_group("e2e")


def _submit(stack, tmp_path, name: str) -> None:
    clip = make_clip(tmp_path / f"{name}.mp4", seconds=2, width=320, height=240, fps=8, audio=False)
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.resources.bucket, Key=f"incoming/c/{name}.json", Body=b'{"prompt": "snow"}')
    s3.put_object(Bucket=stack.resources.bucket, Key=f"incoming/c/{name}.mp4", Body=clip.read_bytes())
    stack.pump.drain()


def test_cancel_while_pending_cancels_the_task_and_frees_the_slot(stack, tmp_path):
    _submit(stack, tmp_path, "a")
    [job] = services().store.list_jobs()
    assert job.state is JobState.SUBMITTED  # the emulator keeps a new task PENDING for a few seconds

    canceled = cancel_job(services(), job.job_id)

    assert canceled.state is JobState.CANCELED
    assert stack.emulator.counters["cancels"] == 1
    assert services().store.slot_holders() == {}
    report = stack.client("s3").get_object(Bucket=stack.resources.bucket, Key="failed/c/a.json")
    assert b'"CANCELED"' in report["Body"].read()
    stack.pump.tick()  # the poller sees the task CANCELED too: nothing changes, nothing is announced twice
    assert services().store.get(job.job_id).state is JobState.CANCELED  # type: ignore[union-attr]


def test_cancel_once_running_is_refused_and_the_job_goes_on(stack, tmp_path):
    _submit(stack, tmp_path, "b")
    [job] = services().store.list_jobs()
    stack.clock.sleep(30)  # past the emulated PENDING phase: RUNNING now

    with pytest.raises(CancelRefused, match="only PENDING"):
        cancel_job(services(), job.job_id)
    stack.pump.tick()
    stack.pump.drain()
    assert services().store.get(job.job_id).state is JobState.PERSISTED  # type: ignore[union-attr]


def test_cancel_an_unknown_job_is_refused(stack):
    with pytest.raises(CancelRefused, match="no job"):
        cancel_job(services(), "j-000000000000000000000000")
