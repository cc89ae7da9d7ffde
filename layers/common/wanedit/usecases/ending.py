"""How a job ends: the one place that orders the report, the event and the terminal transition.

Every terminal move of a job (persisted, failed, canceled, expired) goes through `end_job`:

- a job held by one worker (the submitter, the single poller, a persist or split/stitch claim)
  writes what users read first — the report or manifest, then the event — and moves to its end
  last. A crash before the move leaves the job where it was, so the next run ends it again (the
  report is rewritten, the event repeated: at least once). Moving first would let a crash lose
  the report and the event for good, since nothing revisits a terminal job.
- a job no single worker holds (`lifecycle.UNHELD`: QUEUED, which any submitter may take at any
  moment) moves first, so a lost race never announces an end that did not happen.
- a long clip's segment ends quietly and wakes its parent, which ends the clip as a whole
  (one report, one event, naming the segment).

Once ended, the job is settled against the budgets (`budget.settle`): its estimate becomes what it
really cost. A crash before that leaves it to the poller's sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Unpack

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.job import Job, JobChanges
from wanedit.domain.lifecycle import UNHELD, JobState
from wanedit.messages import LongClipMessage
from wanedit.metrics import JOBS_ENDED
from wanedit.paths import FOLDER_DEFAULTS_NAME
from wanedit.reports import DETAIL_FAILED, DETAIL_SUCCEEDED, event_detail, failure_report
from wanedit.usecases.budget import settle

logger = Logger(child=True)

Announce = Callable[[Job], None]
"""Writes what users read of an ended job (report or manifest, tags, event), given the job as ended."""


def end_job(
    svc: Services,
    job: Job,
    expected: Collection[JobState],
    to: JobState,
    *,
    announce: Announce | None,
    **changes: Unpack[JobChanges],
) -> Job:
    """Move `job` from one of `expected` to the terminal `to`, announcing it in the safe order.

    Returns the job as it now stands (as another worker left it, if that worker got there first).
    """
    if job.state not in expected:
        return job
    now = svc.clock.now()
    if announce is not None and UNHELD.isdisjoint(expected):
        announce(job.model_copy(update={"state": to, "updated_at": now, **changes}))
    ended = svc.store.transition(job.job_id, expected, to, now=now, **changes)
    if ended is None:
        logger.warning("job ended elsewhere meanwhile", extra={"job_id": job.job_id, "state": to.value})
        return svc.store.get(job.job_id) or job
    if announce is not None and not UNHELD.isdisjoint(expected):
        announce(ended)
    settle(svc, ended)
    svc.metrics.emit(JOBS_ENDED, dimension=to.value)
    logger.info("job ended", extra={"job_id": job.job_id, "state": to.value, "code": ended.error_code})
    return ended


@dataclass(frozen=True)
class Failure:
    """Why a job ends otherwise than PERSISTED, as its report and event tell it."""

    code: str | None
    message: str | None
    to: JobState = JobState.FAILED
    request_id: str | None = None
    segment: int | None = None  # a long clip's segment that failed (named in the report and event)


def fail(svc: Services, job: Job, expected: Collection[JobState], failure: Failure) -> Job:
    """End a job FAILED, CANCELED or EXPIRED: a report in failed/ and a `Video Edit Failed` event.

    A long clip's segment gets neither: its parent is woken, and the poller ends the whole clip.
    """
    now = svc.clock.now()
    request_ids = job.with_request_id(failure.request_id)
    if job.is_segment:
        ended = end_job(
            svc,
            job,
            expected,
            failure.to,
            announce=None,
            error_code=failure.code,
            error_message=failure.message,
            request_ids=request_ids,
            finished_at=now,
        )
        wake_parent(svc, job)
        return ended
    return end_job(
        svc,
        job,
        expected,
        failure.to,
        announce=lambda ended: _report_failure(svc, ended, failure),
        error_code=failure.code,
        error_message=failure.message,
        request_ids=request_ids,
        finished_at=now,
        report_key=svc.layout.failed_report_key(job.stem),
    )


def wake_parent(svc: Services, segment: Job) -> None:
    """Have the poller look at a segment's long clip now (a segment ended or was saved)."""
    if segment.parent_id is not None:
        now = svc.clock.now()
        svc.store.reschedule(segment.parent_id, JobState.SEGMENTED, now=now, next_poll_at=now)


def _report_failure(svc: Services, ended: Job, failure: Failure) -> None:
    report_key = ended.report_key or svc.layout.failed_report_key(ended.stem)
    svc.objects.put_json(
        report_key,
        failure_report(ended, svc.clock.now(), segment=failure.segment),
        tags=output_tags(ended),
    )
    svc.notifier.publish(
        DETAIL_FAILED,
        event_detail(
            ended,
            error_code=failure.code,
            error_message=failure.message,
            report_key=report_key,
            segment=failure.segment,
        ),
    )


def publish_saved(
    svc: Services, done: Job, *, manifest_key: str, document: dict[str, Any], **detail: Any
) -> None:
    """What follows a saved edit, in order: its manifest, its inputs tagged for archival, its preview
    asked of the LongClipFunction, then the success event (`detail`: the event's own fields)."""
    svc.objects.put_json(manifest_key, document, tags=output_tags(done))
    tag_sources(svc, done)
    svc.long_clips.send(LongClipMessage(action="preview", job_id=done.job_id))
    svc.notifier.publish(DETAIL_SUCCEEDED, event_detail(done, manifest_key=manifest_key, **detail))


def output_tags(job: Job) -> dict[str, str]:
    """The tags of everything a job writes (and of its inputs once edited): lifecycle rules filter on them."""
    return {"wanedit-job": job.job_id, "wanedit-state": job.state.value}


def tag_sources(svc: Services, job: Job) -> None:
    """Tag a finished job's clip and sidecar, so the bucket's lifecycle rules may archive them.

    A defaults file serves other clips: it is never tagged.
    """
    for source in (job.video, job.sidecar):
        if not source.key.endswith(FOLDER_DEFAULTS_NAME):
            svc.objects.tag_version(source.key, source.version_id, output_tags(job))
