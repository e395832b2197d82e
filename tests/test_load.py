"""Load: 100 quorum executions at once, every approver answering at the same instant; loads over several engines."""

from __future__ import annotations

from dataclasses import replace

import pytest

from earlyexit.local import Cloud
from earlyexit.tools.bench import LoadResult, combined, run_load, run_load_on_engines


@pytest.mark.load
@pytest.mark.deploys
def test_a_hundred_simultaneous_executions_lose_no_decision_never_hang_and_decide_right(cloud: Cloud) -> None:
    result = run_load(cloud, 100, in_flight=100)  # all 100 in flight together
    assert (result.executions, result.decided) == (100, 100)
    assert {"lost decisions": result.lost_decisions, "hangs": result.hangs,
            "wrong outcomes": result.wrong_outcomes, "errors": result.errors} == {
        "lost decisions": 0, "hangs": 0, "wrong outcomes": 0, "errors": 0}


@pytest.mark.load
def test_a_load_spread_over_two_engines_decides_each_execution_once_on_the_common_clock() -> None:
    result = run_load_on_engines(12, engines=2, in_flight=3)
    assert (result.engines, result.executions, result.decided, result.failures) == (2, 12, 12, 0)
    assert result.seconds > 0


def test_loads_run_side_by_side_combine_their_counts_from_the_first_start_to_the_last_stop() -> None:
    one = LoadResult(executions=5, approvers=3, in_flight=4, already_in_engine=0, first_start=10.0, last_stop=12.0,
                     decided=5, hangs=0, lost_decisions=0, wrong_outcomes=0, refused_answers=2, errors=0)
    other = replace(one, first_start=9.0, last_stop=11.0, decided=4, hangs=1, refused_answers=1)
    both = combined([one, other])
    assert (both.engines, both.executions, both.decided, both.hangs, both.refused_answers) == (2, 10, 9, 1, 3)
    assert (both.first_start, both.last_stop, both.seconds, both.per_second) == (9.0, 12.0, 3.0, 3.0)
