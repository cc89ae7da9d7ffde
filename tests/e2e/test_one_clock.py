"""Issue 15's duplicate, on the local stack in real time (the mode `wanedit local up` runs).

Three uploads; the service throttles the first three creates (429) and loses the answer of the
next one after making its task (`drop_after_create`). The pipeline reconciles that create by the
task's creation time. With two clocks (the emulator's running 30x ahead) it could never find the
task, created another one, and the job got two SUCCEEDED, billed tasks. With one clock: one task
per job, one edit each.

Real time is the point here, so this waits for real, bounded: tasks take 2-4 s (time scale 30),
and reconciliation looks at a lost create's task once it is 30 s old (the pipeline's claim grace).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from local.samplemedia import make_clip, probe
from local.stack import LocalStack
from wanedit.domain.job import Job, JobState

pytestmark = pytest.mark.xdist_group("e2e-realtime")
WAIT_SECONDS = 240.0  # about a minute on an idle machine


def wait_until_done(stack: LocalStack, jobs_expected: int) -> list[Job]:
    from wanedit.container import services

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        jobs = services().store.list_jobs()
        if len(jobs) == jobs_expected and all(job.state.is_terminal for job in jobs):
            return jobs
        assert time.monotonic() < deadline, [(j.job_id, j.state.value) for j in jobs]
        time.sleep(0.5)


def test_a_create_lost_after_throttling_gives_one_task_and_one_edit(tmp_path: Path) -> None:
    clip = Path(make_clip(tmp_path / "clip.mp4", seconds=2, width=320, height=240, fps=8)).read_bytes()
    with LocalStack(time_scale=30.0) as stack:  # as `wanedit local up`: the real clock, tasks 30x faster
        stack.emulator.faults.add_spec("create=429x3")
        stack.emulator.faults.add_spec("create=drop_after_create")
        stack.run_background(poll_every=60.0)
        s3, bucket = stack.client("s3"), stack.resources.bucket
        for n in range(3):
            sidecar = {"prompt": f"Turn clip {n} into a watercolor painting", "resolution": "720P"}
            s3.put_object(
                Bucket=bucket, Key=f"incoming/clock/clip{n}.json", Body=json.dumps(sidecar).encode()
            )
            s3.put_object(Bucket=bucket, Key=f"incoming/clock/clip{n}.mp4", Body=clip)

        jobs = wait_until_done(stack, 3)
        counters = stack.emulator.counters
        tasks = {task.task_id: task for task in stack.emulator.tasks()}
        edits = {
            job.job_id: probe(s3.get_object(Bucket=bucket, Key=job.output_key or "")["Body"].read())
            for job in jobs
        }

    assert counters["throttled"] == 3 and counters["faults_injected"] == 4  # both faults happened
    assert [job.state for job in jobs] == [JobState.PERSISTED] * 3
    assert counters["tasks_created"] == 3  # one task per job: the lost create's task was found
    assert sorted(job.task_id or "" for job in jobs) == sorted(tasks)  # each job has its own
    assert all(task.status == "SUCCEEDED" for task in tasks.values())
    assert all((edit["width"], edit["height"]) == (1104, 832) for edit in edits.values())  # one edit each
