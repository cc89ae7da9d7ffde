"""Submission decisions, without moto or HTTP: admission and slots, the create's outcomes, backoff."""

from __future__ import annotations

import random

import pytest

from tests.unit.fakes import World, make_job, world
from wanedit.dashscope import (
    CreateOutcomeUnknown,
    FinalError,
    QuotaExhaustedError,
    RetryableError,
    ThrottledError,
)
from wanedit.domain.lifecycle import JobState
from wanedit.domain.request import BucketImage, EditParameters, EditRequest, InlineImage, UrlImage
from wanedit.domain.timing import QUOTA_PAUSE_SECONDS, THROTTLE_BACKOFF_CAP, backoff
from wanedit.events import DETAIL_FAILED, DETAIL_PAUSED
from wanedit.metrics import SUBMISSIONS_PAUSED
from wanedit.usecases.poll import PollReport, poll_once
from wanedit.usecases.submission import build_create_request, try_submit


def queued(w: World, stem: str = "team/clip", **fields: object) -> str:
    job = make_job(w, stem=stem, **fields)
    assert w.store.put_new(job)
    return job.job_id


def test_a_free_slot_creates_the_task_and_starts_polling() -> None:
    w = world()
    job_id = queued(w)
    job = try_submit(w.svc, w.store.get(job_id))  # type: ignore[arg-type]
    assert job.state is JobState.SUBMITTED and job.task_id == "t-1" and job.task_status == "PENDING"
    assert job.request_ids == ["r-create-t-1"] and job.submit_attempts == 1
    assert w.store.task_owner("t-1") == job_id and job_id in w.store.slot_holders()
    assert job.next_poll_at == w.clock.now() + 15.0  # the reference's polling interval
    assert [m[1:] for m in w.store.moves] == [
        (JobState.QUEUED, JobState.SUBMITTING),
        (JobState.SUBMITTING, JobState.SUBMITTED),
    ]


def test_no_free_slot_leaves_the_job_queued_and_calls_nothing() -> None:
    w = world(MAX_CONCURRENT_TASKS=1)
    first, second = queued(w, "a/one"), queued(w, "a/two")
    try_submit(w.svc, w.store.get(first))  # type: ignore[arg-type]
    job = try_submit(w.svc, w.store.get(second))  # type: ignore[arg-type]
    assert job.state is JobState.QUEUED and w.api.calls["create"] == 1
    assert list(w.store.slot_holders()) == [first]


def test_a_job_another_worker_took_is_not_created_twice() -> None:
    w = world()
    job_id = queued(w)
    stale = w.store.get(job_id)
    try_submit(w.svc, w.store.get(job_id))  # type: ignore[arg-type]
    again = try_submit(w.svc, stale)  # type: ignore[arg-type]
    assert again.state is JobState.SUBMITTED and w.api.calls["create"] == 1


@pytest.mark.parametrize(
    "error, throttled",
    [
        (ThrottledError(429, "Throttling.RateQuota", "slow down", "r-1"), 1),
        (RetryableError(503, "ServiceUnavailable", "busy", "r-1"), 0),
    ],
)
def test_a_refused_create_goes_back_to_the_queue_behind_a_backoff(error: Exception, throttled: int) -> None:
    w = world()
    job_id = queued(w)
    w.api.fail_next("create", error)
    job = try_submit(w.svc, w.store.get(job_id))  # type: ignore[arg-type]
    assert job.state is JobState.QUEUED and job.throttled == throttled
    assert w.store.slot_holders() == {} and job.submitting_since is None
    assert w.clock.now() <= (job.next_poll_at or 0) <= w.clock.now() + THROTTLE_BACKOFF_CAP


def test_backoff_grows_then_caps_with_full_jitter() -> None:
    random.seed(7)
    draws = {attempt: [backoff(attempt) for _ in range(200)] for attempt in (0, 3, 10)}
    assert max(draws[0]) <= 2.0 and max(draws[3]) <= 16.0 and max(draws[10]) <= THROTTLE_BACKOFF_CAP
    assert min(draws[10]) < 10.0 < max(draws[10])  # full jitter spreads a burst over the whole range


