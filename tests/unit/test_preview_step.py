"""The preview step, with the fakes and real (tiny) videos: made once the edit is saved, never failing it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.unit import mediafiles as mf
from tests.unit.fakes import World, make_job, world
from wanedit.domain.lifecycle import JobState
from wanedit.messages import LongClipMessage
from wanedit.metrics import PREVIEWS_FAILED, PREVIEWS_MADE
from wanedit.usecases.longclip import PreviewRetry, run_action

pytest.importorskip("av")


def saved(w: World, edited: bytes = b"", *, state: JobState = JobState.PERSISTED) -> str:
    """A job (PERSISTED unless said) whose clip and edit are in the bucket."""
    job = make_job(w, state=state, output_key="edited/team/clip.mp4" if state is JobState.PERSISTED else None)
    clip = mf.video(frames=30, fps=10)
    w.objects.put(job.video.key, clip)  # the version the job names: replace the placeholder
    stored = w.objects.head(job.video.key)
    assert stored is not None
    job = job.model_copy(update={"video": job.video.model_copy(update={"version_id": stored.version_id})})
    w.objects.put("edited/team/clip.mp4", edited or mf.video(width=480, height=270, frames=20, fps=10))
    w.store.jobs[job.job_id] = job
    return job.job_id


def test_the_sheet_is_made_from_the_clip_and_its_edit() -> None:
    w = world()
    job_id = saved(w)
    run_action(w.svc, LongClipMessage(action="preview", job_id=job_id))
    stored = w.objects.objects["edited/team/clip.preview.jpg"][-1]
    assert stored.content_type == "image/jpeg" and stored.tags["wanedit-job"] == job_id
    sheet = Image.open(io.BytesIO(stored.body))
    assert sheet.format == "JPEG" and sheet.width > sheet.height
    assert w.metrics.total(PREVIEWS_MADE) == 1


@pytest.mark.parametrize("state", [JobState.PERSISTING, JobState.STITCHING])
def test_a_message_read_before_the_move_to_persisted_still_makes_the_sheet(state: JobState) -> None:
    """The completion announces (and asks for the preview) before it moves the job to PERSISTED."""
    w = world()
    job_id = saved(w, state=state)
    run_action(w.svc, LongClipMessage(action="preview", job_id=job_id))
    stored = w.objects.objects["edited/team/clip.preview.jpg"][-1]
    assert stored.tags == {"wanedit-job": job_id, "wanedit-state": "PERSISTED"}
    assert w.metrics.total(PREVIEWS_MADE) == 1


def test_a_message_read_before_the_edit_is_written_is_tried_again() -> None:
    w = world()
    job = make_job(w, state=JobState.PERSISTING)
    w.store.jobs[job.job_id] = job
    with pytest.raises(PreviewRetry, match="not saved yet"):
        run_action(w.svc, LongClipMessage(action="preview", job_id=job.job_id), attempt=1)


def test_an_edit_that_cannot_be_drawn_is_counted_and_left() -> None:
    w = world()
    job_id = saved(w, edited=b"not a video at all")
    assert run_action(w.svc, LongClipMessage(action="preview", job_id=job_id)) is JobState.PERSISTED
    assert "edited/team/clip.preview.jpg" not in w.objects.objects
    assert w.metrics.total(PREVIEWS_FAILED) == 1


def test_a_bucket_failure_is_retried_a_few_times_then_left() -> None:
    w = world()
    job_id = saved(w)

    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("S3 is down")

    w.objects.put_bytes = broken  # type: ignore[method-assign]
    with pytest.raises(PreviewRetry):
        run_action(w.svc, LongClipMessage(action="preview", job_id=job_id), attempt=1)
    run_action(w.svc, LongClipMessage(action="preview", job_id=job_id), attempt=3)  # the last try
    assert w.metrics.total(PREVIEWS_FAILED) == 1


def test_no_preview_for_a_job_not_saved_or_a_segment() -> None:
    w = world()
    queued = make_job(w)
    w.store.put_new(queued)
    run_action(w.svc, LongClipMessage(action="preview", job_id=queued.job_id))
    assert not any(key.endswith(".preview.jpg") for key in w.objects.objects)
    assert w.metrics.emitted == {}
