"""Smoke test of `make bench`: its figures are read from the executions it ran, priced by the formula, and its
tables fit an 80-column terminal with every number whole."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from earlyexit.history import history_events, state_transitions
from earlyexit.local import Stack
from earlyexit.tools.bench import (
    SCENARIOS,
    LoadResult,
    Measurement,
    Usage,
    measure,
    polling_transitions,
    render,
    report,
    report_width,
)


@pytest.fixture(scope="module")
def measured(sfn: Any, either_or: Stack, quorum: Stack) -> list[Measurement]:
    """Two runs of either-or "approve" and of quorum "2 of 3 approve" (the polling table needs both)."""
    stacks = {"either-or": either_or, "quorum": quorum}
    wanted = [("either-or", "approve"), ("quorum", "2 of 3 approve")]
    scenarios = [next(s for s in SCENARIOS if (s.pattern, s.title) == w) for w in wanted]
    return [measure(sfn, stacks[s.pattern].outputs["StateMachineArn"], s, 2) for s in scenarios]


def test_one_scenario_with_two_runs_reports_what_the_histories_show(sfn: Any, measured: list[Measurement]) -> None:
    measurement = measured[1]
    assert len(measurement.runs) == 2
    for run in measurement.runs:
        events = history_events(sfn, run.execution.arn)
        scheduled = [e["taskScheduledEventDetails"]["resource"] for e in events if e["type"] == "TaskScheduled"]
        assert run.usage == Usage(transitions=state_transitions(events),
                                  put_events=scheduled.count("putEvents.waitForTaskToken"),
                                  write_units=scheduled.count("updateItem"), read_units=scheduled.count("getItem"))
        assert run.usage.transitions == run.execution.transitions
        assert (run.execution.output["outcome"], run.execution.output["decidedBy"]) == ("APPROVED", "bob")
        assert run.latency == run.execution.stopped_at.timestamp() - run.since
    usage = measurement.usage
    assert usage == Usage.mean([r.usage for r in measurement.runs])
    assert usage.step_functions_cost * 1000 == pytest.approx(usage.transitions * 0.025)
    assert usage.cost * 1000 == pytest.approx(1000 * (usage.transitions * 0.025 / 1000 + usage.put_events / 1e6
                                                      + usage.write_units * 0.625 / 1e6
                                                      + usage.read_units * 0.125 / 1e6))


def test_polling_adds_three_transitions_per_five_seconds_per_approver_flow() -> None:
    measured = Usage(transitions=13, put_events=3, write_units=2, read_units=0)
    assert polling_transitions(measured, approver_flows=1, wait_seconds=3_600) - 13 == 2_160
    assert polling_transitions(measured, approver_flows=3, wait_seconds=60) == 13 + 3 * 3 * 12


def test_every_table_renders_at_80_columns_with_every_number_whole(measured: list[Measurement]) -> None:
    load = LoadResult(executions=1_000, approvers=3, in_flight=4, already_in_engine=5_000, first_start=1_000.0,
                      last_stop=1_123.4, decided=1_000, hangs=0, lost_decisions=0, wrong_outcomes=0,
                      refused_answers=1_234, errors=0, engines=2)
    tables = report(measured, measured, [load, load], runs=2, retained=123_456.0)
    text = render(tables, "footer", width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    numbers = {n for t in tables for row in t.rows for cell in row for n in re.findall(r"\$?\d[\d,.]*", cell)}
    assert numbers, "the tables hold numbers"
    whole = set(re.findall(r"\$?\d[\d,.]*", text))
    assert numbers <= whole, sorted(numbers - whole)


@pytest.mark.parametrize(("environ", "terminal", "width"), [
    ({"COLUMNS": "80"}, None, 80),  # piped to a file or in CI, COLUMNS set
    ({"COLUMNS": "80"}, 132, 80),
    ({}, 132, 132),  # a terminal
    ({}, None, 200),  # a file: wide tables, nothing stacked
    ({"COLUMNS": "wide"}, None, 200),
    ({"COLUMNS": "0"}, 100, 100),
], ids=["piped-columns", "terminal-columns", "terminal", "file", "columns-not-a-number", "columns-zero"])
def test_the_report_width_is_columns_then_the_terminal_s_then_wide(environ: dict[str, str], terminal: int | None,
                                                                  width: int) -> None:
    assert report_width(environ, terminal) == width


def test_the_benchmark_runs_as_a_module_of_the_package() -> None:
    result = subprocess.run([sys.executable, "-m", "earlyexit.tools.bench", "--runs", "0"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "--runs, --engines and --in-flight must be at least 1" in result.stderr
