"""Folder defaults (nearest folder wins, the sidecar overrides field by field) and several edits per clip."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from local.samplemedia import make_clip, make_image, probe
from tests.e2e.steps import get_json, put, run_to_end
from wanedit.container import services
from wanedit.domain.lifecycle import JobState

pytestmark = pytest.mark.xdist_group("e2e")


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2, width=320, height=240, fps=8)
    return Path(path).read_bytes()


def test_nearest_defaults_win_and_the_sidecar_overrides_field_by_field(stack, clip_bytes, tmp_path):
    put(stack, "incoming/_defaults.json", {"prompt": "top prompt", "resolution": "1080P", "watermark": True})
    put(stack, "incoming/team/_defaults.json", {"resolution": "720P", "ratio": "1:1"})
    put(stack, "incoming/team/day1/clip.json", {"ratio": "16:9"})
    put(stack, "incoming/team/day1/clip.mp4", clip_bytes)

    [job] = run_to_end(stack)

    assert job.state is JobState.PERSISTED
    manifest = get_json(stack, "edited/team/day1/clip.json")
    assert manifest["parameters"] == {"resolution": "720P", "ratio": "16:9", "watermark": True}
    assert manifest["prompt"] == "top prompt"
    assert manifest["origins"] == {
        "prompt": "incoming/_defaults.json",
        "watermark": "incoming/_defaults.json",
        "resolution": "incoming/team/_defaults.json",
        "ratio": "incoming/team/day1/clip.json",
    }
    out = tmp_path / "out.mp4"
    out.write_bytes(
        stack.client("s3")
        .get_object(Bucket=stack.resources.bucket, Key="edited/team/day1/clip.mp4")["Body"]
        .read()
    )
    assert (probe(out)["width"], probe(out)["height"]) == (1280, 720)
    [body] = stack.emulator.counters["created_bodies"]
    assert body["parameters"] == {"resolution": "720P", "ratio": "16:9", "watermark": True}


def test_a_clip_without_sidecar_is_edited_with_folder_defaults_that_have_a_prompt(stack, clip_bytes):
    put(stack, "incoming/auto/_defaults.json", {"prompt": "make it snow", "resolution": "720P"})
    put(stack, "incoming/auto/clip.mp4", clip_bytes)
    put(stack, "incoming/manual/_defaults.json", {"resolution": "720P"})  # no prompt: waits for a sidecar
    put(stack, "incoming/manual/clip.mp4", clip_bytes)

    jobs = run_to_end(stack)

    assert [(job.video.key, job.state) for job in jobs] == [("incoming/auto/clip.mp4", JobState.PERSISTED)]
    assert jobs[0].sidecar.key == "incoming/auto/_defaults.json"
    assert [h.key for h in services().store.waiting_halves()] == ["incoming/manual/clip.mp4"]


def test_several_edits_of_one_clip_are_one_job_each(stack, clip_bytes):
    image = make_image(None, width=320, height=320, fmt="PNG")
    inline = f"data:image/png;base64,{base64.b64encode(image).decode()}"
    put(
        stack,
        "incoming/multi/clip.json",
        {
            "prompt": "change the jacket",
            "resolution": "720P",
            "edits": [
                {"name": "red-jacket", "prompt": "make the jacket red", "ratio": "1:1"},
                {"name": "blue-jacket", "reference_images": [inline]},
                {"name": "square", "ratio": "1:1", "watermark": True},
            ],
        },
    )
    put(stack, "incoming/multi/clip.mp4", clip_bytes)

    jobs = run_to_end(stack)

    assert sorted((job.edit, job.state) for job in jobs) == [
        ("blue-jacket", JobState.PERSISTED),
        ("red-jacket", JobState.PERSISTED),
        ("square", JobState.PERSISTED),
    ]
    keys = {
        o["Key"]
        for o in stack.client("s3").list_objects_v2(Bucket=stack.resources.bucket, Prefix="edited/")[
            "Contents"
        ]
    }
    assert keys == {
        f"edited/multi/clip.{name}.{ext}"
        for name in ("red-jacket", "blue-jacket", "square")
        for ext in ("mp4", "json", "preview.jpg")
    }
    red = get_json(stack, "edited/multi/clip.red-jacket.json")
    assert red["prompt"] == "make the jacket red" and red["parameters"] == {
        "resolution": "720P",
        "ratio": "1:1",
    }
    assert red["origins"]["prompt"] == "incoming/multi/clip.json#edits[0]"
    bodies = stack.emulator.counters["created_bodies"]
    assert len(bodies) == 3  # one task per edit, all under the one concurrency cap
    [with_image] = [b for b in bodies if len(b["input"]["media"]) == 2]
    assert with_image["input"]["media"][1] == {"type": "reference_image", "url": inline}


def test_a_bad_edit_is_rejected_alone(stack, clip_bytes):
    put(
        stack,
        "incoming/mixed/clip.json",
        {"prompt": "snow", "edits": [{"name": "ok"}, {"name": "bad", "ratio": "2:1"}, {"name": "ok"}]},
    )
    put(stack, "incoming/mixed/clip.mp4", clip_bytes)

    [job] = run_to_end(stack)  # duplicate names: the whole list is refused, nothing is sent

    assert job.state is JobState.REJECTED
    report = get_json(stack, "failed/mixed/clip.json")
    assert [p["field"] for p in report["problems"]] == ["sidecar.edits[2].name"]
    assert stack.emulator.counters["tasks_created"] == 0

    put(
        stack,
        "incoming/mixed/clip.json",
        {"prompt": "snow", "edits": [{"name": "ok"}, {"name": "bad", "ratio": "2:1"}]},
    )
    jobs = run_to_end(stack)

    by_edit = {job.edit: job for job in jobs if job.edit}
    assert by_edit["ok"].state is JobState.PERSISTED
    assert by_edit["bad"].state is JobState.REJECTED
    bad = get_json(stack, "failed/mixed/clip.bad.json")
    assert [p["field"] for p in bad["problems"]] == ["sidecar.edits[1].ratio"]
