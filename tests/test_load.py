"""Load: 100 quorum executions at once, every approver answering at the same instant."""

from __future__ import annotations

import pytest

from earlyexit.bench import run_load
from earlyexit.local import Cloud


@pytest.mark.load
@pytest.mark.deploys
def test_a_hundred_simultaneous_executions_lose_no_decision_never_hang_and_decide_right(cloud: Cloud) -> None:
    result = run_load(cloud, 100, workers=100)  # all 100 in flight together
    assert (result.executions, result.decided) == (100, 100)
    assert {"lost decisions": result.lost_decisions, "hangs": result.hangs,
            "wrong outcomes": result.wrong_outcomes, "errors": result.errors} == {
        "lost decisions": 0, "hangs": 0, "wrong outcomes": 0, "errors": 0}
