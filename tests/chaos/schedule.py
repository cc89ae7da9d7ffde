"""A chaos schedule: what one run uploads, and every fault it combines, drawn from one seed.

Why a seeded generator of our own rather than Hypothesis: one schedule is a whole pipeline run
(a second or so of moto, handlers and emulator), so shrinking, which re-runs a failing case dozens
of times, would cost minutes per failure and would shrink over thread timing as much as over the
schedule; and a Hypothesis reproduction is an opaque blob. Here `generate(seed)` is a pure function
of the seed: a failure prints its seed, `CHAOS_SEED=<seed>` replays it, and the schedule reads as
a list of dated faults (`Schedule.describe`). Everything random in a run (run times, backoff
jitter, moto's ids) is seeded from it too.

Times are seconds after the run's start. Faults are armed at their time and consumed by the next
matching requests (the emulator's fault model); crashes and adapter errors hit the nth matching
adapter call from the start (the fault harness's `Plan`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

# What the drawn faults hit: the adapter calls the pipeline makes (fault harness targets).
CRASH_POINTS: tuple[tuple[str, str, str | None], ...] = (
    # (target, method, the state a store transition moves to, if that is what selects it)
    ("store", "put_new", None),
    ("store", "acquire_slot", None),
    ("store", "release_slot", None),
    ("store", "claim_task", None),
    ("store", "get", None),
    ("store", "active", None),
    ("store", "transition", "SUBMITTING"),
    ("store", "transition", "SUBMITTED"),
    ("store", "transition", "RECONCILING"),
    ("store", "transition", "QUEUED"),
    ("store", "transition", "SUCCEEDED"),
    ("store", "transition", "PERSISTING"),
    ("store", "transition", "PERSISTED"),
    ("store", "transition", "FAILED"),
    ("store", "transition", "CANCELED"),
    ("store", "transition", "EXPIRED"),
    ("api", "create_task", None),
    ("api", "get_task", None),
    ("api", "list_tasks", None),
    ("api", "iter_tasks", None),
    ("objects", "head", None),
    ("objects", "presign_get_version", None),
    ("objects", "put_json", None),
    ("objects", "upload_stream", None),
    ("objects", "tag_version", None),
    ("s3", "upload_part", None),
    ("s3", "complete_multipart_upload", None),
    ("notifier", "publish", None),
    ("completion", "send", None),
    ("downloader", "open", None),
    # long clips (the split and stitch workers, the messages that start them), and looking again later
    ("store", "transition", "SEGMENTED"),
    ("store", "transition", "STITCHING"),
    ("objects", "download_version", None),
    ("objects", "upload_file", None),
    ("long_clips", "send", None),  # split, stitch and preview messages
    ("store", "reschedule", None),
)
# AWS calls that may fail with a transient service error (before: not done; after: done, answer lost).
AWS_ERROR_POINTS: tuple[tuple[str, str, str | None], ...] = tuple(
    point for point in CRASH_POINTS if point[0] in ("store", "objects", "s3", "notifier", "completion")
)

FaultKind = Literal[
    "throttle_storm",
    "server_error",
    "timeout",
    "lost_create",
    "list_error",
    "result_error",
    "task_end",
    "vanish",
    "crash",
    "aws_error",
    "dup_events",
    "late_events",
    "reupload",
    "cancel",
    "withdraw",
    "bad_input",
]
FAULT_KINDS: tuple[FaultKind, ...] = FaultKind.__args__  # type: ignore[attr-defined]

LONG_CLIP_SHARE = 0.12  # schedules with one long clip among their clips
SHARED_PROMPT_SHARE = 0.3  # schedules whose clips all have the same prompt
BURST_SHARE = 0.3  # schedules whose clips are all uploaded at once
# The emulator holds a timed-out create this long (real seconds); the chaos clients time out first.
HOLD_SECONDS = 0.6


@dataclass(frozen=True)
class Delivery:
    """How the S3 event of one upload reaches the SubmitFunction (EventBridge and SQS are at least
    once and unordered): `copies` deliveries, the first `delay` seconds late, the others `spacing` apart."""

    copies: int = 1
    delay: float = 0.0
    spacing: float = 0.0

    @property
    def plain(self) -> bool:
        return self.copies == 1 and self.delay == 0.0

    def describe(self) -> str:
        parts = []
        if self.delay:
            parts.append(f"late +{self.delay:.0f}s")
        if self.copies > 1:
            parts.append(f"x{self.copies}" + (f" every {self.spacing:.0f}s" if self.spacing else ""))
        return ", ".join(parts)


@dataclass(frozen=True)
class Upload:
    """A user's upload: a clip and its sidecar (a pair), or a new version of one of them."""

    at: float
    stem: str
    what: Literal["pair", "video", "sidecar"]
    sidecar_version: int = 1  # each sidecar version has its own prompt (it tells tasks apart)
    sidecar_first: bool = False
    gap: float = 0.0  # between the two halves of a pair
    valid: bool = True
    video_delivery: Delivery = Delivery()
    sidecar_delivery: Delivery = Delivery()

    def describe(self) -> str:
        if self.what == "pair":
            order = "sidecar, then clip" if self.sidecar_first else "clip, then sidecar"
            what = f"upload {self.stem} ({order}, {self.gap:.0f}s apart)"
        elif self.what == "video":
            what = f"re-upload {self.stem}.mp4 (a new version)"
        else:
            what = f"re-upload {self.stem}.json (sidecar v{self.sidecar_version})"
        if not self.valid:
            what += " with an invalid sidecar"
        events = []
        if self.what in ("pair", "video") and not self.video_delivery.plain:
            events.append(f"clip event {self.video_delivery.describe()}")
        if self.what in ("pair", "sidecar") and not self.sidecar_delivery.plain:
            events.append(f"sidecar event {self.sidecar_delivery.describe()}")
        return what + (f" [{'; '.join(events)}]" if events else "")


