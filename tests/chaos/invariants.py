"""What must hold after every chaos run, whatever the faults, and the account of a run that broke it.

- one outcome: every job terminal (the run went on until nothing was due, or past every deadline),
  by exactly one terminal transition;
- tasks: every task the service made is tied to the job whose input it was given (the presigned
  URL's key and version, and the prompt); no job has two SUCCEEDED tasks, nor records (adopts) a
  task made for another job's input; a job's tasks other than the one it recorded ended FAILED or
  CANCELED or were lost by the service (a lost create's task the reconciler could not prove is the
  job's, and a long-clip segment's retries): never running on unknown, never a second billed
  result. A task still running when its 24 h lifetime ends counts as lost by the service (it
  answers UNKNOWN from then on);
- every SUCCEEDED task is persisted (manifest for its job and task, the edited MP4 complete), unless
  its job ended EXPIRED because the service refused the result for good (`ResultExpired`);
- every edited MP4 ever written is the whole result (no truncated version was ever published);
- every other end is reported in failed/ and announced; nothing left in a DLQ after the redrives;
- the last upload of every clip has its job;
- slots and the service's tasks in flight never above the cap (sampled at every step, and from the
  service's own task records);
- the API key appears in no log line, event, table item or object the pipeline wrote.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from types import SimpleNamespace
from typing import Any

import av

from tests.chaos.world import HORIZON_SECONDS, TASK_LIFETIME, ChaosWorld, Run, task_input
from tests.faults.harness import leak_check, max_in_flight
from wanedit.domain.job import Job
from wanedit.domain.lifecycle import JobState

SPENT = ("FAILED", "CANCELED")  # task ends with no result and no bill
RESULT_FRAMES = 16  # the result clip: 2 s at 8 fps (tests/chaos/conftest.py)
TIMELINE_LINES = 250


def violations(world: ChaosWorld, run: Run, outputs: dict[str, bytes]) -> list[str]:
    found: list[str] = []
    jobs = run.jobs
    cap = run.schedule.cap
    at = f"{(run.ended_at - run.t0) / 3600:.1f} h after the start"

    # one outcome per job, and a run that went quiet
    if run.ended_at >= run.horizon:
        found.append(f"still busy {HORIZON_SECONDS / 3600:.0f} h after the last action, past every deadline")
    for job in jobs:
        if not job.state.is_terminal:
            found.append(f"{_job(job)} left {job.state.value} {at} (next poll {_rel(run, job.next_poll_at)})")
        elif run.terminal.get(job.job_id) != [job.state.value]:
            found.append(f"{_job(job)} ended by the terminal transitions {run.terminal.get(job.job_id)}")

    # tasks, tied to jobs by their input
    tasks = run.tasks + run.vanished
    # Lost by the service: forgotten while live, or still running at the end of its 24 h lifetime
    # (queries say UNKNOWN from then on, so no job can know what became of it).
    lost = {task.task_id for task in run.vanished} | {
        task.task_id for task in run.tasks if (task.end_at or run.ended_at) - task.submit_at >= TASK_LIFETIME
    }
    per_job: dict[str, list[Any]] = defaultdict(list)
    for task in tasks:
        key, version, prompt = task_input(task, run.bucket)
        matches = [
            j for j in jobs if j.video.key == key and j.video.version_id == version and j.prompt == prompt
        ]
        if len(matches) != 1:
            found.append(f"task {task.task_id[:8]} ({key} {version} {prompt!r}) matches {len(matches)} jobs")
            continue
        per_job[matches[0].job_id].append(task)
    by_id = {job.job_id: job for job in jobs}
    for job_id, mine in per_job.items():
        job = by_id[job_id]
        succeeded = [t for t in mine if t.status == "SUCCEEDED" and t.task_id not in lost]
        if len(succeeded) > 1:
            found.append(f"{_job(job)} has {len(succeeded)} SUCCEEDED (billed) tasks: {_ids(succeeded)}")
        for task in mine:
            if task.task_id == job.task_id or task.status in SPENT or task.task_id in lost:
                continue
            fate = "ended with a result" if task.status == "SUCCEEDED" else "is still running"
            found.append(
                f"{_job(job)} has a second task {task.task_id[:8]} ({task.status}) besides its own "
                f"{(job.task_id or '-')[:8]}: a task the job did not know of {fate}"
            )
    made = {task.task_id for task in tasks}
    tied = {task.task_id: job_id for job_id, mine in per_job.items() for task in mine}
    for job in jobs:
        if job.task_id and job.task_id not in made:
            found.append(f"{_job(job)} records task {job.task_id[:8]}, which the service never made")
        elif job.task_id and tied.get(job.task_id) not in (None, job.job_id):
            other = by_id[tied[job.task_id]]
            found.append(
                f"{_job(job)} adopted task {job.task_id[:8]}, which was made for {_job(other)}'s input"
                f" ({other.video.key})"
            )
        if job.segments and per_job.get(job.job_id):
            found.append(f"{_job(job)} is a long clip, yet {len(per_job[job.job_id])} task(s) got it whole")

    # every finished edit is saved
    keys = {name.split("#", 1)[0] for name in outputs}
    for task in tasks:
        if task.status != "SUCCEEDED" or task.task_id in lost:
            continue
        owner = next((by_id[j] for j, mine in per_job.items() if task in mine), None)
        if owner is None:
            continue
        if owner.state is JobState.EXPIRED and owner.error_code == "ResultExpired":
            continue
        if owner.state is not JobState.PERSISTED or owner.task_id != task.task_id:
            found.append(
                f"task {task.task_id[:8]} SUCCEEDED but {_job(owner)} ended {owner.state.value}"
                f" ({owner.error_code}: {owner.error_message}) with task {(owner.task_id or '-')[:8]}"
            )
        elif owner.parent_id is None and not _manifest_for(outputs, owner):
            found.append(f"{_job(owner)} PERSISTED without a manifest naming it and task {task.task_id[:8]}")
    for name, body in outputs.items():
        key = name.split("#", 1)[0]
        if (
            key.endswith(".mp4")
            and "/segments/" not in key
            and body != world.result
            and not any(key == job.output_key and job.segments for job in jobs)  # a stitch is ours
        ):
            version = name.split("#", 1)[1][:8]
            found.append(
                f"s3://{key} (version {version}) is not the whole result: "
                f"{len(body)} of {len(world.result)} bytes"
            )
    for job in jobs:
        if not job.state.is_terminal or job.parent_id is not None:
            continue
        if job.state is JobState.PERSISTED:
            if job.output_key not in keys:
                found.append(f"{_job(job)} PERSISTED but {job.output_key} is not in the bucket")
            elif job.segments:
                found += _stitched(outputs, job, by_id)
        elif job.report_key not in keys:
            found.append(f"{_job(job)} ended {job.state.value} without a report in failed/")
    announced = Counter(event["detail"]["job_id"] for event in world.outcome_events)
    for job in jobs:
        if job.state.is_terminal and job.parent_id is None and not announced[job.job_id]:
            found.append(f"{_job(job)} ended {job.state.value} without an outcome event")
    if run.dlq:
        found.append(f"{run.dlq} message(s) still dead-lettered after {run.redrives} redrive(s)")

    # the last upload of every clip has its job
    for stem, final in run.finals.items():
        video, sidecar = final.get("video"), final.get("sidecar")
        if video is None or sidecar is None:
            continue
        if not any(
            j.stem == stem and j.video.version_id == video and j.sidecar.version_id == sidecar for j in jobs
        ):
            found.append(f"the last upload of {stem} (video {video[:6]}, sidecar {sidecar[:6]}) has no job")

    # never above the cap
    found += [f"over the cap: {line}" for line in run.samples.over_cap[:5]]
    records = [task for task in tasks if task.task_id not in lost] + [
        SimpleNamespace(submit_at=task.submit_at, end_at=run.lost_at[task.task_id], final=True)
        for task in run.vanished
    ]
    peak = max_in_flight(records, run.ended_at, lifetime=TASK_LIFETIME)
    if peak > cap:
        found.append(f"the service held {peak} tasks in flight at once, cap {cap} (its own records)")

    # the API key stays a secret
    try:
        leak_check(world, outputs)
    except AssertionError as leak:
        found.append(f"API key leak: {leak}")
    return found


def _stitched(outputs: dict[str, bytes], job: Job, by_id: dict[str, Job]) -> list[str]:
    """A PERSISTED long clip: every segment saved, and every version of its video the whole stitch
    (each edited segment is the 2 s, 16-frame result)."""
    problems = [
        f"{_job(job)} PERSISTED but its segment {segment.index} is {by_id[segment.job_id].state.value}"
        for segment in job.segments
        if segment.job_id in by_id and by_id[segment.job_id].state is not JobState.PERSISTED
    ]
    if not _manifest_for(outputs, job):
        problems.append(f"{_job(job)} PERSISTED without a manifest naming it")
    expected = RESULT_FRAMES * len(job.segments)
    for name, body in outputs.items():
        if name.split("#", 1)[0] == job.output_key:
            frames = _frames(body)
            if frames != expected:
                problems.append(f"{_job(job)}: s3://{name} decodes to {frames} frames, not {expected}")
    return problems


def _frames(body: bytes) -> int:
    try:
        with av.open(io.BytesIO(body), mode="r") as container:
            return sum(1 for _ in container.decode(video=0))
    except (av.FFmpegError, IndexError):
        return -1


def _manifest_for(outputs: dict[str, bytes], job: Job) -> bool:
    """A version of the job's manifest names the job (and its task, a long clip's every segment task)."""
    tasks = [job.task_id] if job.task_id else []
    for name, body in outputs.items():
        if name.split("#", 1)[0] == job.manifest_key:
            manifest = json.loads(body)
            text = json.dumps(manifest)
            if manifest.get("job_id") == job.job_id and all(task in text for task in tasks):
                return True
    return False


def _job(job: Job) -> str:
    return f"{job.stem} job {job.job_id[:10]}"


def _ids(tasks: list[Any]) -> str:
    return ", ".join(t.task_id[:8] for t in tasks)


def _rel(run: Run, at: float | None) -> str:
    return "never" if at is None else f"t={at - run.t0:.0f}s"


def figures(run: Run) -> dict[str, Any]:
    """One schedule's row of the chaos summary."""
    tasks = run.tasks + run.vanished
    return {
        "seed": run.schedule.seed,
        "jobs": len(run.jobs),
        "tasks": len(tasks),
        "states": dict(Counter(job.state.value for job in run.jobs)),
        "task_states": dict(Counter("LOST" if t in run.vanished else t.status for t in tasks)),
        "kinds": list(run.schedule.kinds),
        "fired": len(run.fired),
        "planned": len(run.fired) + len(run.unfired),
        "sim_hours": round((run.ended_at - run.t0) / 3600, 3),
        "wall": round(run.wall_seconds, 3),
    }


