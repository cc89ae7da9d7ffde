"""Intake decisions without moto: pairing, duplicates, rejection, defaults, edits, long clips, outcomes."""

from __future__ import annotations

import base64
import json

import pytest

from tests.unit import mediafiles as mf
from tests.unit.fakes import World, world
from wanedit.dashscope import CreateOutcomeUnknown
from wanedit.domain.lifecycle import JobState
from wanedit.events import DETAIL_REJECTED
from wanedit.messages import LongClipMessage
from wanedit.usecases.intake import ObjectEvent, handle_object_created

CLIP = "incoming/team/clip.mp4"
SIDECAR = "incoming/team/clip.json"


def upload(w: World, key: str, body: bytes) -> str:
    """Put an object and hand its event to the intake, as the SubmitFunction would."""
    info = w.objects.put(key, body)
    return handle_object_created(w.svc, ObjectEvent(bucket="media", key=key, version_id=info.version_id))


def sidecar(**fields: object) -> bytes:
    return json.dumps({"prompt": "make it snow", "resolution": "720P", **fields}).encode()


@pytest.mark.parametrize("sidecar_first", [True, False])
def test_a_pair_in_either_order_makes_one_job_and_submits_it(sidecar_first: bool) -> None:
    w = world()
    halves = [(SIDECAR, sidecar()), (CLIP, mf.video())]
    if not sidecar_first:
        halves.reverse()
    assert upload(w, *halves[0]) == "waiting" and len(w.store.halves) == 1
    assert upload(w, *halves[1]) == "submitted"
    [job] = w.store.list_jobs()
    assert job.state is JobState.SUBMITTED and job.stem == "team/clip" and w.store.halves == {}
    assert job.request.parameters.resolution == "720P"
    assert str(job.request.origins["resolution"]) == SIDECAR


def test_the_same_event_twice_is_a_no_op() -> None:
    w = world()
    upload(w, CLIP, mf.video())
    upload(w, SIDECAR, sidecar())
    info = w.objects.head(SIDECAR)
    assert info is not None
    again = handle_object_created(w.svc, ObjectEvent(bucket="media", key=SIDECAR, version_id=info.version_id))
    assert again == "duplicate" and w.api.calls["create"] == 1


def test_bad_input_is_reported_once_and_never_reaches_the_api() -> None:
    w = world()
    upload(w, CLIP, mf.video())
    assert upload(w, SIDECAR, sidecar(ratio="2:1", watermark="true")) == "rejected"
    [job] = w.store.list_jobs()
    assert job.state is JobState.REJECTED and w.api.calls["create"] == 0
    report = w.objects.json("failed/team/clip.json")
    assert [p["field"] for p in report["problems"]] == ["sidecar.ratio", "sidecar.watermark"]
    assert w.notifier.types() == [DETAIL_REJECTED]
    info = w.objects.head(SIDECAR)
    assert info is not None
    handle_object_created(w.svc, ObjectEvent(bucket="media", key=SIDECAR, version_id=info.version_id))
    assert w.notifier.types() == [DETAIL_REJECTED]  # the event is not repeated


def test_folder_defaults_fill_what_the_sidecar_leaves_out_and_say_so() -> None:
    w = world()
    w.objects.put("incoming/team/_defaults.json", b'{"ratio": "9:16", "watermark": true}')
    upload(w, CLIP, mf.video())
    upload(w, SIDECAR, sidecar())
    [job] = w.store.list_jobs()
    assert job.request.parameters.as_dict() == {"resolution": "720P", "ratio": "9:16", "watermark": True}
    assert job.request.public_origins()["ratio"] == "incoming/team/_defaults.json"


def test_each_edit_is_a_job_and_an_inline_image_is_kept_as_a_pointer() -> None:
    w = world(MAX_CONCURRENT_TASKS=5)
    png = mf.image("PNG")
    inline = "data:image/png;base64," + base64.b64encode(png).decode()
    upload(w, CLIP, mf.video())
    doc = {
        "prompt": "change the jacket",
        "edits": [{"name": "red", "prompt": "make it red"}, {"name": "inline", "reference_images": [inline]}],
    }
    upload(w, SIDECAR, json.dumps(doc).encode())
    jobs = {job.edit: job for job in w.store.list_jobs()}
    assert set(jobs) == {"red", "inline"} and jobs["red"].prompt == "make it red"
    [image] = jobs["inline"].request.images
    assert image.kind == "inline" and image.path == ("edits", 1, "reference_images", 0)
    assert str(jobs["inline"].request.origins["reference_images"]) == f"{SIDECAR}#edits[1]"
    sent = w.api.tasks["t-2"].request
    assert sent is not None and sent.input.media[1].url == inline  # read back from the pinned file


def test_a_long_clip_that_asks_to_be_split_goes_to_the_split_worker() -> None:
    w = world()
    upload(w, CLIP, mf.video(frames=120, fps=10))  # 12 s
    assert upload(w, SIDECAR, sidecar(long_clip="split")) == "splitting"
    [job] = w.store.list_jobs()
    assert job.state is JobState.SPLITTING and job.request.parameters.seed is not None
    assert w.long_clips.sent == [LongClipMessage(action="split", job_id=job.job_id)]
    assert w.api.calls["create"] == 0


def test_a_lost_create_answer_is_counted_as_reconciling_not_failed() -> None:
    w = world()
    upload(w, CLIP, mf.video())
    w.api.fail_next("create", CreateOutcomeUnknown(None, "ReadTimeout", "no answer", None))
    assert upload(w, SIDECAR, sidecar()) == "reconciling"


def test_events_for_other_buckets_and_other_prefixes_are_ignored() -> None:
    w = world()
    w.objects.put("edited/team/clip.mp4", b"x")
    assert handle_object_created(w.svc, ObjectEvent(bucket="other", key=CLIP)) == "ignored"
    assert handle_object_created(w.svc, ObjectEvent(bucket="media", key="edited/team/clip.mp4")) == "ignored"
    assert handle_object_created(w.svc, ObjectEvent(bucket="media", key=CLIP)) == "ignored"  # gone
    assert w.store.list_jobs() == []
