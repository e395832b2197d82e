"""The whole decision space: every way the approvers can answer, in every order, ends as the rule says.

Each approver approves, rejects, answers with a malformed decision, fails the task
(SendTaskFailure) or stays silent; those who answer do so in every possible order, each
answer sent once the previous one is counted. For either-or and for quorum k = 1, 2, 3 of
three approvers that is 41 + 3 × 493 executions; for four approvers (quorum 1 to 4) a seeded
random sample of 500 of its 4 × 7,889 cases. Each must end SUCCEEDED with the outcome,
decidedBy, approvals and rejections the rule predicts (``support.expected``), and every
answer sent after the outcome must be refused with TaskTimedOut.

An unsettled case needs every answer counted before its deadline; one the deadline overtook
(a loaded machine) proves nothing and is played again with a longer deadline.

"Counted" means what makes the next answer's effect deterministic: in either-or every answer
settles the outcome, so the next one waits for the end; in quorum a flow settles on the tally
its own write returns, so the next answer waits until the previous decision is in the tally
(and after a settling answer, for the end).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from support import (
    ANSWER_KINDS,
    Answer,
    Overtaken,
    beating_the_deadline,
    deadline_passed_before,
    described_end,
    expected,
    last_events,
    problems_of,
    refusal,
    send_answer,
    timeless,
    tokens_out,
    wait_until_recorded,
)

from earlyexit.approvals import start_approval
from earlyexit.errors import WaitTimeout
from earlyexit.local import Cloud, Stack

SILENCE = "silence"
REQUEST = {"case": "decision space"}
SETTLED_DEADLINE = 3600  # seconds: the answers settle the outcome long before
UNSETTLED_DEADLINES = (5, 20, 60)  # answers that settle nothing wait for the deadline, tried in turn
# Cases between their start and their last answer at once: more only adds contention for the engine's GIL (and
# delays an unsettled case's answers past its deadline).
ANSWERING_AT_ONCE = 8


def answer_orders(approvers: Sequence[str]) -> Iterator[list[Answer]]:
    """Every assignment of an answer kind or silence to each approver, in every order of those who answer."""
    for assignment in itertools.product((*ANSWER_KINDS, SILENCE), repeat=len(approvers)):
        answering = [(a, kind) for a, kind in zip(approvers, assignment, strict=True) if kind != SILENCE]
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
    # n approvers: sum over the m who answer of C(n, m) x 4^m kinds x m! orders
    sizes = {name: sum(1 for _ in answer_orders(approvers)) for name, (approvers, _) in CONFIGURATIONS.items()}
    assert sizes == {"either-or": 41, "quorum-1-of-3": 493, "quorum-2-of-3": 493, "quorum-3-of-3": 493}
    assert sum(1 for _ in answer_orders(FOUR)) == 7889
    sample = four_approver_sample()
    assert len({(k, tuple(a)) for k, a in sample}) >= 490 and {k for k, _ in sample} == {1, 2, 3, 4}


def answer_in_turn(sfn: Any, ddb: Any, stack: Stack, execution_arn: str, approvers: Sequence[str],
                   quorum: int | None, answers: list[Answer], settled_after: int | None) -> list[str]:
    """Send ``answers`` one after the other, each once the previous one is counted; those after the one that
    settles the outcome once the outcome is out. The problems: answers refused before it, or accepted after."""
    tokens = tokens_out(sfn, execution_arn, len(approvers))
    problems = []
    for index, (approver, kind) in enumerate(answers):
        late = settled_after is not None and index >= settled_after
        if late and index == settled_after:
            described_end(sfn, execution_arn)  # the outcome is out: what follows must be refused
        code = refusal(lambda: send_answer(sfn, tokens[approver], kind))  # noqa: B023 - called at once
        if code != ("TaskTimedOut" if late else None):
            problems.append(f"{approver}'s {kind} ({'after' if late else 'before'} the outcome) got {code}")
        if not late and quorum is not None:
            try:
                wait_until_recorded(ddb, stack.outputs["TableName"], execution_arn, approver)
            except WaitTimeout as error:
                status = sfn.describe_execution(executionArn=execution_arn)["status"]
                if settled_after is None and status != "RUNNING":
                    raise Overtaken(execution_arn) from None
                raise WaitTimeout(f"{error}: {last_events(sfn, execution_arn)}") from None
    return problems


def play_case(sfn: Any, ddb: Any, stack: Stack, approvers: Sequence[str], quorum: int | None,
              answers: list[Answer], deadline: int, answering: threading.Semaphore) -> list[str]:
    """Run one case; the ways it departs from the rule (empty when it ends as predicted). From its start to its
    last answer the case holds a slot of ``answering``: few cases answer at a time, each well within its deadline."""
    rule = expected(approvers, answers, quorum)
    with answering:
        started = time.monotonic()
        execution_arn = start_approval(sfn, stack.outputs["StateMachineArn"], list(approvers), request=REQUEST,
                                       quorum=quorum, timeout_seconds=deadline)
        problems = answer_in_turn(sfn, ddb, stack, execution_arn, approvers, quorum, answers, rule.settled_after)
        if rule.settled_after is None:
            counted = datetime.now(UTC)  # every answer is in the tally (or has ended its flow) by now
            if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
                raise Overtaken(execution_arn)
    if rule.settled_after is None:
        time.sleep(max(0.0, started + deadline - time.monotonic()))  # nothing happens before the deadline
    described = described_end(sfn, execution_arn, timeout=60)
    if rule.settled_after is None and deadline_passed_before(sfn, execution_arn, counted):
        raise Overtaken(execution_arn)  # the deadline flow read the tally before the last answer was in it
    output = json.loads(described["output"]) if "output" in described else None
    try:
        output = timeless(output)
    except AssertionError as error:
        problems.append(str(error))
    if (described["status"], output) != ("SUCCEEDED", rule.output(stack.pattern, REQUEST, quorum)):
        problems.append(f"ended {described['status']} {output or (described.get('error'), described.get('cause'))}, "
                        f"expected {rule}")
    return [f"{answers}: {p}" for p in problems]


Case = tuple[Stack, Sequence[str], int | None, list[Answer]]  # (stack, approvers, quorum, answers)


def run_case(sfn: Any, ddb: Any, case: Case, answering: threading.Semaphore) -> list[str]:
    """Play ``case``; an unsettled one the deadline overtook is played again with a longer deadline."""
    stack, approvers, quorum, answers = case
    try:
        return beating_the_deadline(
            lambda deadline: play_case(sfn, ddb, stack, approvers, quorum, answers, deadline, answering),
            UNSETTLED_DEADLINES if is_unsettled(case) else (SETTLED_DEADLINE,))
    except (Overtaken, WaitTimeout) as error:
        return [f"{answers}: {error}"]


def is_unsettled(case: Case) -> bool:
    """Whether only the deadline ends ``case``."""
    _, approvers, quorum, answers = case
    return expected(approvers, answers, quorum).settled_after is None


def run_all(cloud: Cloud, cases: list[Case]) -> list[str]:
    """Play every case, ``ANSWERING_AT_ONCE`` answering at a time; the unsettled ones first, each waiting for its
    deadline beside the others once answered. Returns every departure from the rule."""
    sfn, ddb = cloud.client("stepfunctions"), cloud.client("dynamodb")
    answering = threading.Semaphore(ANSWERING_AT_ONCE)
    ordered = sorted(cases, key=lambda case: not is_unsettled(case))  # stable: the unsettled first
    waiting = sum(1 for case in cases if is_unsettled(case))
    return problems_of(lambda case: run_case(sfn, ddb, case, answering), ordered,
                       workers=waiting + ANSWERING_AT_ONCE)


@pytest.mark.load
@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_every_answer_in_every_order_ends_as_the_rule_says(
        request: pytest.FixtureRequest, cloud: Cloud, configuration: str) -> None:
    approvers, quorum = CONFIGURATIONS[configuration]
    stack: Stack = request.getfixturevalue("either_or" if quorum is None else "quorum")
    problems = run_all(cloud, [(stack, approvers, quorum, answers) for answers in answer_orders(approvers)])
    assert not problems, "\n".join(problems)


@pytest.mark.load
def test_a_sample_of_four_approvers_answering_in_any_order_ends_as_the_rule_says(cloud: Cloud, quorum: Stack) -> None:
    problems = run_all(cloud, [(quorum, FOUR, k, answers) for k, answers in four_approver_sample()])
    assert not problems, "\n".join(problems)
