"""`wanedit conformance` against the emulator (loopback only): it passes, and it sees a difference."""

from __future__ import annotations

import io
import time

import pytest

from cli import conformance
from cli.main import main
from local.emulator import Emulator

KEY = "sk-conformance-probe-0123456789"


def probe(emu: Emulator, timeout: float = 60.0) -> tuple[int, str]:
    out = io.StringIO()
    code = conformance.run(emu.base_url, KEY, timeout=timeout, stream=out)
    return code, out.getvalue()


def test_the_probe_passes_against_the_emulator() -> None:
    # The emulator as `wanedit local up` runs it: the real clock, tasks 60x faster (a 1 s run).
    with Emulator(api_key=KEY, time_scale=60, task_seconds=60.0) as emu:
        code, text = probe(emu)
        assert emu.counters["tasks_created"] == 1  # one task, as against the real service

    assert code == conformance.EXIT_OK, text
    lines = text.splitlines()
    names = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    assert names == [
        "create",
        "query: times in UTC+8 on our clock",
        "wait: SUCCEEDED with the documented output and usage",
        "list: a narrow window shows the task",
        "list: entry fields",
        "list: times are epoch milliseconds, as the query's",
        "list: request_id is the create's",
        "list: the window is read in UTC+8",
        "list: a window of exactly 24 h is taken",
        "list: a window of 25 h is refused",
        "cancel of a finished task",
        "query of an unknown task id",
    ]
    assert all(line.startswith("[ok]") for line in lines if line.startswith("["))
    assert "(assumed)" in text and "(documented)" in text  # each assumption is marked as one
    assert lines[-1] == "12 checks: the service answers as the emulator assumes"
    assert KEY not in text


def test_a_difference_is_shown_beside_the_assumption_and_fails_the_probe() -> None:
    with Emulator(api_key=KEY, time_scale=60, task_seconds=60.0) as emu:
        emu.faults.add_spec("cancel=502")  # a service that answers cancel otherwise
        code, text = probe(emu)

    assert code == conformance.EXIT_DIFFERENT
    block = text.split("[DIFFERENT] cancel of a finished task\n", 1)[1].splitlines()[:2]
    assert block[0].startswith("    service:  502 BadGateway")
    assert block[1].startswith("    emulator: 400 UnsupportedOperation") and block[1].endswith("(assumed)")
    assert text.splitlines()[-1] == "12 checks: 1 differ"


class AheadClock:
    """The bug of two clocks: a service whose times run an hour ahead of ours."""

    def now(self) -> float:
        return time.time() + 3600


def test_a_service_on_another_clock_is_a_difference() -> None:
    with Emulator(api_key=KEY, clock=AheadClock(), time_scale=60, task_seconds=60.0) as emu:
        code, text = probe(emu)

    assert code == conformance.EXIT_DIFFERENT
    assert "[DIFFERENT] query: times in UTC+8 on our clock" in text


def test_the_probe_is_bounded_by_its_timeout() -> None:
    with Emulator(api_key=KEY, time_scale=1, task_seconds=3600.0) as emu:  # a task that runs an hour
        started = time.monotonic()
        code, text = probe(emu, timeout=3.0)
        elapsed = time.monotonic() - started

    assert code == conformance.EXIT_DIFFERENT
    assert "[DIFFERENT] overall timeout" in text
    assert elapsed < 3.0 + conformance.CALL_TIMEOUT


def test_the_command_needs_a_key_and_for_the_real_service_a_video_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    assert main(["conformance", "--base-url", "http://127.0.0.1:9"]) == conformance.EXIT_USAGE
    assert "DASHSCOPE_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    # Refused before any request: the real service would fetch the clip over the internet.
    assert (
        main(["conformance", "--base-url", "https://dashscope-intl.aliyuncs.com"]) == conformance.EXIT_USAGE
    )
    assert "--video-url" in capsys.readouterr().err


def test_the_command_runs_the_probe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    with Emulator(api_key=KEY, time_scale=60, task_seconds=60.0) as emu:
        assert main(["conformance", "--base-url", emu.api_base_url, "--timeout", "60"]) == conformance.EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1].endswith("the service answers as the emulator assumes")
