"""The whole decision space: every way the approvers can answer, in every order, ends as the rule says.

Each approver approves, rejects, answers with a malformed decision, fails the task
(SendTaskFailure) or stays silent; those who answer do so in every possible order, each
answer sent once the previous one is counted. For either-or and for quorum k = 1, 2, 3 of
three approvers that is 41 + 3 × 493 executions; for four approvers (quorum 1 to 4) a seeded
random sample of 500 of its 4 × 7,889 cases. Each must end SUCCEEDED with the outcome,
decidedBy, approvals and rejections the rule predicts (``support.expected``), and every
answer sent after the outcome must be refused with TaskTimedOut.

"Counted" means what makes the next answer's effect deterministic: in either-or every answer
settles the outcome, so the next one waits for the end; in quorum a flow settles on the tally
its own write returns, so the next answer waits until the previous decision is in the tally
(and after a settling answer, for the end).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support import ANSWER_KINDS, Answer, ended, expected, refusal, requests_sent, send_answer, wait_until_recorded

from earlyexit.approvals import start_approval
from earlyexit.local import Cloud, Stack

SILENCE = "silence"
REQUEST = {"case": "decision space"}
UNSETTLED_DEADLINE = 30  # seconds: answers that settle nothing wait for the deadline (all are counted long before)
CHUNKS = 4  # each configuration's cases in this many tests, so that both workers share them
CONCURRENCY = 24  # executions in flight per test


def answer_orders(approvers: Sequence[str]) -> Iterator[list[Answer]]:
    """Every assignment of an answer kind or silence to each approver, in every order of those who answer."""
    for assignment in itertools.product((*ANSWER_KINDS, SILENCE), repeat=len(approvers)):
        answering = [(a, kind) for a, kind in zip(approvers, assignment) if kind != SILENCE]
        yield from (list(order) for order in itertools.permutations(answering))


CONFIGURATIONS = {"either-or": (("alice", "bob"), None),
                  **{f"quorum-{k}-of-3": (("alice", "bob", "carol"), k) for k in (1, 2, 3)}}
FOUR = ("alice", "bob", "carol", "dave")
FOUR_SAMPLE = 500


def four_approver_sample() -> list[tuple[int, list[Answer]]]:
    """A seeded sample of (quorum, answers) over the four-approver space, every quorum from 1 to 4 alike."""
    space = list(answer_orders(FOUR))
    rng = random.Random(4)
    return [(1 + index % 4, rng.choice(space)) for index in range(FOUR_SAMPLE)]


def test_the_space_has_the_size_the_combinatorics_give() -> None:
    sizes = {name: sum(1 for _ in answer_orders(approvers)) for name, (approvers, _) in CONFIGURATIONS.items()}
    assert sizes == {"either-or": 1 + 2 * 4 + 4 * 4 * 2, **{f"quorum-{k}-of-3": 1 + 3 * 4 + 3 * 16 * 2 + 64 * 6
                                                             for k in (1, 2, 3)}}
    assert sum(1 for _ in answer_orders(FOUR)) == 1 + 4 * 4 + 6 * 16 * 2 + 4 * 64 * 6 + 256 * 24
    sample = four_approver_sample()
    assert len({(k, tuple(a)) for k, a in sample}) >= 490 and {k for k, _ in sample} == {1, 2, 3, 4}


def play_case(sfn: Any, ddb: Any, stack: Stack, approvers: Sequence[str], quorum: int | None,
              answers: list[Answer]) -> list[str]:
    """Run one case; the ways it departs from the rule (empty when it ends as predicted)."""
    arn = stack.outputs["StateMachineArn"]
    rule = expected(approvers, answers, quorum)
    deadline = UNSETTLED_DEADLINE if rule.settled_after is None else 3600
    execution_arn = start_approval(sfn, arn, list(approvers), request=REQUEST, quorum=quorum, timeout_seconds=deadline)
    tokens = {r.approver: r.task_token for r in requests_sent(sfn, execution_arn, len(approvers)).requests}
    problems = []
    for index, (approver, kind) in enumerate(answers):
        late = rule.settled_after is not None and index >= rule.settled_after
        if late and index == rule.settled_after:
            ended(sfn, execution_arn)  # the outcome is out: what follows must be refused
        code = refusal(lambda: send_answer(sfn, tokens[approver], kind))  # noqa: B023 - called at once
        if code != ("TaskTimedOut" if late else None):
            problems.append(f"{approver}'s {kind} ({'after' if late else 'before'} the outcome) got {code}")
        if not late and quorum is not None:
            wait_until_recorded(ddb, stack.outputs["TableName"], execution_arn, approver)
    if rule.settled_after is None and sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
        problems.append(f"the {deadline} s deadline passed before every answer was counted: the case proves nothing")
    execution = ended(sfn, execution_arn, timeout=deadline + 60)
    pattern = "either-or" if quorum is None else "quorum"
    if (execution.status, execution.output) != ("SUCCEEDED", rule.output(pattern, REQUEST, quorum)):
        problems.append(f"ended {execution.status} {execution.output or (execution.error, execution.cause)}, "
                        f"expected {rule}")
    return [f"{answers}: {p}" for p in problems]


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_every_answer_in_every_order_ends_as_the_rule_says(
        request: pytest.FixtureRequest, cloud: Cloud, sfn: Any, configuration: str, chunk: int) -> None:
    approvers, quorum = CONFIGURATIONS[configuration]
    stack: Stack = request.getfixturevalue("either_or" if quorum is None else "quorum")
    cases = list(answer_orders(approvers))[chunk::CHUNKS]
    ddb = cloud.client("dynamodb")
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        problems = [p for found in pool.map(
            lambda answers: play_case(sfn, ddb, stack, approvers, quorum, answers), cases)
            for p in found]
    assert problems == []


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_a_sample_of_four_approvers_answering_in_any_order_ends_as_the_rule_says(
        cloud: Cloud, sfn: Any, quorum: Stack, chunk: int) -> None:
    cases = four_approver_sample()[chunk::CHUNKS]
    ddb = cloud.client("dynamodb")
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        problems = [p for found in pool.map(lambda case: play_case(sfn, ddb, quorum, FOUR, *case), cases)
                    for p in found]
    assert problems == []
