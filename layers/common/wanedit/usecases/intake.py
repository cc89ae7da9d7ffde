"""The SubmitFunction's work: an object arrived under incoming/ — pair it, validate the pair, submit.

Pairing needs no lock: each half's event looks for the other with a HEAD. Whichever event is
handled second finds its partner (S3 reads are strongly consistent), so a pair is always completed;
when both find each other, both compute the same job id and the conditional put lets one through.

Folder defaults (`_defaults.json`, nearest folder first) fill in what the sidecar leaves out; a clip
with no sidecar under defaults that carry a prompt is edited with the defaults alone. A sidecar with
`edits` makes one job per edit (see wanedit.recipe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from wanedit.container import Services
from wanedit.domain.budget import estimate
from wanedit.domain.job import Job, SourceObject, job_id_for
from wanedit.domain.lifecycle import JobState
from wanedit.domain.request import BucketImage, EditRequest, FieldOrigin, InlineImage, StoredImage, UrlImage
from wanedit.domain.timing import RESEND_AFTER_SECONDS
from wanedit.media import ProbeError, RangeReader, VideoInfo
from wanedit.metrics import JOBS_ENDED
from wanedit.paths import FOLDER_DEFAULTS_NAME
from wanedit.ports import ObjectInfo
from wanedit.problems import Problem
from wanedit.recipe import Layer, Recipe, recipes
from wanedit.references import BucketKeyRef, DataUriRef, HttpsUrlRef
from wanedit.reports import DETAIL_REJECTED, event_detail, rejection_report
from wanedit.sidecar import Sidecar
from wanedit.sidecar_document import MAX_SIDECAR_BYTES, SidecarError, load_document, sidecar_size_problem
from wanedit.usecases.budget import admit, hold
from wanedit.usecases.dryrun import write_estimate
from wanedit.usecases.ending import output_tags
from wanedit.usecases.longclip.segments import begin, needs_split, with_fixed_seed
from wanedit.usecases.submission import try_submit
from wanedit.validation import check_edit, probe, resolve_key

logger = Logger(child=True)

Outcome = Literal[
    "ignored",
    "waiting",
    "duplicate",
    "rejected",
    "queued",
    "submitted",
    "reconciling",
    "held",
    "dry_run",
    "failed",
    "splitting",
]
_SUBMISSION_OUTCOMES: dict[JobState, Outcome] = {
    JobState.SUBMITTED: "submitted",
    JobState.QUEUED: "queued",
    JobState.HELD: "held",
    JobState.RECONCILING: "reconciling",  # create's answer lost: the poller finds the task
}


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
    defaults = _folder_defaults(svc, stem) if video is not None else []
    if video is not None and sidecar is None and _defaults_have_prompt(defaults):
        return _start_jobs(svc, stem, video, None, defaults, ambiguous)
    if video is None or sidecar is None:
        svc.store.record_half(
            svc.objects.bucket,
            stem,
            kind=kind,
            key=arrived.key,
            version=arrived.identity,
            now=svc.clock.now(),
        )
        logger.info("waiting for the other half", extra={"key": arrived.key, "kind": kind})
        return "waiting"
    return _start_jobs(svc, stem, video, sidecar, defaults, ambiguous)


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


def _source(info: ObjectInfo) -> SourceObject:
    return SourceObject(key=info.key, version_id=info.version_id, etag=info.etag, size=info.size)


@dataclass(frozen=True)
class _File:
    """A sidecar or defaults file as read: its object version and JSON object (or why not)."""

    info: ObjectInfo
    document: dict[str, Any] | None
    problems: list[Problem]


def _read(svc: Services, info: ObjectInfo, label: str) -> _File:
    if info.size > MAX_SIDECAR_BYTES:
        return _File(info, None, [_relabel(sidecar_size_problem(info.size), label)])
    try:
        document, problems = load_document(svc.objects.read_head(info, info.size))
    except SidecarError as error:
        return _File(info, None, [_relabel(p, label) for p in error.problems])
    return _File(info, document, [_relabel(p, label) for p in problems])


def _relabel(problem: Problem, label: str) -> Problem:
    """Problems of a defaults file name that file, not "sidecar"."""
    if label == "sidecar":
        return problem
    return problem.model_copy(update={"field": label + problem.field[len("sidecar") :]})


def _folder_defaults(svc: Services, stem: str) -> list[_File]:
    """The `_defaults.json` files above a clip, farthest first (so the nearest wins when merged)."""
    incoming = svc.layout.incoming
    folders = stem.split("/")[:-1]
    keys = [
        f"{incoming}{'/'.join(folders[:depth]) + '/' if depth else ''}{FOLDER_DEFAULTS_NAME}"
        for depth in range(len(folders) + 1)
    ]
    found = []
    for key in keys:
        info = svc.objects.head(key)
        if info is not None:
            found.append(_read(svc, info, f"defaults({key})"))
    return found


def _defaults_have_prompt(defaults: list[_File]) -> bool:
    """Whether folder defaults alone say what to do (a prompt, or edits)."""
    return any(f.document and ("prompt" in f.document or "edits" in f.document) for f in defaults)


def _start_jobs(
    svc: Services,
    stem: str,
    video: ObjectInfo,
    sidecar: ObjectInfo | None,
    defaults: list[_File],
    ambiguous: list[ObjectInfo],
) -> Outcome:
    """One job per edit the files describe; returns the outcome of the first (they share inputs)."""
    files = [*defaults, *([_read(svc, sidecar, "sidecar")] if sidecar else [])]
    # A job's identity is its clip and the file that asked for it: the sidecar, else the nearest defaults.
    asking = files[-1].info
    unreadable = [p for f in files if f.document is None for p in f.problems]
    if unreadable:
        planned = [Recipe(name=None, sidecar=None, problems=unreadable)]
    else:
        planned = recipes([Layer(f.info.key, f.document or {}) for f in files])
        for recipe in planned:
            recipe.problems = [p for f in files for p in f.problems] + recipe.problems
    video_found = probe(svc.objects.range_reader(video))
    outcomes = [
        _start_job(svc, stem, video, asking, files, recipe, video_found, ambiguous) for recipe in planned
    ]
    return outcomes[0]


def _start_job(
    svc: Services,
    stem: str,
    video: ObjectInfo,
    asking: ObjectInfo,
    files: list[_File],
    recipe: Recipe,
    video_found: VideoInfo | ProbeError,
    ambiguous: list[ObjectInfo],
) -> Outcome:
    bucket = svc.objects.bucket
    job_id = job_id_for(bucket, video.key, video.identity, asking.key, asking.identity, recipe.name or "")
    if svc.store.get(job_id) is not None:
        return "duplicate"
    svc.store.clear_half(bucket, stem)
    problems = recipe.problems + _check(svc, video, asking, recipe.sidecar, video_found, ambiguous)
    if problems or recipe.sidecar is None:
        return _reject(svc, _new_job(svc, job_id, stem, video, asking, recipe, JobState.REJECTED), problems)
    assert isinstance(video_found, VideoInfo)  # a clip that could not be probed is a problem above
    split = needs_split(recipe.sidecar, video_found)
    job = _new_job(svc, job_id, stem, video, asking, recipe, JobState.SPLITTING if split else JobState.QUEUED)
    job.request = _request_record(svc, recipe.sidecar, recipe, asking, files)
    job.long_clip = split
    job.estimate = estimate(
        video_found.duration_s,
        duration=job.request.parameters.duration,
        resolution=job.request.parameters.resolution,
        prices=svc.settings.prices,
    )
    if recipe.sidecar.dry_run:
        write_estimate(svc, job)
        return "dry_run"
    if split:
        job.request = with_fixed_seed(job.request, job_id)
    if not svc.store.put_new(job):
        return "duplicate"
    if split:
        return _start_long_clip(svc, job)
    logger.info("job queued", extra={"job_id": job_id, "video": video.key, "edit": recipe.name})
    return _SUBMISSION_OUTCOMES.get(try_submit(svc, job).state, "failed")


def _start_long_clip(svc: Services, job: Job) -> Outcome:
    """A long clip is admitted against the budgets as a whole, before it is split."""
    admitted = admit(svc, job)
    if admitted is None:
        hold(svc, job)
        return "held"
    begin(svc, admitted)
    return "splitting"


def _new_job(
    svc: Services,
    job_id: str,
    stem: str,
    video: ObjectInfo,
    asking: ObjectInfo,
    recipe: Recipe,
    state: JobState,
) -> Job:
    """The job as it is created: REJECTED (ended at once), SPLITTING or QUEUED (on the poller's lists)."""
    now = svc.clock.now()
    output_stem = f"{stem}.{recipe.name}" if recipe.name else stem
    rejected = state is JobState.REJECTED
    return Job(
        job_id=job_id,
        state=state,
        bucket=svc.objects.bucket,
        stem=output_stem,
        edit=recipe.name,
        video=_source(video),
        sidecar=_source(asking),
        prompt=recipe.sidecar.prompt if recipe.sidecar else "",
        created_at=now,
        updated_at=now,
        next_poll_at=None
        if rejected
        else (now + RESEND_AFTER_SECONDS if state is JobState.SPLITTING else now),
        finished_at=now if rejected else None,
        report_key=svc.layout.failed_report_key(output_stem) if rejected else None,
    )


def _reject(svc: Services, job: Job, problems: list[Problem]) -> Outcome:
    """A job refused before any call: the report first (writing it again is harmless, while a crash
    after the put would lose it), then the record, which decides who announces it."""
    svc.objects.put_json(
        job.report_key or svc.layout.failed_report_key(job.stem),
        rejection_report(job, problems, svc.clock.now()),
        tags=output_tags(job),
    )
    if not svc.store.put_new(job):
        return "duplicate"
    svc.metrics.emit(JOBS_ENDED, dimension=JobState.REJECTED.value)
    svc.notifier.publish(
        DETAIL_REJECTED, event_detail(job, report_key=job.report_key, problems=[p.field for p in problems])
    )
    logger.info("input rejected", extra={"job_id": job.job_id, "problems": len(problems)})
    return "rejected"


def _check(
    svc: Services,
    video: ObjectInfo,
    asking: ObjectInfo,
    sidecar: Sidecar | None,
    video_found: VideoInfo | ProbeError,
    ambiguous: list[ObjectInfo],
) -> list[Problem]:
    """Every problem of one edit, read from S3 with ranged GETs only."""
    objects = svc.objects

    def open_image(key: str) -> RangeReader | None:
        info = objects.head(key)
        return objects.range_reader(info) if info else None

    problems = check_edit(
        sidecar,
        video_found,
        video_key=video.key,
        sidecar_key=asking.key,
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
    return problems


def _request_record(
    svc: Services, sidecar: Sidecar, recipe: Recipe, asking: ObjectInfo, files: list[_File]
) -> EditRequest:
    """What the job keeps: parameters, image references (never data: payloads) and fields' origins."""
    origins = {
        name: recipe.origins.get(name, FieldOrigin(key=asking.key)) for name in sidecar.model_fields_set
    }
    return EditRequest(
        parameters=sidecar.api_parameters(),
        negative_prompt=sidecar.negative_prompt,
        images=tuple(_stored_images(svc, sidecar, asking, files, origins.get("reference_images"))),
        origins=origins,
    )


def _stored_images(
    svc: Services, sidecar: Sidecar, asking: ObjectInfo, files: list[_File], origin: FieldOrigin | None
) -> list[StoredImage]:
    """Each reference image as the job keeps it: pinned bucket versions, URLs, and where inline data is."""
    images: list[StoredImage] = []
    versions = {f.info.key: f.info.version_id for f in files}
    where = origin or FieldOrigin(key=asking.key)
    file_key = where.key or asking.key
    path: tuple[str | int, ...] = ("edits", where.edit) if where.edit is not None else ()
    for index, ref in enumerate(sidecar.references()):
        if isinstance(ref, BucketKeyRef):
            key = resolve_key(ref.key, asking.key, svc.layout.incoming)
            info = svc.objects.head(key)
            images.append(BucketImage(key=key, version_id=info.version_id if info else None))
        elif isinstance(ref, HttpsUrlRef):
            images.append(UrlImage(url=ref.url))
        elif isinstance(ref, DataUriRef):
            # Too big for the job item: the submitter reads it back from the pinned file version.
            images.append(
                InlineImage(
                    key=file_key,
                    version_id=versions.get(file_key),
                    path=(*path, "reference_images", index),
                    mime=ref.mime,
                    chars=len(ref.payload),
                )
            )
    return images
