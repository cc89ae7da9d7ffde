"""The `wanedit` command (installed into .venv/bin by `make setup`).

`wanedit local up` runs the local stack until Ctrl-C / SIGTERM, printing how to reach it and
writing the same to `.wanedit/local.json`. (More commands arrive with the CLI's own issue.)
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence


def _local_up(args: argparse.Namespace) -> int:
    from local.stack import LocalStack

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with LocalStack(
        time_scale=args.time_scale, max_concurrent_tasks=args.max_concurrent, quiet=not args.verbose
    ) as stack:
        stack.run_background(poll_every=args.poll_every)
        state = stack.write_state()
        r = stack.resources
        print("wanedit local stack is up (Ctrl-C stops it)")
        print(f"  AWS endpoint   {r.endpoint_url}  (region {r.region}, any credentials)")
        print(f"  bucket         {r.bucket}")
        print(f"  emulator       {stack.emulator.base_url}")
        print(f"  state file     {state}")
        print(
            f"  try:  aws s3 cp clip.mp4 s3://{r.bucket}/incoming/demo/clip.mp4"
            f" --endpoint-url {r.endpoint_url}"
        )
        sys.stdout.flush()
        stop.wait()
        print("stopping")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wanedit", description="Bucket-triggered video editing with Wan 2.7."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser(
        "local", help="run the pipeline on this machine (moto + the DashScope emulator)"
    )
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="start the local stack and keep it running until Ctrl-C")
    up.add_argument("--time-scale", type=float, default=30.0, help="emulated API time runs this much faster")
    up.add_argument("--max-concurrent", type=int, default=5, help="MaxConcurrentTasks (default 5)")
    up.add_argument(
        "--poll-every", type=float, default=60.0, help="the schedule's rate in seconds (default 60)"
    )
    up.add_argument("--verbose", action="store_true", help="show the functions' logs")
    up.set_defaults(run=_local_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
