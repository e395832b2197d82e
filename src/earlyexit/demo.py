"""`earlyexit demo`: both patterns on the embedded engine, a few scenarios each, with timelines."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from rich.rule import Rule

from earlyexit.approvals import decide, start_approval, wait_for_outcome, wait_for_requests
from earlyexit.history import Execution
from earlyexit.local import embedded_cloud
from earlyexit.timeline import console, render_execution

__all__ = ["Scenario", "SCENARIOS", "run_demo"]

_DEADLINE = 2  # seconds: the timeout scenarios wait this long for real


@dataclass(frozen=True)
class Scenario:
    title: str
    approvers: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]  # (approver, "approve" | "reject"), in order
    quorum: int | None = None


SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "either-or": (
        Scenario("alice approves first", ("alice", "bob"), (("alice", "approve"),)),
        Scenario("bob rejects first", ("alice", "bob"), (("bob", "reject"),)),
        Scenario(f"nobody answers within {_DEADLINE} s", ("alice", "bob"), ()),
    ),
    "quorum": (
        Scenario("2 of 3: alice and carol approve", ("alice", "bob", "carol"),
                 (("alice", "approve"), ("carol", "approve")), quorum=2),
        Scenario("2 of 3: bob and carol reject, the quorum is unreachable", ("alice", "bob", "carol"),
                 (("bob", "reject"), ("carol", "reject")), quorum=2),
        Scenario(f"3 of 3: only alice approves within {_DEADLINE} s", ("alice", "bob", "carol"),
                 (("alice", "approve"),), quorum=3),
        Scenario("3 of 5: bob rejects, then alice, dave and erin approve", ("alice", "bob", "carol", "dave", "erin"),
                 (("bob", "reject"), ("alice", "approve"), ("dave", "approve"), ("erin", "approve")), quorum=3),
    ),
}


def _play(sfn: Any, state_machine_arn: str, scenario: Scenario) -> Execution:
    arn = start_approval(sfn, state_machine_arn, scenario.approvers, request={"item": "laptop", "price": 1499},
                         quorum=scenario.quorum, timeout_seconds=_DEADLINE)
    wait_for_requests(sfn, arn, len(scenario.approvers))
    for approver, decision in scenario.answers:
        time.sleep(0.05)  # decisions arrive one after the other, as people answer
        decide(sfn, arn, approver, decision)
    return wait_for_outcome(sfn, arn, timeout=_DEADLINE + 30)


def run_demo(patterns: Iterable[str]) -> None:
    """Deploy ``patterns`` into the embedded engine, play their scenarios concurrently, show each."""
    out = console()
    with embedded_cloud() as cloud:
        sfn = cloud.client("stepfunctions")
        for pattern in patterns:
            stack = cloud.deploy(pattern, stack_name=f"earlyexit-{pattern}")
            out.print(Rule(f"[bold]{pattern}[/bold]: {stack.outputs['StateMachineName']}"))
            scenarios = SCENARIOS[pattern]
            with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
                executions = list(pool.map(partial(_play, sfn, stack.outputs["StateMachineArn"]), scenarios))
            for scenario, execution in zip(scenarios, executions, strict=True):
                render_execution(execution, title=scenario.title)
