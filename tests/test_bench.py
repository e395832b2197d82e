"""Smoke test of `make bench`: its figures are read from the executions it ran, and priced by the formula."""

from __future__ import annotations

from typing import Any

import pytest

from earlyexit.bench import SCENARIOS, Usage, measure, polling_transitions
from earlyexit.history import history_events, state_transitions
from earlyexit.local import Stack


def test_one_scenario_with_two_runs_reports_what_the_histories_show(sfn: Any, quorum: Stack) -> None:
    scenario = next(s for s in SCENARIOS if (s.pattern, s.title) == ("quorum", "2 of 3 approve"))
    measurement = measure(sfn, quorum.outputs["StateMachineArn"], scenario, runs=2)
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
    assert polling_transitions(measured, approver_flows=1, wait_seconds=3_600) - 13 == 2_160  # notes/anchors.md
    assert polling_transitions(measured, approver_flows=3, wait_seconds=60) == 13 + 3 * 3 * 12