@dataclass(frozen=True)
class ApiFault:
    """Armed in the emulator at `at`: the next `times` requests to `endpoint` fail this way."""

    at: float
    endpoint: str  # create | query | list | cancel | result
    kind: str = "http"  # http | hang | delay | drop | drop_after_create
    status: int = 500
    code: str | None = None
    times: int = 1

    def describe(self) -> str:
        how = f"{self.status}" + (f" {self.code}" if self.code else "") if self.kind == "http" else self.kind
        return f"{self.endpoint} -> {how}" + (f" x{self.times}" if self.times > 1 else "")


@dataclass(frozen=True)
class TaskEnd:
    """The next task created after `at` ends FAILED or CANCELED, or runs `seconds` (past 24 h: stuck)."""

    at: float
    outcome: Literal["FAILED", "CANCELED", "SLOW"]
    seconds: float = 0.0

    def describe(self) -> str:
        if self.outcome == "SLOW":
            return f"next task runs {self.seconds / 3600:.0f} h (past its 24 h lifetime)"
        return f"next task ends {self.outcome}"


@dataclass(frozen=True)
class Vanish:
    """At `at`, the service loses one live task (queries answer UNKNOWN from then on)."""

    at: float
    pick: int  # which of the live tasks (modulo their number)

    def describe(self) -> str:
        return "the service loses a live task (UNKNOWN)"


@dataclass(frozen=True)
class Truncate:
    """The next `times` result downloads after `at` end early (connection broken mid-body)."""

    at: float
    times: int = 1

    def describe(self) -> str:
        return "result download truncated" + (f" x{self.times}" if self.times > 1 else "")


@dataclass(frozen=True)
class Crash:
    """The nth matching adapter call crashes the process (or fails with an AWS error), before or after it."""

    target: str
    method: str
    nth: int
    when: Literal["before", "after"]
    moving_to: str | None = None
    aws_error: str | None = None  # a ClientError code instead of a crash
    times: int = 1

    def describe(self) -> str:
        call = f"{self.target}.{self.method}" + (f"(-> {self.moving_to})" if self.moving_to else "")
        what = f"AWS {self.aws_error}" if self.aws_error else "crash"
        return f"{what} {self.when} {call} #{self.nth}" + (f" x{self.times}" if self.times > 1 else "")


@dataclass(frozen=True)
class UserAction:
    """At `at`, the user cancels the stem's newest job (`wanedit cancel`) or deletes one of its files."""

    at: float
    stem: str
    action: Literal["cancel", "delete_sidecar", "delete_video"]

    def describe(self) -> str:
        return {
            "cancel": f"user cancels {self.stem}'s newest job",
            "delete_sidecar": f"user deletes {self.stem}.json",
            "delete_video": f"user deletes {self.stem}.mp4",
        }[self.action]


Timed = ApiFault | TaskEnd | Vanish | Truncate | UserAction | Upload


@dataclass
class Schedule:
    seed: int
    cap: int
    stems: list[str]
    long_stems: list[str]  # clips of 12 s with "long_clip": "split": segments, one task each, a stitch
    shared_prompt: bool  # every clip edited with one prompt (as a folder's _defaults.json gives them)
    kinds: list[FaultKind]
    run_seconds: list[float]  # the emulator's run time of each task, in creation order
    poll_phase: float  # when in the first minute the schedule first runs the poller
    timed: list[Timed] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)

    @property
    def last_action_at(self) -> float:
        return max((item.at for item in self.timed), default=0.0)

    def describe(self) -> str:
        long = f" ({', '.join(self.long_stems)}: 12 s, split)" if self.long_stems else ""
        shared = ", one prompt for all" if self.shared_prompt else ""
        lines = [
            f"seed {self.seed}: {len(self.stems)} clip(s){long}{shared}, MaxConcurrentTasks {self.cap}, "
            f"faults: {', '.join(self.kinds) or 'none'}"
        ]
        for item in sorted(self.timed, key=lambda item: item.at):
            lines.append(f"  t={item.at:7.1f}s  {item.describe()}")
        for crash in self.crashes:
            lines.append(f"  always     {crash.describe()}")
        return "\n".join(lines)


