"""The SubmitFunction's work: an object arrived under incoming/ — pair it, validate the pair, submit.

Pairing needs no lock: each half's event looks for the other with a HEAD. Whichever event is
handled second finds its partner (S3 reads are strongly consistent), so a pair is always completed;
when both find each other, both compute the same job id and the conditional put lets one through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from wanedit.adapters.s3 import ObjectInfo
from wanedit.container import Services
from wanedit.jobs import Job, JobState, SourceObject, job_id_for
from wanedit.media import RangeReader
from wanedit.problems import Problem
from wanedit.reports import DETAIL_REJECTED, event_detail, rejection_report
from wanedit.sidecar import BucketKeyRef, DataUriRef, HttpsUrlRef, Sidecar
from wanedit.usecases.submission import try_submit
from wanedit.validation import inspect_request, resolve_key

logger = Logger(child=True)

Outcome = Literal["ignored", "waiting", "duplicate", "rejected", "queued", "submitted", "failed"]


@dataclass(frozen=True)
class ObjectEvent:
    """The part of an S3 "Object Created" event that matters here (`key` exactly as the event has it)."""

    bucket: str
    key: str
    version_id: str | None = None


def handle_object_created(svc: Services, event: ObjectEvent) -> Outcome:
    """Pair, validate and submit; every outcome is safe to repeat (events arrive at least once)."""
    if event.bucket != svc.objects.bucket:
        logger.warning("event for another bucket ignored", extra={"bucket": event.bucket})
        return "ignored"
    arrived = _locate(svc, event)
    if arrived is None:
        logger.info("object is gone (deleted or replaced since the event); nothing to do")
        return "ignored"
    classified = svc.layout.classify(arrived.key)
    if classified is None:
        return "ignored"
    kind, stem = classified
    video: ObjectInfo | None
    sidecar: ObjectInfo | None
    if kind == "video":
        video, sidecar = arrived, svc.objects.head(svc.layout.sidecar_key(stem))
        ambiguous: list[ObjectInfo] = []
    else:
        videos = [info for key in svc.layout.video_candidates(stem) if (info := svc.objects.head(key))]
        video, sidecar, ambiguous = (videos[0] if videos else None), arrived, videos[1:]
    if video is None or sidecar is None:
        svc.store.record_half(
            svc.objects.bucket,
            stem,
            kind=kind,
            key=arrived.key,
            version=_identity(arrived),
            now=svc.clock.now(),
        )
        logger.info("waiting for the other half", extra={"key": arrived.key, "kind": kind})
        return "waiting"
    return _start_job(svc, stem, video, sidecar, ambiguous)


def _locate(svc: Services, event: ObjectEvent) -> ObjectInfo | None:
    """The object version the event names.

    S3 URL-encodes keys in its events ("a b+c.mp4" arrives as "a+b%2Bc.mp4"); emulations do not
    always. The decoded key is tried first, the key as sent second.
    """
    version = event.version_id if event.version_id not in (None, "null") else None
    for key in dict.fromkeys((unquote_plus(event.key), event.key)):
        info = svc.objects.head(key, version)
        if info is not None:
            return info
    return None


def _identity(info: ObjectInfo) -> str:
    return info.version_id or info.etag


def _source(info: ObjectInfo) -> SourceObject:
    return SourceObject(key=info.key, version_id=info.version_id, etag=info.etag, size=info.size)


def _start_job(
    svc: Services, stem: str, video: ObjectInfo, sidecar: ObjectInfo, ambiguous: list[ObjectInfo]
) -> Outcome:
    bucket = svc.objects.bucket
    job_id = job_id_for(bucket, video.key, _identity(video), sidecar.key, _identity(sidecar))
    if svc.store.get(job_id) is not None:
        return "duplicate"
    now = svc.clock.now()
    svc.store.clear_half(bucket, stem)
    parsed, problems = _validate(svc, video, sidecar, ambiguous)
    job = Job(
        job_id=job_id,
        state=JobState.REJECTED if problems else JobState.QUEUED,
        bucket=bucket,
        stem=stem,
        video=_source(video),
        sidecar=_source(sidecar),
        prompt=parsed.prompt if parsed else "",
        request=_request_record(parsed, sidecar.key, svc, problems) if parsed else {},
        created_at=now,
        updated_at=now,
        next_poll_at=None if problems else now,
        finished_at=now if problems else None,
        report_key=svc.layout.failed_report_key(stem) if problems else None,
    )
    if problems:
        # Report first: writing it again is harmless, while a crash after the put would lose it.
        _write_rejection(svc, job, problems)
        if svc.store.put_new(job):
            _announce_rejection(svc, job, problems)
            return "rejected"
        return "duplicate"
    if not svc.store.put_new(job):
        return "duplicate"
    logger.info("job queued", extra={"job_id": job_id, "video": video.key})
    submitted = try_submit(svc, job)
    return {JobState.SUBMITTED: "submitted", JobState.QUEUED: "queued"}.get(submitted.state, "failed")  # type: ignore[return-value]


def _validate(
    svc: Services, video: ObjectInfo, sidecar_info: ObjectInfo, ambiguous: list[ObjectInfo]
) -> tuple[Sidecar | None, list[Problem]]:
    """Every problem with the pair, read from S3 with ranged GETs only."""
    objects = svc.objects

    def open_image(key: str) -> RangeReader | None:
        info = objects.head(key)
        return objects.range_reader(info) if info else None

    sidecar, problems = inspect_request(
        video_key=video.key,
        sidecar_key=sidecar_info.key,
        video=objects.range_reader(video),
        sidecar=objects.range_reader(sidecar_info),
        open_image=open_image,
        incoming_prefix=svc.layout.incoming,
    )
    for other in ambiguous:
        problems.append(
            Problem(
                field="video_key",
                value=other.key,
                limit="one video per sidecar",
                fix=f"both {video.key} and {other.key} exist for one sidecar; remove or rename one of them",
            )
        )
    return sidecar, problems


def _request_record(
    sidecar: Sidecar, sidecar_key: str, svc: Services, problems: list[Problem]
) -> dict[str, Any]:
    """What the job keeps of the sidecar: parameters and image references, never data: payloads."""
    images: list[dict[str, Any]] = []
    public: list[str] = []
    for index, ref in enumerate(sidecar.references()):
        if isinstance(ref, BucketKeyRef):
            key = resolve_key(ref.key, sidecar_key, svc.layout.incoming)
            info = None if problems else svc.objects.head(key)
            images.append({"key": key, "version_id": info.version_id if info else None})
            public.append(key)
        elif isinstance(ref, HttpsUrlRef):
            images.append({"url": ref.url})
            public.append(ref.url)
        elif isinstance(ref, DataUriRef):
            images.append({"index": index})
            public.append(f"data:{ref.mime} (inline, {len(ref.payload)} base64 chars)")
    record: dict[str, Any] = {"parameters": sidecar.api_parameters(), "reference_images": images}
    record["reference_images_public"] = public
    if sidecar.negative_prompt:
        record["negative_prompt"] = sidecar.negative_prompt
    return record


def _write_rejection(svc: Services, job: Job, problems: list[Problem]) -> None:
    svc.objects.put_json(
        job.report_key or svc.layout.failed_report_key(job.stem),
        rejection_report(job, problems, svc.clock.now()),
        tags={"wanedit-job": job.job_id, "wanedit-state": JobState.REJECTED.value},
    )


def _announce_rejection(svc: Services, job: Job, problems: list[Problem]) -> None:
    svc.notifier.publish(
        DETAIL_REJECTED,
        event_detail(job, report_key=job.report_key, problems=[p.field for p in problems]),
    )
    logger.info("input rejected", extra={"job_id": job.job_id, "problems": len(problems)})
