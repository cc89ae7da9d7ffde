"""`python -m bench`: run every benchmark of issue 7 and print the table (figure, goal, measured, verdict).

Options: --quick (N=20 only for the pipeline figures), --only NAMES (comma list of: pipeline,
scaling, persist, validation, coldstart, trigger, stitch, preview, n2000), --n2000 (also run the N=2000
scaling row: ~30-40 min on 2 cores, see bench/RESULTS.md; `--only n2000` runs that row alone),
--server (the pipeline through moto's HTTP server instead of in process), --json PATH (write all
rows as JSON). The last line gives the total wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from collections.abc import Callable

import bench.common  # noqa: F401 - environment first
from bench.common import Row


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _quiet(fn: Callable[[], list[Row]]) -> list[Row]:
    """Run with stdout captured: the handlers' Powertools metrics print EMF lines there."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn()


# Every run below this size also checks each moto shortcut against moto's own code (bench/fastmoto.py).
VERIFY_BELOW = 100


def pipeline_rows(sizes: list[int], main_n: int | None, transport: str = "inprocess") -> list[Row]:
    from bench.cost import cost_of, cost_row
    from bench.detection import detection_row
    from bench.fastmoto import Checks
    from bench.makespan import calls_row, makespan_row, scaling_row
    from bench.pipeline import run_pipeline

    rows: list[Row] = []
    scaling: list[Row] = []
    for n in sizes:
        t = time.perf_counter()
        verify = transport == "inprocess" and n < VERIFY_BELOW
        checked = Checks.responses + Checks.sorts + Checks.retention
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' Powertools metrics print EMF
            run = run_pipeline(n, log=_log, transport=transport, verify=verify)
        checked = Checks.responses + Checks.sorts + Checks.retention - checked
        _log(f"pipeline N={n} ({transport}): {time.perf_counter() - t:.0f} s wall")
        cost = cost_of(run)
        row = scaling_row(run, cost.aws_dollars / max(1, cost.jobs))
        if verify:
            row.note = (
                f"every moto shortcut checked against moto's own code: {checked} results, 0 differences"
            )
        scaling.append(row)
        if n == main_n:
            rows += [makespan_row(run), detection_row(run), calls_row(run), cost_row(run)]
    return rows + scaling


def n2000_not_run() -> Row:
    return Row(
        figure="scaling N=2000",
        goal="ratio, calls/task flat; AWS cost linear in N",
        measured="not run by default (~30-40 min): python -m bench --only n2000; last run: bench/RESULTS.md",
        passed=None,
    )


def stitch_rows() -> list[Row]:
    """bench/stitch.py's row, if that module (and what it measures) is in this tree."""
    try:
        from bench.stitch import stitch_memory_row
    except ImportError as error:
        return [Row("stitch memory", "peak growth < 64 MB", f"not available: {error}", None)]
    return [_quiet(lambda: [stitch_memory_row()])[0]]


def preview_rows() -> list[Row]:
    """bench/preview.py's rows, if that module (and what it measures) is in this tree."""
    try:
        from bench.preview import preview_rows as rows
    except ImportError as error:
        return [Row("preview sheet", "peak growth <= 2x decoding one frame", f"not available: {error}", None)]
    return _quiet(rows)


def print_table(rows: list[Row]) -> None:
    headers = ("figure", "goal", "measured", "result")
    table = [(r.figure, r.goal, r.measured, r.verdict) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in table:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in rows:
        lines = r.data.get("lines_per_1000")
        if lines:
            quantities = r.data["quantities_per_1000"]
            print(f"\n{r.figure}: per 1,000 jobs")
            for (name, dollars), (what, qty) in zip(lines.items(), quantities.items(), strict=True):
                print(f"  {name:<26} {qty:>14,.1f} {what:<20} ${dollars:.4f}")
            print(f"  {'AWS total':<26} {'':>14} {'':<20} ${r.data['aws_per_1000']:.4f}")
            print(f"  {'API (usage.duration)':<26} {'':>14} {'':<20} ${r.data['api_per_1000']:.2f}")
    notes = [r for r in rows if r.note]
    if notes:
        print()
        for r in notes:
            print(f"- {r.figure}: {r.note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--n2000", action="store_true")
    ap.add_argument("--server", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only

    started = time.perf_counter()
    rows: list[Row] = []
    if wanted("validation"):
        from bench.validation import validation_rows

        rows += validation_rows()
    if wanted("coldstart"):
        from bench.coldstart import coldstart_rows

        rows += coldstart_rows()
    if wanted("persist"):
        from bench.persist import persist_rows

        rows += _quiet(persist_rows)
    if wanted("trigger"):
        from bench.trigger import trigger_rows

        rows += _quiet(trigger_rows)
    if wanted("stitch"):
        rows += stitch_rows()
    if wanted("preview"):
        rows += preview_rows()
    transport = "server" if args.server else "inprocess"
    if wanted("pipeline") or wanted("scaling"):
        sizes = [20] if args.quick else [20, 200]
        if args.n2000:
            sizes.append(2000)
        rows += pipeline_rows(sizes, main_n=20 if args.quick else 200, transport=transport)
        if not args.n2000 and not args.quick:
            rows.append(n2000_not_run())
    elif "n2000" in only:
        rows += pipeline_rows([2000], main_n=None, transport=transport)
    elapsed = time.perf_counter() - started
    print_table(rows)
    failures = sum(1 for r in rows if r.passed is False)
    print(
        f"\n{len(rows)} rows; failures: {failures}; total wall time {elapsed:.0f} s ({elapsed / 60:.1f} min)"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{**r.__dict__, "verdict": r.verdict} for r in rows], fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
