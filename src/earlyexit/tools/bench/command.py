"""``python -m earlyexit.tools.bench``: run every measurement and print the tables."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from rich.console import Console

from earlyexit.local import PATTERNS, embedded_cloud
from earlyexit.tools.bench.load import LOAD_IN_FLIGHT, MEMORY_RUNS, LoadResult, retained_bytes, run_load_on_engines
from earlyexit.tools.bench.measure import (
    REMINDED,
    SCALE_APPROVERS,
    SCALE_RUNS,
    SCENARIOS,
    TIMEOUT_CONCURRENCY,
    Measurement,
    ReminderRound,
    majority,
    measure,
    measure_reminder_rounds,
)
from earlyexit.tools.bench.report import print_markdown, render, report, report_width

__all__ = ["main"]

_USAGE = ("python -m earlyexit.tools.bench [--runs N] [--load N] [--prefill N] [--engines N] [--in-flight N] "
          "[--markdown]")


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m earlyexit.tools.bench", usage=_USAGE,
                                     description="What an approval costs and how fast it ends, measured on the "
                                                 "embedded engine.")
    parser.add_argument("--runs", type=int, default=30, help="executions per scenario (default 30)")
    parser.add_argument("--load", type=int, default=1000, help="quorum executions in the load variant (0 skips it)")
    parser.add_argument("--prefill", type=int, default=5000,
                        help="finished executions in the engine before the second load (default 5000; 0 skips it)")
    parser.add_argument("--engines", type=int, default=os.cpu_count() or 1,
                        help="engines (processes) the load is also spread over, besides one (default: the cores)")
    parser.add_argument("--in-flight", type=int, default=LOAD_IN_FLIGHT,
                        help=f"executions in flight per engine in the loads (default {LOAD_IN_FLIGHT})")
    parser.add_argument("--markdown", action="store_true", help="print GitHub-flavoured markdown tables")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.load < 0 or args.prefill < 0 or args.engines < 1 or args.in_flight < 1:
        parser.error("--runs, --engines and --in-flight must be at least 1, --load and --prefill at least 0")
    return args


def _say(what: str) -> None:
    print(f"bench: {what}", file=sys.stderr)


def _on_one_engine(args: argparse.Namespace) -> tuple[list[Measurement], list[Measurement], list[ReminderRound],
                                                       float | None]:
    """The scenarios, quorum by size, a reminder round and (with a load) the heap a finished execution keeps."""
    with embedded_cloud() as cloud:
        sfn = cloud.client("stepfunctions")
        machines = {p: cloud.deploy(p, stack_name=f"earlyexit-bench-{p}").outputs["StateMachineArn"] for p in PATTERNS}
        measurements, scale = [], []
        for scenario in SCENARIOS:
            _say(f"{scenario.pattern} {scenario.title}, {args.runs} runs")
            measurements.append(measure(sfn, machines[scenario.pattern], scenario, args.runs,
                                        concurrency=1 if scenario.decides else TIMEOUT_CONCURRENCY))
        for count in SCALE_APPROVERS:
            _say(f"quorum of {count} approvers, {SCALE_RUNS} runs")
            scale.append(measure(sfn, machines["quorum"], majority(count), SCALE_RUNS))
        _say(f"a reminder round of {', '.join(f'{p} ({n})' for p, n in REMINDED)}")
        reminders = measure_reminder_rounds(sfn, machines)
        retained = None
        if args.load:
            _say(f"memory, {MEMORY_RUNS} executions")
            retained = retained_bytes(cloud, MEMORY_RUNS)
    return measurements, scale, reminders, retained


def _loads(args: argparse.Namespace) -> list[LoadResult]:
    """The load on one engine and on ``--engines``, each fresh and (with ``--prefill``) holding others."""
    loads = []
    for engines in sorted({1, args.engines}) if args.load else []:
        for prefill in (0, args.prefill) if args.prefill else (0,):
            _say(f"load, {args.load} quorum executions on {engines} engine(s)"
                 + (f" holding {prefill} others each" if prefill else ""))
            loads.append(run_load_on_engines(args.load, engines=engines, in_flight=args.in_flight,
                                             already_in_engine=prefill))
    return loads


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; 1 if the load variant saw any failure, else 0."""
    args = _arguments(argv)
    began = time.monotonic()
    measurements, scale, reminders, retained = _on_one_engine(args)
    loads = _loads(args)
    tables = report(measurements, scale, loads, runs=args.runs, retained=retained if loads else None,
                    reminders=reminders)
    footer = (f"Whole benchmark: {time.monotonic() - began:.0f} s on {os.cpu_count()} cores "
              f"(python -m earlyexit.tools.bench --runs {args.runs} --load {args.load} --prefill {args.prefill} "
              f"--engines {args.engines} --in-flight {args.in_flight}).")
    if args.markdown:
        print_markdown(tables, footer)
    else:
        terminal = Console().width if sys.stdout.isatty() else None
        print(render(tables, footer, width=report_width(os.environ, terminal)), end="")
    return 1 if any(load.failures for load in loads) else 0
