"""Figure 6: import time of each handler module in a fresh interpreter, as a ratio to `import boto3`.

Each import is timed inside a new interpreter (what a Lambda cold start pays before the first
event), with the environment the template gives the functions; the median of several runs is used,
alternating modules so that disk-cache effects hit them alike. `-X importtime` of each handler
names the heaviest top-level imports for the note.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import Row, fmt_ratio

REPO = Path(__file__).resolve().parents[1]
MODULES = ["functions.submit.app", "functions.poll.app", "functions.complete.app", "functions.longclip.app"]
BASELINE = "boto3"
GOAL = 2.0
RUNS = 7

_TIMER = (
    "import time, importlib; t = time.perf_counter(); importlib.import_module({m!r});"
    " print(time.perf_counter() - t)"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # As deployed by default: metrics on, the X-Ray SDK off (`DetailedTracing` "false").
    env.pop("POWERTOOLS_METRICS_DISABLED", None)
    env.update(
        {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": f"{REPO / 'layers' / 'common'}{os.pathsep}{REPO}",
            "POWERTOOLS_SERVICE_NAME": "wanedit",
            "POWERTOOLS_METRICS_NAMESPACE": "wanedit",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    return env


def _time_import(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _TIMER.format(m=module)],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


WATCH = (
    "aws_xray_sdk.core",
    "pydantic",
    "requests",
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "wanedit.domain.job",
)


def heaviest(module: str, top: int = 5) -> list[tuple[str, float]]:
    """Cumulative import time of the big dependencies, each where it is first imported (-X importtime).

    Nested packages are inside their importer's figure (boto3 includes botocore), so they overlap.
    """
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    totals: dict[str, float] = {}
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)", line)
        if m and m.group(3) in WATCH:
            totals[m.group(3)] = int(m.group(2)) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def coldstart_rows() -> list[Row]:
    for module in [BASELINE, *MODULES]:  # warm the disk cache and the .pyc files once
        _time_import(module)
    samples: dict[str, list[float]] = {m: [] for m in [BASELINE, *MODULES]}
    for _ in range(RUNS):
        for module in samples:
            samples[module].append(_time_import(module))
    base = statistics.median(samples[BASELINE])
    rows = []
    for module in MODULES:
        t = statistics.median(samples[module])
        ratio = t / base
        heavy = ", ".join(f"{name} {sec * 1000:.0f} ms" for name, sec in heaviest(module))
        rows.append(
            Row(
                figure=f"6 cold start ({module.split('.')[1]})",
                goal=f"<= {GOAL:.0f}x import boto3",
                measured=(
                    f"{fmt_ratio(ratio)} ({t * 1000:.0f} ms vs boto3 {base * 1000:.0f} ms, median of {RUNS})"
                ),
                passed=ratio <= GOAL,
                note=f"largest imports (cumulative, overlapping): {heavy}",
                data={"ratio": ratio, "seconds": t, "boto3_seconds": base},
            )
        )
    return rows