def test_a_create_refused_for_good_fails_the_job_with_a_report_and_an_event() -> None:
    w = world()
    job_id = queued(w)
    w.api.fail_next("create", FinalError(400, "InvalidParameter", "bad video", "r-bad"))
    job = try_submit(w.svc, w.store.get(job_id))  # type: ignore[arg-type]
    assert job.state is JobState.FAILED and job.error_code == "InvalidParameter"
    assert job.request_ids == ["r-bad"] and w.store.slot_holders() == {}
    report = w.objects.json("failed/team/clip.json")
    assert report["status"] == "FAILED" and report["error"]["code"] == "InvalidParameter"
    assert w.notifier.types() == [DETAIL_FAILED]


def test_a_lost_create_answer_is_reconciled_never_created_again() -> None:
    w = world()
    job_id = queued(w)
    w.api.fail_next("create", CreateOutcomeUnknown(None, "ReadTimeout", "no answer", None))
    job = try_submit(w.svc, w.store.get(job_id))  # type: ignore[arg-type]
    assert job.state is JobState.RECONCILING and job_id in w.store.slot_holders()
    assert w.api.calls["create"] == 1


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_inputs_withdrawn_while_queued_cancel_the_job_before_any_call(change: str) -> None:
    w = world()
    job_id = queued(w)
    if change == "deleted":
        w.objects.delete("incoming/team/clip.json")
    else:
        w.objects.put("incoming/team/clip.mp4", b"a newer take")
    job = try_submit(w.svc, w.store.get(job_id))  # type: ignore[arg-type]
    assert job.state is JobState.CANCELED and job.error_code == "InputWithdrawn"
    assert w.api.calls["create"] == 0 and w.store.slot_holders() == {}


def test_the_request_pins_every_input_to_its_validated_version() -> None:
    w = world()
    ref = w.objects.put("incoming/team/jacket.png", b"png")
    w.objects.put(
        "incoming/team/clip.json", b'{"prompt": "p", "reference_images": ["data:image/png;base64,QUJD"]}'
    )
    sidecar = w.objects.head("incoming/team/clip.json")
    assert sidecar is not None
    request = EditRequest(
        parameters=EditParameters(resolution="720P", seed=3),
        negative_prompt="blur",
        images=(
            BucketImage(key=ref.key, version_id=ref.version_id),
            UrlImage(url="https://example.com/a.png"),
            InlineImage(
                key=sidecar.key,
                version_id=sidecar.version_id,
                path=("reference_images", 0),
                mime="image/png",
                chars=4,
            ),
        ),
    )
    job = make_job(w, request=request)
    body = build_create_request(w.svc, job).to_body()
    media = body["input"]["media"]
    assert media[0] == {"type": "video", "url": media[0]["url"]} and job.video.version_id in media[0]["url"]
    assert ref.version_id in media[1]["url"] and media[2]["url"] == "https://example.com/a.png"
    assert media[3]["url"] == "data:image/png;base64,QUJD"
    assert body["parameters"] == {"resolution": "720P", "seed": 3}
    assert body["input"]["negative_prompt"] == "blur" and body["model"] == "wan2.7-videoedit"


def test_no_parameters_are_sent_when_none_are_set() -> None:
    w = world()
    body = build_create_request(w.svc, make_job(w, request=EditRequest())).to_body()
    assert "parameters" not in body and "negative_prompt" not in body["input"]


def test_a_used_up_quota_pauses_every_create_once_then_tries_one_again() -> None:
    w = world(MAX_CONCURRENT_TASKS=5)
    first, second = queued(w, "q/one"), queued(w, "q/two")
    w.api.fail_next("create", QuotaExhaustedError(429, "Throttling.AllocationQuota", "quota used up", "r-q"))
    job = try_submit(w.svc, w.store.get(first))  # type: ignore[arg-type]
    assert job.state is JobState.QUEUED and job.next_poll_at == w.clock.now() + QUOTA_PAUSE_SECONDS
    assert try_submit(w.svc, w.store.get(second)).state is JobState.QUEUED  # type: ignore[arg-type]
    assert w.api.calls["create"] == 1 and w.store.slot_holders() == {}  # no storm
    assert w.notifier.types() == [DETAIL_PAUSED] and w.metrics.total(SUBMISSIONS_PAUSED) == 1
    w.clock.advance(QUOTA_PAUSE_SECONDS - 1)
    poll_once(w.svc, PollReport())
    assert w.api.calls["create"] == 1  # still paused
    w.clock.advance(2)
    poll_once(w.svc, PollReport())
    assert w.api.calls["create"] == 3 and w.store.state(first) is JobState.SUBMITTED  # resumed by itself
