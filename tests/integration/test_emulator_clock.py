"""One clock: the times the emulator reports are the pipeline's clock's, in every mode.

The time scale makes the service faster (PENDING and run times divided by it), never its clock:
`submit_time`, `gmt_create`, `end_time`, list windows and the `Expires` of result URLs are read from
the clock the pipeline reads, and the rate limits count that clock's seconds.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

from local.emulator import Emulator, ManualClock
from local.emulator.clock import CST
from local.stack import LocalStack
from tests import emulator_fixtures as ef
from tests.emulator_fixtures import API_KEY, Api, MediaServer, body

media = ef.media  # fixture

SLACK = 0.5  # seconds: a thread switch on a loaded 2-core box


def _epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=CST).timestamp()


def test_on_the_wall_clock_at_time_scale_30_times_are_real_and_tasks_are_fast(media: MediaServer) -> None:
    with Emulator(api_key=API_KEY, time_scale=30, task_seconds=60.0, pending_seconds=6.0) as emu:
        api = Api(emu)
        before = time.time()
        tid = api.create(media.url("clip.mp4"), resolution="720P")
        after = time.time()
        time.sleep(1.0)  # the service's times must not run ahead while real time passes
        out = api.output(tid)
        assert before - 0.002 <= _epoch(out["submit_time"]) <= after + 0.002
        assert out["task_status"] == "RUNNING"  # 0.2 s PENDING, then a 2 s run
        deadline = time.monotonic() + 30
        while (out := api.output(tid))["task_status"] != "SUCCEEDED":  # bounded: a 2 s run
            assert time.monotonic() < deadline
            time.sleep(0.1)
        submit, scheduled, end = (_epoch(out[k]) for k in ("submit_time", "scheduled_time", "end_time"))
        assert abs((scheduled - submit) - 6.0 / 30) < SLACK  # 6 s PENDING, 30x faster
        assert abs((end - scheduled) - 60.0 / 30) < SLACK  # a 60 s run, 30x faster
        assert end <= time.time() + 0.002  # never in the future
        expires = int(re.search(r"Expires=(\d+)", out["video_url"]).group(1))  # type: ignore[union-attr]
        assert -1 < expires - (end + 24 * 3600) <= 0  # whole seconds; the 24 h lifetime is not scaled
        entry = api.list().json()["data"][0]
        assert entry["gmt_create"] == round(submit * 1000)


def test_rate_limits_count_real_seconds_at_any_time_scale(media: MediaServer) -> None:
    with Emulator(api_key=API_KEY, time_scale=30, task_seconds=60.0) as emu:
        api = Api(emu)
        b = body(media.url("clip.mp4"), resolution="720P")
        started = time.monotonic()
        codes = [api.create_raw(b).status_code for _ in range(6)]
        if time.monotonic() - started < 1.0:  # six calls within one real second: the sixth refused
            assert codes == [200] * 5 + [429]
        time.sleep(1.05)
        assert api.create_raw(b).status_code == 200


def test_a_manual_clock_is_shared_and_never_scaled_by_the_local_stack() -> None:
    clock = ManualClock(start=1_795_600_000.0)
    with LocalStack(emulator_clock=clock, task_seconds=60.0) as stack:
        assert stack.emulator.clock is clock and stack.clock.now() == clock.now()
        assert stack.emulator.time_scale == 1.0  # a simulated clock is advanced, not scaled
        stack.clock.sleep(42.0)  # the pipeline's sleep moves the service's time too
        assert stack.emulator.now() == 1_795_600_042.0


def test_the_real_time_local_stack_reads_one_clock() -> None:
    with LocalStack(time_scale=30) as stack:
        assert stack.emulator.clock is stack.clock  # the very clock the pipeline reads
        assert abs(stack.emulator.now() - time.time()) < SLACK
        assert stack.emulator.time_scale == 30
