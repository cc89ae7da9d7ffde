"""Persisting a result, without moto or HTTP: the claim, the order of writes, retries, giving up."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.fakes import World, make_job, world
from wanedit.dashscope import RetryableError, TaskStatus
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState
from wanedit.domain.timing import STALE_PERSISTING_SECONDS
from wanedit.domain.usage import Usage
from wanedit.events import DETAIL_FAILED, DETAIL_SUCCEEDED
from wanedit.ports import ResultDownloadError, ResultUnavailable
from wanedit.usecases.complete import (
    MAX_PERSIST_ATTEMPTS,
    PERSIST_PATIENCE_SECONDS,
    PersistRetry,
    persist_result,
)

URL = "https://results.example/t-1.mp4?Expires=1"


def succeeded(w: World, **fields: Any) -> Job:
    """A job whose task t-1 succeeded (as the poller leaves it)."""
    w.api.unclaimed_task(at=w.clock.now(), status=TaskStatus.SUCCEEDED)
    job = make_job(w, task_id="t-1", **fields)
    w.store.put_new(job)
    now = w.clock.now()
    w.store.transition(job.job_id, [JobState.QUEUED], JobState.SUBMITTING, now=now)
    w.store.transition(job.job_id, [JobState.SUBMITTING], JobState.SUBMITTED, now=now, next_poll_at=now)
    moved = w.store.transition(
        job.job_id,
        [JobState.SUBMITTED],
        JobState.SUCCEEDED,
        now=now,
        next_poll_at=now + 1200,
        video_url=URL,
        usage=Usage(duration=8.0, SR=720),
    )
    assert moved is not None
    w.downloader.results[URL] = b"edited video bytes"
    return moved


def test_the_result_the_manifest_and_the_event_then_persisted() -> None:
    w = world()
    job = succeeded(w)
    assert persist_result(w.svc, job.job_id) is JobState.PERSISTED
    assert w.objects.body("edited/team/clip.mp4") == b"edited video bytes"
    manifest = w.objects.json("edited/team/clip.json")
    assert manifest["task_id"] == "t-1" and manifest["usage"] == {"duration": 8.0, "SR": 720}
    assert manifest["output"]["size"] == len(b"edited video bytes")
    assert w.notifier.types() == [DETAIL_SUCCEEDED]
    after = w.store.get(job.job_id)
    assert after is not None and after.video_url is None and after.manifest_key == "edited/team/clip.json"
    tags = w.objects.objects["incoming/team/clip.mp4"][-1].tags
    assert tags == {"wanedit-job": job.job_id, "wanedit-state": "PERSISTED"}  # archival may take it now


def test_a_repeated_message_does_nothing_more() -> None:
    w = world()
    job = succeeded(w)
    persist_result(w.svc, job.job_id)
    assert persist_result(w.svc, job.job_id) is JobState.PERSISTED
    assert len(w.notifier.published) == 1 and len(w.objects.objects["edited/team/clip.mp4"]) == 1


def test_a_worker_on_it_is_left_alone_until_its_claim_outlives_the_timeout() -> None:
    w = world()
    job = succeeded(w)
    now = w.clock.now()
    w.store.transition(job.job_id, [JobState.SUCCEEDED], JobState.PERSISTING, now=now, persist_started_at=now)
    assert persist_result(w.svc, job.job_id) is JobState.PERSISTING and w.notifier.published == []
    w.clock.advance(STALE_PERSISTING_SECONDS)
    assert persist_result(w.svc, job.job_id) is JobState.PERSISTED


@pytest.mark.parametrize(
    "error", [ResultDownloadError("reset"), OSError("disk"), RuntimeError("S3 refused a part")]
)
def test_a_transient_failure_hands_the_job_back_for_the_redelivery(error: Exception) -> None:
    w = world()
    job = succeeded(w)
    w.downloader.errors.append(error)
    with pytest.raises(PersistRetry):
        persist_result(w.svc, job.job_id)
    after = w.store.get(job.job_id)
    assert after is not None and after.state is JobState.SUCCEEDED and after.persist_started_at is None
    assert after.video_url == URL and after.persist_attempts == 1
    assert persist_result(w.svc, job.job_id) is JobState.PERSISTED  # the redelivery succeeds


def test_minutes_of_result_host_errors_never_lose_a_finished_edit() -> None:
    w = world()
    job = succeeded(w, persist_attempts=MAX_PERSIST_ATTEMPTS + 3, finished_at=w.clock.now() - 600)
    w.downloader.errors.append(ResultDownloadError("HTTP 503"))
    with pytest.raises(PersistRetry):  # ten minutes in, eight attempts: it keeps trying
        persist_result(w.svc, job.job_id)
    assert persist_result(w.svc, job.job_id) is JobState.PERSISTED


def test_after_the_last_attempt_the_job_fails_and_the_message_is_done() -> None:
    w = world()
    job = succeeded(
        w, persist_attempts=MAX_PERSIST_ATTEMPTS - 1, finished_at=w.clock.now() - PERSIST_PATIENCE_SECONDS
    )
    w.downloader.errors.append(ResultDownloadError("reset"))
    assert persist_result(w.svc, job.job_id) is JobState.FAILED  # no PersistRetry: nothing to retry
    report = w.objects.json("failed/team/clip.json")
    assert report["error"]["code"] == "PersistFailed" and w.notifier.types() == [DETAIL_FAILED]


def test_a_refused_link_is_refreshed_from_the_api() -> None:
    w = world()
    job = succeeded(w)
    fresh = w.api.tasks["t-1"]
    fresh.video_url = "https://results.example/t-1.mp4?Expires=2"
    w.downloader.results[fresh.video_url] = b"fresh"
    w.downloader.errors.append(ResultUnavailable(403, "Forbidden"))
    with pytest.raises(PersistRetry, match="fresh link"):
        persist_result(w.svc, job.job_id)
    assert persist_result(w.svc, job.job_id) is JobState.PERSISTED
    assert w.objects.body("edited/team/clip.mp4") == b"fresh"


def test_a_result_the_service_no_longer_has_ends_expired() -> None:
    w = world()
    job = succeeded(w, persist_attempts=MAX_PERSIST_ATTEMPTS)
    del w.api.tasks["t-1"]
    w.downloader.errors.append(ResultUnavailable(404, "Not Found"))
    assert persist_result(w.svc, job.job_id) is JobState.EXPIRED
    assert w.objects.json("failed/team/clip.json")["error"]["code"] == "ResultExpired"


def test_a_refused_link_with_the_api_down_is_retried() -> None:
    w = world()
    job = succeeded(w)
    w.downloader.errors.append(ResultUnavailable(403, "Forbidden"))
    w.api.fail_next("get", RetryableError(503, None, "busy", None))
    with pytest.raises(PersistRetry):
        persist_result(w.svc, job.job_id)
    assert w.store.state(job.job_id) is JobState.SUCCEEDED


def test_a_truncated_result_is_retried_not_published() -> None:
    w = world()
    job = succeeded(w)

    w.downloader.declared[URL] = 100
    with pytest.raises(PersistRetry, match="truncated"):
        persist_result(w.svc, job.job_id)
    assert w.notifier.published == []


def test_a_completion_for_an_unknown_job_is_dropped() -> None:
    assert persist_result(world().svc, "j-nobody") is None