def generate(seed: int) -> Schedule:
    """The schedule of `seed`: 1-3 clips, a cap of 1-3, and 3-6 kinds of fault at once."""
    rng = random.Random(seed)
    stems = [f"c{seed}/clip{i}" for i in range(rng.choice([1, 1, 2, 2, 3]))]
    kinds: list[FaultKind] = sorted(rng.sample(FAULT_KINDS, rng.randint(3, 6)))
    schedule = Schedule(
        seed=seed,
        cap=rng.randint(1, 3),
        stems=stems,
        long_stems=[stems[-1]] if rng.random() < LONG_CLIP_SHARE else [],
        shared_prompt=rng.random() < SHARED_PROMPT_SHARE,
        kinds=kinds,
        run_seconds=[round(rng.uniform(20.0, 180.0), 1) for _ in range(40)],
        poll_phase=round(rng.uniform(0.0, 59.0), 1),
    )
    _uploads(rng, schedule)
    for kind in kinds:
        _DRAW[kind](rng, schedule)
    return schedule


def _busy_time(rng: random.Random) -> float:
    """When a fault is armed: while the uploads are being handled and their tasks run."""
    return round(rng.uniform(0.0, 300.0), 1)


def _uploads(rng: random.Random, s: Schedule) -> None:
    burst = round(rng.uniform(0.0, 90.0), 1) if rng.random() < BURST_SHARE else None
    for stem in s.stems:
        s.timed.append(
            Upload(
                at=burst if burst is not None else round(rng.uniform(0.0, 90.0), 1),
                stem=stem,
                what="pair",
                sidecar_first=rng.random() < 0.4,
                gap=round(rng.choice([0.0, 0.0, rng.uniform(1.0, 40.0)]), 1),
            )
        )


def _first_upload(s: Schedule, stem: str) -> Upload:
    return next(item for item in s.timed if isinstance(item, Upload) and item.stem == stem)


def _replace_upload(s: Schedule, old: Upload, **changes: object) -> None:
    index = s.timed.index(old)
    fields = {**old.__dict__, **changes}
    s.timed[index] = Upload(**fields)


def _throttle_storm(rng: random.Random, s: Schedule) -> None:
    for _ in range(rng.randint(1, 2)):
        endpoint = rng.choice(["create", "create", "query", "list"])
        code = rng.choice([None, "Throttling.RateQuota", "Throttling.AllocationQuota"])
        s.timed.append(ApiFault(_busy_time(rng), endpoint, status=429, code=code, times=rng.randint(3, 15)))


def _server_error(rng: random.Random, s: Schedule) -> None:
    for _ in range(rng.randint(1, 3)):
        endpoint = rng.choice(["create", "query", "query", "list", "cancel"])
        status = rng.choice([500, 502, 503, 504])
        s.timed.append(ApiFault(_busy_time(rng), endpoint, status=status, times=rng.randint(1, 4)))


def _timeout(rng: random.Random, s: Schedule) -> None:
    for _ in range(rng.randint(1, 2)):
        endpoint, kind = rng.choice(
            [("create", "hang"), ("create", "delay"), ("query", "drop"), ("list", "drop"), ("query", "hang")]
        )
        s.timed.append(ApiFault(_busy_time(rng), endpoint, kind=kind, times=rng.randint(1, 2)))


def _lost_create(rng: random.Random, s: Schedule) -> None:
    for _ in range(rng.randint(1, 2)):
        kind, status = rng.choice(
            [("drop_after_create", 0), ("drop_after_create", 0), ("http", 500), ("http", 504)]
        )
        times = rng.randint(1, 3) if kind == "drop_after_create" else 1
        at = round(rng.uniform(0.0, 120.0), 1)  # mostly while the uploads' creates are made
        s.timed.append(ApiFault(at, "create", kind=kind, status=status or 500, times=times))


def _list_error(rng: random.Random, s: Schedule) -> None:
    for _ in range(rng.randint(1, 2)):
        status = rng.choice([500, 503, 429])
        s.timed.append(ApiFault(_busy_time(rng), "list", status=status, times=rng.randint(1, 8)))


