"""The `wanedit` command (installed into .venv/bin by `make setup`).

  wanedit local up                 run the whole pipeline on this machine until Ctrl-C
  wanedit submit CLIP --prompt ... upload a clip and its sidecar; --wait follows it and downloads the edit
  wanedit jobs | status | fetch | cancel | redrive | report
  wanedit budget                   today's and this month's spend against the budgets, held jobs
  wanedit doctor                   check a stack end to end; prints the fix for each problem
  wanedit conformance --base-url URL   does a DashScope endpoint answer as the emulator assumes?

Every command but `local up` talks to the local stack (found through `.wanedit/local.json`, or
--endpoint) or to a deployed one (--stack NAME, with the usual AWS profile and region settings).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli import conformance
from cli.progress import Progress, step_of
from cli.target import LOCAL_STATE, Target, TargetError, resolve
from wanedit.domain.job import Job, JobState, job_id_for
from wanedit.sidecar import parse_sidecar
from wanedit.sidecar_document import SidecarError

EXIT_FAILED, EXIT_USAGE = 1, 2
PREVIEW_WAIT_SECONDS = 60.0  # after --wait: the sheet is drawn just after the edit is saved
PARAMETERS = (
    "resolution",
    "ratio",
    "duration",
    "audio_setting",
    "prompt_extend",
    "watermark",
    "seed",
    "long_clip",
)


# ----------------------------------------------------------------------------------- local up


def _local_up(args: argparse.Namespace) -> int:
    from local.stack import LOCAL_API_KEY, LocalStack

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    overrides = dict(args.parameter_overrides)
    with LocalStack(
        time_scale=args.time_scale,
        max_concurrent_tasks=int(overrides.get("MaxConcurrentTasks", args.max_concurrent)),
        parameters=overrides,
        api_key=args.api_key or LOCAL_API_KEY,
        accounts=dict(args.account),
        quiet=not args.verbose,
    ) as stack:
        stack.run_background(poll_every=args.poll_every)
        state = stack.write_state(Path(args.local_state))
        r = stack.resources
        print("wanedit local stack is up (Ctrl-C stops it)")
        print(f"  AWS endpoint   {r.endpoint_url}  (region {r.region}, any credentials)")
        print(f"  bucket         {r.bucket}")
        print(f"  emulator       {stack.emulator.base_url}  (tasks {args.time_scale:g}x faster, real clock)")
        accounts = stack.emulator.accounts.describe()
        print(
            "  accounts       "
            + ", ".join(f"{name} ({n} key{'s' * (n > 1)})" for name, n in accounts.items())
        )
        print(f"  state file     {state}")
        print("  try:  wanedit submit clip.mp4 --prompt 'claymation style' --wait")
        print(f"        aws s3 cp clip.mp4 s3://{r.bucket}/incoming/demo/clip.mp4 \\")
        print(f"            --endpoint-url {r.endpoint_url}")
        sys.stdout.flush()
        stop.wait()
        print("stopping")
        state.unlink(missing_ok=True)
    return 0


# ------------------------------------------------------------------------------------- submit


def _sidecar_from_args(args: argparse.Namespace, image_names: list[str]) -> dict[str, Any]:
    document = json.loads(Path(args.sidecar).read_text(encoding="utf-8")) if args.sidecar else {}
    if args.prompt:
        document["prompt"] = args.prompt
    if args.negative_prompt:
        document["negative_prompt"] = args.negative_prompt
    for name in PARAMETERS:
        value = getattr(args, name)
        if value is not None:
            document[name] = value
    if image_names:
        document["reference_images"] = [*document.get("reference_images", []), *image_names]
    return document


def _submit(args: argparse.Namespace, target: Target) -> int:
    clip = Path(args.clip)
    if not clip.is_file():
        print(f"no such file: {clip}", file=sys.stderr)
        return EXIT_USAGE
    svc = target.services()
    layout = svc.layout
    folder = args.folder.strip("/")
    stem = f"{folder}/{clip.stem}" if folder else clip.stem
    images: list[tuple[Path, str]] = []
    image_refs: list[str] = []
    for image in args.image:
        if image.startswith(("https://", "data:")):
            image_refs.append(image)
        else:
            path = Path(image)
            images.append((path, f"{layout.folder_of(stem)}{path.name}"))
            image_refs.append(path.name)
    document = _sidecar_from_args(args, image_refs)
    raw = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    try:
        parse_sidecar(raw)  # the same checks the pipeline makes, before anything is uploaded
    except SidecarError as error:
        print("the sidecar would be rejected:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem.field}: {problem.fix}", file=sys.stderr)
        return EXIT_USAGE
    s3 = target.client("s3")
    bucket = svc.objects.bucket
    for path, key in images:
        s3.upload_file(str(path), bucket, key)
    video_key = f"{layout.incoming}{stem}{clip.suffix.lower()}"
    sidecar_key = layout.sidecar_key(stem)
    sidecar_put = s3.put_object(Bucket=bucket, Key=sidecar_key, Body=raw, ContentType="application/json")
    with clip.open("rb") as body:
        video_put = s3.put_object(Bucket=bucket, Key=video_key, Body=body)
    job_id = job_id_for(
        bucket,
        video_key,
        video_put.get("VersionId") or video_put["ETag"].strip('"'),
        sidecar_key,
        sidecar_put.get("VersionId") or sidecar_put["ETag"].strip('"'),
    )
    print(f"uploaded s3://{bucket}/{video_key} and {sidecar_key} ({target.description})")
    print(f"job {job_id}")
    if not args.wait:
        return 0
    job = _follow(svc, job_id, timeout=args.timeout)
    if job is None or job.state is not JobState.PERSISTED:
        return _explain_failure(svc, job)
    _download(svc, job, Path(args.output))
    return _download_preview(svc, job, Path(args.output), wait=PREVIEW_WAIT_SECONDS)


def _follow(svc: Any, job_id: str, *, timeout: float) -> Job | None:
    progress = Progress()
    started = time.monotonic()
    job = None
    try:
        while time.monotonic() - started < timeout:
            job = svc.store.get(job_id)
            progress.show(job, time.monotonic() - started)
            if job is not None and job.state.is_terminal:
                return job
            time.sleep(1.0)
    finally:
        progress.close()
    print(
        f"still {step_of(job)} after {timeout:.0f} s; follow it with `wanedit status {job_id}`",
        file=sys.stderr,
    )
    return job


def _explain_failure(svc: Any, job: Job | None) -> int:
    if job is None or not job.state.is_terminal:
        return EXIT_FAILED
    print(f"job {job.job_id} ended {job.state.value}", file=sys.stderr)
    if job.report_key:
        report = svc.objects.get_json(job.report_key)
        for problem in report.get("problems", []):
            print(f"  {problem['field']}: {problem['fix']}", file=sys.stderr)
        if report.get("error", {}).get("code"):
            print(f"  {report['error']['code']}: {report['error']['message']}", file=sys.stderr)
            print(f"  fix: {report.get('fix', '')}", file=sys.stderr)
        print(f"  report: s3://{svc.objects.bucket}/{job.report_key}", file=sys.stderr)
    return EXIT_FAILED


def _download(svc: Any, job: Job, output: Path) -> int:
    output.mkdir(parents=True, exist_ok=True)
    for key in (job.output_key, job.manifest_key):
        if key:
            _save(svc, key, output)
    return 0


def _download_preview(svc: Any, job: Job, output: Path, *, wait: float) -> int:
    """The before/after sheet, made just after the edit is saved: waits up to `wait` seconds for it."""
    key = svc.layout.preview_key(job.stem)
    deadline = time.monotonic() + wait
    while svc.objects.head(key) is None:
        if time.monotonic() >= deadline:
            print(f"no preview yet; later: wanedit fetch {job.job_id} --preview", file=sys.stderr)
            return 0 if wait else EXIT_FAILED  # after --wait the edit itself is what succeeded
        time.sleep(1.0)
    output.mkdir(parents=True, exist_ok=True)
    _save(svc, key, output, what="preview")
    return 0


def _save(svc: Any, key: str, output: Path, what: str = "saved") -> None:
    destination = output / key.rsplit("/", 1)[-1]
    svc.objects.download_to(key, str(destination))
    print(f"{what} {destination} ({destination.stat().st_size:,} bytes)")


# ------------------------------------------------------------------------------ jobs & status


def _age(job: Job) -> str:
    seconds = max(0, time.time() - job.created_at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _jobs(args: argparse.Namespace, target: Target) -> int:
    jobs = sorted(target.services().store.list_jobs(), key=lambda j: j.created_at, reverse=True)
    if not args.segments:
        jobs = [j for j in jobs if j.parent_id is None]  # a long clip is one row; its segments on request
    if args.state:
        jobs = [j for j in jobs if j.state.value == args.state.upper()]
    rows = [("JOB", "CLIP", "STATE", "AGE", "TASK")] + [
        (
            j.job_id,
            j.video.key,
            step_of(j).upper() if not j.state.is_terminal else j.state.value,
            _age(j),
            j.task_id or (f"{len(j.segments)} segments" if j.segments else "-"),
        )
        for j in jobs[: args.limit]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _find(svc: Any, ref: str) -> Job | None:
    """A job by id, or the newest job of a clip/sidecar/output key."""
    if ref.startswith("j-"):
        return svc.store.get(ref)
    layout = svc.layout
    stem = None
    for prefix in (layout.incoming, layout.edited, layout.failed):
        if ref.startswith(prefix):
            stem = ref[len(prefix) :].rsplit(".", 1)[0]
    candidates = [j for j in svc.store.list_jobs() if j.stem == stem]
    return max(candidates, key=lambda j: j.created_at) if candidates else None


def _status(args: argparse.Namespace, target: Target) -> int:
    svc = target.services()
    job = _find(svc, args.ref)
    if job is None:
        print(f"no job for {args.ref}", file=sys.stderr)
        return EXIT_FAILED
    shown = job.model_dump(mode="json", exclude_none=True, exclude={"video_url"})
    shown["step"] = step_of(job)
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def _fetch(args: argparse.Namespace, target: Target) -> int:
    svc = target.services()
    job = _find(svc, args.ref)
    if job is None:
        print(f"no job for {args.ref}", file=sys.stderr)
        return EXIT_FAILED
    if job.state is not JobState.PERSISTED:
        if job.state.is_terminal:
            return _explain_failure(svc, job)
        print(f"job {job.job_id} is not done yet ({step_of(job)})", file=sys.stderr)
        return EXIT_FAILED
    if args.preview:
        return _download_preview(svc, job, Path(args.output), wait=0.0)
    return _download(svc, job, Path(args.output))


def _cancel(args: argparse.Namespace, target: Target) -> int:
    from wanedit.usecases.cancel import CancelRefused, cancel_job

    try:
        job = cancel_job(target.services(), args.job)
    except CancelRefused as refused:
        print(f"not canceled: {refused}", file=sys.stderr)
        return EXIT_FAILED
    print(f"job {job.job_id} {job.state.value}")
    return 0


# ------------------------------------------------------------------------------------ redrive


def _redrive(args: argparse.Namespace, target: Target) -> int:
    from wanedit.adapters.messaging import DeadLetterQueue
    from wanedit.usecases.redrive import (
        completion_message_problem,
        ingest_message_problem,
        long_clip_message_problem,
        redrive,
    )

    sqs = target.client("sqs")
    queues = {
        "ingest": (target.ingest_dlq_url, target.ingest_queue_url, ingest_message_problem),
        "complete": (target.complete_dlq_url, target.settings.complete_queue_url, completion_message_problem),
        "longclip": (
            target.longclip_dlq_url,
            target.settings.long_clip_queue_url,
            long_clip_message_problem,
        ),
    }
    chosen = queues if args.queue == "all" else {args.queue: queues[args.queue]}
    for name, (dlq_url, source_url, accept) in chosen.items():
        if not (dlq_url and source_url):
            print(f"{name}: this stack has no such queue (deployed before long clips?)")
            continue
        report = redrive(
            DeadLetterQueue(dlq_url, source_url, client=sqs),
            limit=args.limit,
            dry_run=args.dry_run,
            accept=accept,
        )
        verb = "would replay" if args.dry_run else "replayed"
        print(f"{name}: {verb} {len(report.replayed)}, kept {len(report.kept)} in the DLQ")
        for message_id, why in report.kept.items():
            print(f"  kept {message_id}: {why}")
    return 0


# ------------------------------------------------------------------------------------- doctor


def _doctor(args: argparse.Namespace, target: Target) -> int:
    from cli.doctor import run

    return run(target, now=time.time)


# ------------------------------------------------------------------------------------- report


def _since(text: str | None) -> float:
    if not text:
        return 0.0
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[-1] in units and text[:-1].isdigit():
        return time.time() - int(text[:-1]) * units[text[-1]]
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _report(args: argparse.Namespace, target: Target) -> int:
    since = _since(args.since)
    jobs = [j for j in target.services().store.list_jobs() if j.created_at >= since]
    by_state: dict[str, int] = {}
    seconds = {"720P": 0.0, "1080P": 0.0}
    for job in jobs:
        by_state[job.state.value] = by_state.get(job.state.value, 0) + 1
        # A long clip's usage is its segments' sum: count it once, on the clip.
        if job.usage and job.state is JobState.PERSISTED and job.parent_id is None:
            seconds[job.usage.tier] += job.usage.duration or 0.0
    prices = {"720P": args.price_720p, "1080P": args.price_1080p}
    spend = sum(seconds[t] * prices[t] for t in seconds)
    window = f"since {datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M} UTC" if since else "all time"
    print(f"jobs ({window}): {len(jobs)}")
    for state, count in sorted(by_state.items()):
        print(f"  {state:<10} {count}")
    for tier in seconds:
        cost = seconds[tier] * prices[tier]
        print(f"billed seconds {tier}: {seconds[tier]:.2f}  x {prices[tier]} = {cost:.2f}")
    print(
        f"estimated spend: {spend:.2f} (prices per billed second; set yours with --price-720p/--price-1080p)"
    )
    return 0


def _budget(args: argparse.Namespace, target: Target) -> int:
    from wanedit.usecases.budget import budget_view

    svc = target.services()
    view = budget_view(svc, time.time())
    if not view:
        print("no budget is set (DailyBudget and MonthlyBudget are 0): every valid job is submitted")
    for kind, figures in view.items():
        print(
            f"{kind:<5} {figures['period']}: spent {figures['spent']:.2f},"
            f" committed {figures['committed']:.2f},"
            f" remaining {figures['remaining']:.2f} of {figures['budget']:.2f} {figures['unit']}"
        )
    held = svc.store.held(1000)
    print(f"held jobs: {len(held)}")
    for job in held:
        cost = f"{job.estimate.amount:.2f} {job.estimate.unit}" if job.estimate else "?"
        print(f"  {job.job_id}  {job.stem}  {cost}  uploaded {_age(job)} ago")
    return 0


# ------------------------------------------------------------------------------------- parser


def _parameter_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: write KEY=VALUE, e.g. DailyBudget=5")
    return key, value


def _account_spec(text: str) -> tuple[str, list[str]]:
    from local.emulator import parse_account_spec

    try:
        return parse_account_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wanedit", description="Bucket-triggered video editing with Wan 2.7."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local = commands.add_parser(
        "local", help="run the pipeline on this machine (moto + the DashScope emulator)"
    )
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = local_commands.add_parser("up", help="start the local stack and keep it running until Ctrl-C")
    up.add_argument(
        "--time-scale",
        type=float,
        default=30.0,
        help="the emulated API's tasks run this much faster; the clock it reports stays the real one (30)",
    )
    up.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="a key of the pipeline's account (repeatable: more keys of that one account; the first is"
        " the pipeline's); default a fixed local key",
    )
    up.add_argument(
        "--account",
        type=_account_spec,
        action="append",
        default=[],
        metavar="NAME=KEY[,KEY...]",
        help="another account of the emulated API and its keys (repeatable)",
    )
    up.add_argument("--max-concurrent", type=int, default=5, help="MaxConcurrentTasks (default 5)")
    up.add_argument(
        "--poll-every", type=float, default=60.0, help="the schedule's rate in seconds (default 60)"
    )
    up.add_argument(
        "--parameter-overrides",
        nargs="+",
        type=_parameter_override,
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as sam deploy takes them (e.g. DailyBudget=5 PricePerSecond720P=0.1)",
    )
    up.add_argument("--verbose", action="store_true", help="show the functions' logs")
    up.add_argument(
        "--local-state", default=str(LOCAL_STATE), help=f"where to write the state (default {LOCAL_STATE})"
    )
    up.set_defaults(run=_local_up, needs_target=False)

    def stack_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--stack", help="a deployed stack's name (default: the local stack)")
        sub.add_argument(
            "--endpoint", help="the local stack's AWS endpoint (default: from .wanedit/local.json)"
        )
        sub.add_argument("--region", help="AWS region of a deployed stack")
        sub.add_argument("--profile", help="AWS profile for a deployed stack")
        sub.add_argument("--local-state", default=str(LOCAL_STATE), help="the local stack's state file")
        sub.set_defaults(needs_target=True)
        return sub

    submit = stack_command(
        "submit", "upload a clip and its sidecar; with --wait, follow the job and download the edit"
    )
    submit.add_argument("clip", help="the video file (MP4 or MOV, 2-10 s; longer with --long-clip split)")
    submit.add_argument("--prompt", help="what to change (required unless --sidecar has it)")
    submit.add_argument("--sidecar", help="a sidecar JSON file to start from (flags override its fields)")
    submit.add_argument(
        "--image", action="append", default=[], help="a reference image: file, https URL or data: URI"
    )
    submit.add_argument("--negative-prompt", help="what to keep out of the video")
    submit.add_argument("--resolution", choices=["720P", "1080P"])
    submit.add_argument("--ratio", choices=["16:9", "9:16", "1:1", "4:3", "3:4"])
    submit.add_argument("--duration", type=int, help="cut the output to its first N seconds (2-10)")
    submit.add_argument("--audio-setting", choices=["auto", "origin"])
    submit.add_argument("--prompt-extend", action=argparse.BooleanOptionalAction, default=None)
    submit.add_argument("--watermark", action=argparse.BooleanOptionalAction, default=None)
    submit.add_argument("--seed", type=int)
    submit.add_argument(
        "--long-clip",
        choices=["reject", "split"],
        help="a clip over 10 s: reject it (default) or edit it in 2-10 s segments stitched back",
    )
    submit.add_argument("--folder", default="cli", help="folder under incoming/ (default: cli)")
    submit.add_argument(
        "--wait", action="store_true", help="follow the job to its end and download the result"
    )
    submit.add_argument("--timeout", type=float, default=1800, help="seconds --wait waits (default 1800)")
    submit.add_argument("--output", default=".", help="where --wait saves the edit (default: here)")
    submit.set_defaults(run=_submit)

    jobs = stack_command("jobs", "list jobs, newest first")
    jobs.add_argument("--state", help="only jobs in this state (e.g. FAILED)")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--segments", action="store_true", help="also list long clips' segment jobs")
    jobs.set_defaults(run=_jobs)

    status = stack_command("status", "show one job (by job id, or by a clip, sidecar or output key)")
    status.add_argument("ref", metavar="JOB|KEY")
    status.set_defaults(run=_status)

    fetch = stack_command("fetch", "download a finished job's edited MP4 and manifest")
    fetch.add_argument("ref", metavar="JOB|KEY")
    fetch.add_argument("--output", default=".", help="directory to save into (default: here)")
    fetch.add_argument(
        "--preview", action="store_true", help="download the before/after contact sheet (JPEG) instead"
    )
    fetch.set_defaults(run=_fetch)

    cancel = stack_command("cancel", "cancel a queued job, or one whose task is still PENDING")
    cancel.add_argument("job")
    cancel.set_defaults(run=_cancel)

    redrive = stack_command("redrive", "replay dead-lettered messages into their queues (safe to repeat)")
    redrive.add_argument("--queue", choices=["ingest", "complete", "longclip", "all"], default="all")
    redrive.add_argument("--limit", type=int, default=100, help="at most this many messages per queue")
    redrive.add_argument("--dry-run", action="store_true", help="only say what would be replayed")
    redrive.set_defaults(run=_redrive)

    budget = stack_command("budget", "today's and this month's spend: spent, committed, remaining, held jobs")
    budget.set_defaults(run=_budget)

    doctor = stack_command(
        "doctor", "check that the stack can edit a video now; prints the fix for each problem"
    )
    doctor.set_defaults(run=_doctor)

    report = stack_command("report", "sum jobs, billed seconds and estimated spend")
    report.add_argument("--since", help="a duration (30m, 12h, 7d) or an ISO date (2026-11-01)")
    report.add_argument("--price-720p", type=float, default=0.0, help="price per billed second at 720P")
    report.add_argument("--price-1080p", type=float, default=0.0, help="price per billed second at 1080P")
    report.set_defaults(run=_report)

    conformance.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.needs_target:
        return int(args.run(args))
    try:
        target = resolve(
            stack=args.stack,
            endpoint=args.endpoint,
            region=args.region,
            profile=args.profile,
            local_state=Path(args.local_state),
        )
    except TargetError as error:
        print(f"wanedit: {error}", file=sys.stderr)
        return EXIT_USAGE
    return int(args.run(args, target))


if __name__ == "__main__":
    sys.exit(main())
