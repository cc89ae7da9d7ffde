"""Job records written before the typed request model still load, and say the same to users."""

from __future__ import annotations

from tests.unit.fakes import make_job
from wanedit.adapters.jobstore import job_from_item, job_item
from wanedit.domain.request import BucketImage, EditRequest, FieldOrigin, InlineImage, UrlImage
from wanedit.reports import manifest

# A JOB# item as DynamoDB held it before (numbers as Decimal are converted by the adapter first).
LEGACY_ITEM = {
    "pk": "JOB#j-legacy",
    "active": "poll",
    "job_id": "j-legacy",
    "state": "SUBMITTED",
    "bucket": "media",
    "stem": "team/clip.red",
    "edit": "red",
    "video": {"key": "incoming/team/clip.mp4", "version_id": "v1", "etag": "e1", "size": 100},
    "sidecar": {"key": "incoming/team/clip.json", "version_id": "s1", "etag": "e2", "size": 10},
    "prompt": "make it red",
    "request": {
        "parameters": {"resolution": "720P", "seed": 7},
        "reference_images": [
            {"key": "incoming/team/jacket.png", "version_id": "p1"},
            {"url": "https://example.com/a.png"},
            {
                "data_from": {
                    "key": "incoming/team/clip.json",
                    "version_id": "s1",
                    "path": ["edits", 0, "reference_images", 2],
                }
            },
        ],
        "reference_images_public": [
            "incoming/team/jacket.png",
            "https://example.com/a.png",
            "data:image/png (inline, 1234 base64 chars)",
        ],
        "origins": {
            "prompt": "incoming/team/clip.json#edits[0]",
            "resolution": "incoming/team/_defaults.json",
            "seed": "wanedit: one fixed seed for every segment",
        },
        "negative_prompt": "blur",
    },
    "created_at": 1_800_000_000,
    "updated_at": 1_800_000_010.5,
    "next_poll_at": 1_800_000_025.5,
    "task_id": "t-1",
    "usage": {"duration": 8, "SR": "720", "video_count": 1},
}


def test_a_record_of_the_old_shape_loads_typed() -> None:
    job = job_from_item(LEGACY_ITEM)
    assert job.request.images == (
        BucketImage(key="incoming/team/jacket.png", version_id="p1"),
        UrlImage(url="https://example.com/a.png"),
        InlineImage(
            key="incoming/team/clip.json",
            version_id="s1",
            path=("edits", 0, "reference_images", 2),
            mime="image/png",
            chars=1234,
        ),
    )
    assert job.request.origins["prompt"] == FieldOrigin(key="incoming/team/clip.json", edit=0)
    assert job.request.origins["seed"] == FieldOrigin(note="one fixed seed for every segment")
    assert job.usage is not None and job.usage.SR == 720 and job.usage.tier == "720P"


def test_what_users_read_of_an_old_record_is_unchanged() -> None:
    job = job_from_item(LEGACY_ITEM)
    document = manifest(job, output_key="edited/team/clip.red.mp4", output_size=1, now=0.0, preview_key="p")
    request = LEGACY_ITEM["request"]
    assert document["reference_images"] == request["reference_images_public"]  # type: ignore[index]
    assert document["origins"] == request["origins"]  # type: ignore[index]
    assert document["parameters"] == {"resolution": "720P", "seed": 7}
    assert document["negative_prompt"] == "blur"


def test_a_new_record_round_trips_through_the_item_shape() -> None:
    job = make_job(request=EditRequest(images=(UrlImage(url="https://example.com/a.png"),)))
    assert job_from_item(job_item(job)) == job
