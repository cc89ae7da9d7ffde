"""Figure 7: trigger-to-submit on the local stack with the real clock: pair uploaded -> task created.

The local stack runs in the background as `wanedit local up` does (pump threads long-polling the
queues, the schedule ticking); the emulator runs at time scale 1, so its task submit times are
wall-clock epochs. 50 pairs are uploaded one after another (0.3 s apart: under the API's 5
creates/s), with MaxConcurrentTasks 50 (its maximum) so that no pair waits for a slot: what is measured
is the event path (S3 -> EventBridge -> SQS -> SubmitFunction), pairing, validation and the create.

Baseline, same run: a minimal submitter doing only the unavoidable work for each pair (presign
the clip, one create call), i.e. no events, no pairing, no validation, no job record.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from bench.common import Row, percentile, sample_clip
from wanedit.domain.limits import MODEL

PAIRS = 50
SPACING = 0.3


def _quiet_pump_threads() -> None:
    """LocalStack.stop does not wait for its pump threads: one may be mid-request when moto goes
    away. Their dying words after the measurement are noise, not a result."""
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if args.thread is not None and args.thread.name.startswith("pump-"):
            return
        previous(args)

    threading.excepthook = hook


def trigger_rows() -> list[Row]:
    from local.stack import LOCAL_API_KEY, LocalStack
    from wanedit.container import services
    from wanedit.dashscope import CreateTaskRequest

    clip = sample_clip().read_bytes()
    sidecar = json.dumps({"prompt": "Turn the scene into a claymation style", "resolution": "720P"}).encode()
    stack = LocalStack(
        time_scale=1.0,
        task_seconds=(60.0, 300.0),
        max_concurrent_tasks=50,
        api_key=LOCAL_API_KEY,
        emulator_options={"prerendered": sample_clip()},
    )
    stack.start()
    try:
        stack.run_background(poll_every=60.0)
        s3 = stack.client("s3")
        bucket = stack.resources.bucket
        latencies: list[float] = []
        missed = 0
        for i in range(PAIRS):
            key = f"incoming/trigger/t{i:03d}"
            s3.put_object(Bucket=bucket, Key=f"{key}.mp4", Body=clip)
            s3.put_object(Bucket=bucket, Key=f"{key}.json", Body=sidecar)
            uploaded = time.time()
            found = None
            while found is None and time.time() - uploaded < 15:
                found = next(
                    (
                        t
                        for t in stack.emulator.tasks()
                        if f"{key}.mp4" in str(t.body["input"]["media"][0]["url"])
                    ),
                    None,
                )
                if found is None:
                    time.sleep(0.005)
            if found is None:
                missed += 1
            else:
                latencies.append(found.submit_at - uploaded)
            time.sleep(SPACING)
        svc = services()
        baseline: list[float] = []
        for i in range(PAIRS):
            key = f"incoming/direct/d{i:03d}.mp4"
            t0 = time.time()
            s3.put_object(Bucket=bucket, Key=key, Body=clip)
            uploaded = time.time()
            url = svc.objects.presign_get_version(key, None, 3600)
            request = CreateTaskRequest.model_validate(
                {
                    "model": MODEL,
                    "input": {"prompt": "direct", "media": [{"type": "video", "url": url}]},
                    "parameters": {"resolution": "720P"},
                }
            )
            svc.api.create_task(request)
            baseline.append(time.time() - uploaded)
            time.sleep(max(0.0, SPACING - (time.time() - t0)))
    finally:
        _quiet_pump_threads()
        stack.stop()
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    b50, b95 = percentile(baseline, 50), percentile(baseline, 95)
    return [
        Row(
            figure="7 trigger-to-submit (local, real clock)",
            goal="info (no goal set); p50/p95 of 50",
            measured=(
                f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms ({len(latencies)}/{PAIRS} seen);"
                f" direct presign+create p50 {b50 * 1000:.0f} ms, p95 {b95 * 1000:.0f} ms;"
                f" ratio p50 {p50 / b50:.1f}x"
            ),
            passed=None if not missed else False,
            note=(
                "local pump long-polls SQS with no batching window; on AWS the template's"
                " MaximumBatchingWindowInSeconds: 5 adds up to 5 s to each first-of-a-batch event"
            ),
            data={"p50": p50, "p95": p95, "baseline_p50": b50, "baseline_p95": b95, "missed": missed},
        )
    ]