def _result_error(rng: random.Random, s: Schedule) -> None:
    for _ in range(rng.randint(1, 2)):
        choice = rng.random()
        at = _busy_time(rng)
        if choice < 0.35:
            s.timed.append(Truncate(at, times=rng.randint(1, 2)))
        elif choice < 0.65:
            s.timed.append(ApiFault(at, "result", status=403))
        else:
            s.timed.append(ApiFault(at, "result", status=rng.choice([500, 503]), times=rng.randint(1, 3)))


def _task_end(rng: random.Random, s: Schedule) -> None:
    for _ in range(rng.randint(1, 2)):
        outcome = rng.choice(["FAILED", "FAILED", "CANCELED", "SLOW"])
        seconds = 30 * 3600.0 if outcome == "SLOW" else 0.0
        s.timed.append(TaskEnd(_busy_time(rng), outcome, seconds))  # type: ignore[arg-type]
        if outcome == "FAILED" and s.long_stems and rng.random() < 0.5:
            s.timed.append(TaskEnd(_busy_time(rng), "FAILED"))  # a segment may fail again (retries)


def _vanish(rng: random.Random, s: Schedule) -> None:
    s.timed.append(Vanish(_busy_time(rng), pick=rng.randint(0, 7)))


def _crash(rng: random.Random, s: Schedule, *, aws: bool = False) -> None:
    points = AWS_ERROR_POINTS if aws else CRASH_POINTS
    for _ in range(rng.randint(1, 3)):
        target, method, moving_to = rng.choice(points)
        s.crashes.append(
            Crash(
                target,
                method,
                nth=rng.randint(1, 3),
                when=rng.choice(["before", "after"]),
                moving_to=moving_to,
                aws_error=rng.choice(["InternalError", "ServiceUnavailable"]) if aws else None,
                times=rng.choice([1, 1, 2]) if aws else 1,
            )
        )


def _dup_events(rng: random.Random, s: Schedule) -> None:
    for stem in rng.sample(s.stems, rng.randint(1, len(s.stems))):
        delivery = Delivery(
            copies=rng.randint(2, 3), spacing=round(rng.choice([0.0, rng.uniform(1, 120)]), 1)
        )
        which = rng.choice(["video_delivery", "sidecar_delivery"])
        _replace_upload(s, _first_upload(s, stem), **{which: delivery})


def _late_events(rng: random.Random, s: Schedule) -> None:
    for stem in rng.sample(s.stems, rng.randint(1, len(s.stems))):
        delivery = Delivery(delay=round(rng.uniform(5.0, 400.0), 1))
        which = rng.choice(["video_delivery", "sidecar_delivery"])
        _replace_upload(s, _first_upload(s, stem), **{which: delivery})


def _reupload(rng: random.Random, s: Schedule) -> None:
    for stem in rng.sample(s.stems, rng.randint(1, len(s.stems))):
        first = _first_upload(s, stem)
        what = rng.choice(["video", "sidecar"])
        late = Delivery(delay=round(rng.uniform(5.0, 200.0), 1)) if rng.random() < 0.3 else Delivery()
        s.timed.append(
            Upload(
                at=round(first.at + first.gap + rng.uniform(1.0, 300.0), 1),
                stem=stem,
                what=what,  # type: ignore[arg-type]
                sidecar_version=2 if what == "sidecar" else 1,
                video_delivery=late if what == "video" else Delivery(),
                sidecar_delivery=late if what == "sidecar" else Delivery(),
            )
        )


def _cancel(rng: random.Random, s: Schedule) -> None:
    for stem in rng.sample(s.stems, rng.randint(1, len(s.stems))):
        first = _first_upload(s, stem)
        s.timed.append(UserAction(round(first.at + rng.uniform(0.0, 200.0), 1), stem, "cancel"))


def _withdraw(rng: random.Random, s: Schedule) -> None:
    stem = rng.choice(s.stems)
    first = _first_upload(s, stem)
    action = rng.choice(["delete_sidecar", "delete_video"])
    s.timed.append(UserAction(round(first.at + first.gap + rng.uniform(0.0, 120.0), 1), stem, action))  # type: ignore[arg-type]


def _bad_input(rng: random.Random, s: Schedule) -> None:
    stem = rng.choice(s.stems)
    _replace_upload(s, _first_upload(s, stem), valid=False)


_DRAW = {
    "throttle_storm": _throttle_storm,
    "server_error": _server_error,
    "timeout": _timeout,
    "lost_create": _lost_create,
    "list_error": _list_error,
    "result_error": _result_error,
    "task_end": _task_end,
    "vanish": _vanish,
    "crash": _crash,
    "aws_error": lambda rng, s: _crash(rng, s, aws=True),
    "dup_events": _dup_events,
    "late_events": _late_events,
    "reupload": _reupload,
    "cancel": _cancel,
    "withdraw": _withdraw,
    "bad_input": _bad_input,
}