def account(run: Run, found: list[str]) -> str:
    """A readable account of one run: the schedule, what broke, the jobs and tasks, the timeline."""
    s = run.schedule
    lines = [
        f"CHAOS seed {s.seed}: {len(found)} violation(s)",
        f"replay: CHAOS_SEED={s.seed} .venv/bin/python -m pytest tests/chaos -k replay -s",
        "",
        s.describe(),
        "",
        "violations:",
        *(f"  - {v}" for v in found),
        "",
        f"fault plans fired: {', '.join(run.fired) or 'none'}",
        f"fault plans that never fired: {', '.join(run.unfired) or 'none'}",
        f"samples: {run.samples.count}, peak slots {run.samples.max_slots}, peak in flight "
        f"{run.samples.max_in_flight} (RUNNING {run.samples.max_running}), cap {s.cap}",
        f"result downloads cut short: {run.cut_short}; redrives: {run.redrives}; "
        f"poll invocations that raised: {'; '.join(run.errors[:5]) or 'none'}",
        "",
        "jobs:",
    ]
    for job in sorted(run.jobs, key=lambda j: j.created_at):
        lines.append(
            f"  {job.stem:14} {job.job_id[:10]}  {job.state.value:10} task {(job.task_id or '-')[:8]:8}"
            f"  video {(job.video.version_id or '-')[:6]} sidecar {(job.sidecar.version_id or '-')[:6]}"
            f"  {job.error_code or ''}"
        )
    lines.append("tasks (the service's records):")
    for task in run.tasks + run.vanished:
        key, version, prompt = task_input(task, run.bucket)
        status = f"LOST({task.status})" if task in run.vanished else task.status
        ended = f"{task.end_at - run.t0:.0f}s" if task.end_at is not None else "-"
        lines.append(
            f"  {task.task_id[:8]}  {status:16} created t={task.submit_at - run.t0:.0f}s ended {ended}"
            f"  for {key} {(version or '-')[:6]} ({prompt.split(':')[0]})"
        )
    timeline = run.timeline
    if len(timeline) > TIMELINE_LINES:
        lines.append(f"timeline (last {TIMELINE_LINES} of {len(timeline)} lines):")
        timeline = timeline[-TIMELINE_LINES:]
    else:
        lines.append("timeline:")
    lines += [f"  {line}" for line in timeline]
    return "\n".join(lines)
