"""``python -m local.emulator``: run the wan2.7-videoedit emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from .accounts import parse_account_spec
from .clock import ManualClock
from .faults import __doc__ as FAULTS_DOC
from .server import Emulator


def _task_seconds(text: str) -> float | tuple[float, float]:
    if "-" in text.strip("-"):
        lo, hi = text.split("-", 1)
        return float(lo), float(hi)
    return float(text)


def _account(text: str) -> tuple[str, list[str]]:
    try:
        return parse_account_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m local.emulator",
        description="Local emulator of the wan2.7-videoedit (DashScope) HTTP API.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Faults (--fault, repeatable):\n"
        + (FAULTS_DOC or "").split("CLI / control-API spec strings", 1)[-1]
        + "\nControl API (JSON): GET /_emulator/counters, GET|POST|DELETE /_emulator/faults,\n"
        '  POST /_emulator/reset, GET /_emulator/clock, POST /_emulator/clock/advance {"seconds": N}\n'
        "  (with --manual-clock), GET /_emulator/accounts, GET /_emulator/tasks,\n"
        '  POST /_emulator/tasks {"body": CREATE_BODY, "account": NAME} (a task of another workload\n'
        '  of the account), POST /_emulator/tasks/ID/suspend {"seconds": N},\n'
        "  POST /_emulator/tasks/ID/resume.",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument(
        "--api-key",
        default=None,
        action="append",
        help="a key of the default account (repeatable: keys of one account share its tasks and limits);"
        " default $DASHSCOPE_API_KEY or sk-emulator",
    )
    ap.add_argument(
        "--account",
        type=_account,
        action="append",
        default=[],
        metavar="NAME=KEY[,KEY...]",
        help="another account and its keys (repeatable); its keys see none of the other accounts' tasks",
    )
    ap.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="the service runs this many times faster: PENDING and run times are divided by it; the"
        " clock it reports stays the wall clock (default 30; 1 with --manual-clock)",
    )
    ap.add_argument(
        "--task-seconds",
        type=_task_seconds,
        default=(60.0, 120.0),
        help="the service's run time of a task: N or LO-HI (default 60-120)",
    )
    ap.add_argument(
        "--pending-seconds", type=float, default=5.0, help="the service's minimum PENDING time (default 5)"
    )
    ap.add_argument("--running-cap", type=int, default=5, help="max RUNNING tasks per account (default 5)")
    ap.add_argument(
        "--no-rate-limit", action="store_true", help="disable the 5 creates/s and 20 queries/s limits"
    )
    ap.add_argument(
        "--manual-clock", action="store_true", help="time moves only via POST /_emulator/clock/advance"
    )
    ap.add_argument("--workdir", default=None, help="where result files are kept (default: temp dir)")
    ap.add_argument("--public-base-url", default=None, help="base URL used in video_url")
    ap.add_argument(
        "--prerendered",
        default=None,
        metavar="MP4",
        help="serve this file as every task's result, without fetching inputs or rendering",
    )
    ap.add_argument("--fault", action="append", default=[], metavar="SPEC", help="inject a fault (see below)")
    args = ap.parse_args(argv)

    if args.time_scale is None:
        args.time_scale = 1.0 if args.manual_clock else 30.0
    try:
        emu = Emulator(
            api_key=args.api_key or [os.environ.get("DASHSCOPE_API_KEY") or "sk-emulator"],
            accounts=dict(args.account),
            clock=ManualClock() if args.manual_clock else None,
            time_scale=args.time_scale,
            task_seconds=args.task_seconds,
            host=args.host,
            port=args.port,
            pending_seconds=args.pending_seconds,
            running_cap=args.running_cap,
            rate_limit=not args.no_rate_limit,
            workdir=args.workdir,
            public_base_url=args.public_base_url,
            prerendered=args.prerendered,
        )
    except ValueError as exc:
        ap.error(str(exc))
    for spec in args.fault:
        try:
            emu.faults.add_spec(spec)
        except ValueError as exc:
            ap.error(str(exc))
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    emu.start()
    print(f"wanedit emulator listening on {emu.base_url}", flush=True)
    accounts = ", ".join(f"{name} ({n} key{'s' * (n > 1)})" for name, n in emu.accounts.describe().items())
    clock = "a manual clock (POST /_emulator/clock/advance)" if args.manual_clock else "the real clock"
    pace = "at the service's pace" if emu.time_scale == 1 else f"{emu.time_scale:g}x faster"
    print(f"accounts: {accounts}; tasks {pace}, on {clock}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    print("wanedit emulator stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
