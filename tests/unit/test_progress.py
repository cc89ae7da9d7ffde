"""The CLI's progress display: one rewritten line on a terminal, plain lines elsewhere."""

import io

from cli.progress import Progress, step_of
from wanedit.domain.job import Job, JobState, SourceObject


def job(state: JobState, task_status: str | None = None) -> Job:
    return Job(
        job_id="j-1",
        state=state,
        bucket="b",
        stem="clip",
        video=SourceObject(key="incoming/clip.mp4"),
        sidecar=SourceObject(key="incoming/clip.json"),
        prompt="p",
        created_at=0,
        updated_at=0,
        task_id="t-1" if task_status else None,
        task_status=task_status,
    )


def test_steps_follow_the_job():
    assert step_of(None) == "uploaded"
    assert step_of(job(JobState.QUEUED)) == "queued"
    assert step_of(job(JobState.SUBMITTED, "PENDING")) == "submitted"
    assert step_of(job(JobState.SUBMITTED, "RUNNING")) == "running"
    assert step_of(job(JobState.PERSISTING, "SUCCEEDED")) == "saving"
    assert step_of(job(JobState.PERSISTED, "SUCCEEDED")) == "done"
    assert step_of(job(JobState.REJECTED)) == "rejected"


def test_a_long_clip_shows_its_own_steps():
    assert step_of(job(JobState.SPLITTING)) == "splitting"
    assert step_of(job(JobState.SEGMENTED)) == "editing segments"
    assert step_of(job(JobState.STITCHING)) == "stitching"
    out = io.StringIO()
    progress = Progress(out, tty=True)
    progress.show(job(JobState.SEGMENTED), 1.0)
    assert "uploaded > splitting > EDITING SEGMENTS > stitching > done" in out.getvalue()


def test_a_terminal_gets_one_line_rewritten_in_place():
    out = io.StringIO()
    progress = Progress(out, tty=True)
    for state, status in (
        (JobState.QUEUED, None),
        (JobState.SUBMITTED, "RUNNING"),
        (JobState.PERSISTED, "SUCCEEDED"),
    ):
        progress.show(job(state, status), 1.0)
    progress.close()
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "RUNNING" in text and "DONE" in text.split("\r")[-1]


def test_elsewhere_each_step_is_one_plain_line():
    out = io.StringIO()
    progress = Progress(out, tty=False)
    for state, status in (
        (JobState.QUEUED, None),
        (JobState.QUEUED, None),
        (JobState.PERSISTED, "SUCCEEDED"),
    ):
        progress.show(job(state, status), 2.0)
    progress.close()
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1].split()[0] for line in lines] == ["queued", "done"]
    assert "\r" not in out.getvalue()
