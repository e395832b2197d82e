"""Quorum: k of N approvals (N = 2 to 40), tallied atomically; the Parallel ends once the outcome is settled."""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import (
    Tally,
    answer_at_once,
    ended,
    error_code,
    expected,
    play,
    play_to_the_deadline,
    record,
    record_at_once,
    requests_out,
    send_answer,
    settle,
    tally,
    timeless,
    unique,
    wait_until_counted,
)

from earlyexit.approvals import start_approval
from earlyexit.history import Execution, Exit, read_execution
from earlyexit.local import Cloud, Stack
from earlyexit.states import DEADLINE_PASSED, QUORUM

APPROVERS = ("alice", "bob", "carol")


def board(size: int) -> list[str]:
    """``size`` distinct approver names."""
    return [f"approver-{index:02d}" for index in range(1, size + 1)]


@pytest.fixture(scope="module")
def arn(quorum: Stack) -> str:
    return quorum.outputs["StateMachineArn"]


@pytest.fixture(scope="module")
def tallied(cloud: Cloud, quorum: Stack) -> Callable[[str], Tally | None]:
    """The tally item of an execution of the quorum stack (None when it has none)."""
    ddb = cloud.client("dynamodb")
    return lambda execution_arn: tally(ddb, quorum.outputs["TableName"], execution_arn)


def in_order(names: list[str]) -> list[str]:
    return [a for a in APPROVERS if a in names]


@pytest.mark.parametrize("pair", list(itertools.permutations(APPROVERS, 2)), ids="-then-".join)
def test_second_approval_meets_quorum_and_stops_third_flow(sfn: Any, arn: str, tallied: Any,
                                                           pair: tuple[str, str]) -> None:
    answers = [(pair[0], "approve"), (pair[1], "approve")]
    execution = play(sfn, arn, APPROVERS, answers, quorum=2, request={"budget": 5000})
    assert timeless(execution.output) == {"outcome": "APPROVED", "pattern": "quorum", "request": {"budget": 5000},
                                          "approvals": in_order(list(pair)), "rejections": [],
                                          "decisions": record(answers), "decidedBy": pair[1], "quorum": 2}
    assert execution.exited_by == Exit(QUORUM.MET, pair[1])
    assert tallied(execution.arn).approvals == set(pair)
    third = next(r for r in execution.requests if r.approver not in pair)
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=third.task_token, output=json.dumps({"decision": "approve"}))
    assert error_code(refused.value) == "TaskTimedOut"


def test_a_two_of_three_approval_costs_at_most_14_transitions(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, [("alice", "approve"), ("bob", "approve")], quorum=2)
    assert execution.transitions <= 14


@pytest.mark.parametrize("size", [3, 5, 10])
def test_each_further_answer_costs_the_same_number_of_transitions(sfn: Any, arn: str, size: int) -> None:
    approvers = board(size)
    one, two = (play(sfn, arn, approvers, [(a, "approve") for a in approvers[:k]], quorum=k) for k in (1, 2))
    three = play(sfn, arn, approvers, [(a, "approve") for a in approvers[:3]], quorum=3)
    assert two.transitions - one.transitions == three.transitions - two.transitions > 0


def test_one_of_three_is_met_by_the_first_approval(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, [("carol", "approve")], quorum=1)
    assert (execution.output["outcome"], execution.output["approvals"], execution.output["decidedBy"]) == (
        "APPROVED", ["carol"], "carol")


def test_three_of_three_needs_every_approval(sfn: Any, arn: str) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), quorum=3, timeout_seconds=120)
    tokens = {r.approver: r.task_token for r in requests_out(sfn, execution_arn, 3).requests}
    for approver in ("bob", "alice"):
        send_answer(sfn, tokens[approver], "approve")
        wait_until_counted(sfn, execution_arn, approver)
    assert read_execution(sfn, execution_arn).status == "RUNNING"
    send_answer(sfn, tokens["carol"], "approve")
    output = ended(sfn, execution_arn).output
    assert (output["outcome"], output["approvals"], output["decidedBy"]) == ("APPROVED", list(APPROVERS), "carol")


@pytest.mark.parametrize(("k", "answers", "decided_by"), [
    (2, [("alice", "reject"), ("bob", "reject")], "bob"),
    (3, [("carol", "reject")], "carol"),
    (1, [("alice", "reject"), ("bob", "reject"), ("carol", "reject")], "carol"),
    (2, [("alice", "approve"), ("bob", "reject"), ("carol", "reject")], "carol"),
])
def test_rejections_that_make_the_quorum_unreachable_reject(sfn: Any, arn: str, k: int,
                                                           answers: list[tuple[str, str]], decided_by: str) -> None:
    execution = play(sfn, arn, APPROVERS, answers, quorum=k)
    rejected = [a for a, d in answers if d == "reject"]
    assert (execution.output["outcome"], execution.output["rejections"], execution.output["decidedBy"]) == (
        "REJECTED", in_order(rejected), decided_by)
    assert execution.exited_by == Exit(QUORUM.UNREACHABLE, decided_by)


def test_approval_after_a_rejection_still_meets_the_quorum(sfn: Any, arn: str) -> None:
    answers = [("alice", "approve"), ("bob", "reject"), ("carol", "approve")]
    execution = play(sfn, arn, APPROVERS, answers, quorum=2)
    assert timeless(execution.output) == {"outcome": "APPROVED", "pattern": "quorum", "request": {},
                                          "approvals": ["alice", "carol"], "rejections": ["bob"],
                                          "decisions": record(answers), "decidedBy": "carol", "quorum": 2}


def test_send_task_failure_and_malformed_answers_count_as_rejections(sfn: Any, arn: str) -> None:
    answers = [("alice", "failure"), ("bob", "malformed")]
    execution = play(sfn, arn, APPROVERS, answers, quorum=2)
    output = execution.output
    assert (output["outcome"], output["approvals"], output["rejections"]) == ("REJECTED", [], ["alice", "bob"])
    assert timeless(output)["decisions"] == record(answers)  # both rejections, neither with a comment


# -- boards of any size from 2 to 40 --------------------------------------------------------------

SIZES_AND_QUORUMS = [(size, k) for size in (2, 5, 40) for k in sorted({1, size // 2 + 1, size})]


@pytest.mark.parametrize(("size", "k"), SIZES_AND_QUORUMS, ids=[f"{k}-of-{n}" for n, k in SIZES_AND_QUORUMS])
def test_the_kth_approval_meets_a_quorum_of_k_among_n(sfn: Any, arn: str, size: int, k: int) -> None:
    approvers = board(size)
    rejecting = [approvers[-1]] if k < size else []  # one rejection on the way changes nothing
    answers = [(a, "reject") for a in rejecting] + [(a, "approve") for a in approvers[:k]]
    execution = play(sfn, arn, approvers, answers, quorum=k, timeout_seconds=300)
    assert timeless(execution.output) == expected(approvers, answers, k).output("quorum", {}, k)
    assert execution.exited_by == Exit(QUORUM.MET, approvers[k - 1])


@pytest.mark.parametrize(("size", "k"), [(2, 1), (2, 2), (5, 1), (5, 3), (5, 5)],
                         ids=["1-of-2", "2-of-2", "1-of-5", "3-of-5", "5-of-5"])
def test_rejections_beyond_n_minus_k_make_the_quorum_unreachable(sfn: Any, arn: str, size: int, k: int) -> None:
    approvers = board(size)
    answers = [(a, "reject") for a in approvers[: size - k + 1]]
    execution = play(sfn, arn, approvers, answers, quorum=k, timeout_seconds=300)
    assert timeless(execution.output) == expected(approvers, answers, k).output("quorum", {}, k)
    assert execution.exited_by == Exit(QUORUM.UNREACHABLE, approvers[size - k])


def test_forty_approvers_are_all_asked_at_once(sfn: Any, arn: str) -> None:
    approvers = board(40)
    execution_arn = start_approval(sfn, arn, approvers, quorum=40, timeout_seconds=300)
    execution = requests_out(sfn, execution_arn, 40)
    assert sorted(r.approver for r in execution.requests) == approvers
    assert [r.approver for r in execution.pending] == approvers
    sfn.stop_execution(executionArn=execution_arn)


@pytest.mark.load
def test_forty_approvers_answering_at_the_same_instant_lose_no_decision(sfn: Any, arn: str, tallied: Any) -> None:
    rng = random.Random(40)
    approvers = board(40)
    plans = [(rng.randint(1, 40), [rng.choice(["approve", "reject"]) for _ in approvers]) for _ in range(20)]

    def run(plan: tuple[int, list[str]]) -> tuple[Execution, dict[str, Any]]:
        k, decisions = plan
        answers = list(zip(approvers, decisions, strict=True))
        execution = play(sfn, arn, approvers, answers, simultaneous=True, quorum=k, timeout_seconds=300)
        return execution, tallied(execution.arn)

    with ThreadPoolExecutor(max_workers=4) as pool:  # 4 executions at a time, 40 answers at once in each
        results = list(pool.map(run, plans))
    for (k, decisions), (execution, recorded) in zip(plans, results, strict=True):
        check_simultaneous(execution, approvers, k, dict(zip(approvers, decisions, strict=True)), recorded)


# -- deadline, tally, late answers ----------------------------------------------------------------


@pytest.mark.deploys
def test_default_quorum_comes_from_the_stack_parameter(cloud: Cloud, sfn: Any) -> None:
    stack = cloud.deploy("quorum", parameters={"DefaultQuorum": 3}, stack_name=unique("quorum-default-3"))
    execution = play(sfn, stack.outputs["StateMachineArn"], APPROVERS,
                     [("alice", "approve"), ("bob", "approve"), ("carol", "approve")])
    assert (execution.output["quorum"], execution.output["decidedBy"]) == (3, "carol")


@pytest.mark.deploys
def test_a_default_quorum_larger_than_the_board_is_invalid_input_on_quorum(cloud: Cloud, sfn: Any) -> None:
    stack = cloud.deploy("quorum", parameters={"DefaultQuorum": 5}, stack_name=unique("quorum-default-5"))
    execution_arn = sfn.start_execution(stateMachineArn=stack.outputs["StateMachineArn"],
                                        input=json.dumps({"approvers": list(APPROVERS)}))["executionArn"]
    execution = ended(sfn, execution_arn)
    assert (execution.status, execution.error) == ("FAILED", "InvalidInput")
    assert execution.cause == ("quorum: the stack's DefaultQuorum (5) is larger than the number of approvers (3); "
                               "pass a quorum from 1 to 3")
    assert execution.requests == []


def test_deadline_times_out_with_the_decisions_received_so_far(sfn: Any, arn: str) -> None:
    answers = [("bob", "approve"), ("alice", "approve")]
    execution = play_to_the_deadline(sfn, arn, APPROVERS, answers, quorum=3)  # 1 s, longer if it overtook them
    assert timeless(execution.output) == {"outcome": "TIMED_OUT", "pattern": "quorum", "request": {},
                                          "approvals": ["alice", "bob"], "rejections": [],
                                          "decisions": record(answers), "decidedBy": None, "quorum": 3}
    assert execution.exited_by == Exit(DEADLINE_PASSED, None)


def test_deadline_with_no_decision_times_out_with_empty_lists(sfn: Any, arn: str, tallied: Any) -> None:
    execution = play(sfn, arn, APPROVERS, quorum=2, timeout_seconds=1)
    assert timeless(execution.output) == {"outcome": "TIMED_OUT", "pattern": "quorum", "request": {},
                                          "approvals": [], "rejections": [], "decisions": [], "decidedBy": None,
                                          "quorum": 2}
    assert execution.exited_by == Exit(DEADLINE_PASSED, None)
    assert tallied(execution.arn) is None


def test_tally_item_expires_after_the_deadline(sfn: Any, arn: str, tallied: Any) -> None:
    before = time.time()
    execution = play(sfn, arn, APPROVERS, [("alice", "approve"), ("bob", "approve")], quorum=2,
                     timeout_seconds=3600)
    expires = tallied(execution.arn).expires_at
    assert before + 3600 < expires <= time.time() + 3600 + 86400


def test_late_decision_after_the_outcome_is_refused_and_changes_nothing(sfn: Any, arn: str, tallied: Any) -> None:
    execution = play(sfn, arn, APPROVERS, [("alice", "reject"), ("bob", "reject")], quorum=2)
    carol = execution.request_for("carol")
    with pytest.raises(ClientError) as refused:
        send_answer(sfn, carol.task_token, "approve")
    assert error_code(refused.value) == "TaskTimedOut"
    assert read_execution(sfn, execution.arn).output == execution.output
    assert tallied(execution.arn).approvals == set()


# -- invalid input --------------------------------------------------------------------------------

INVALID_INPUTS = [
    ({"approvers": ["alice"]}, "approvers: required, a list of 2 to 40 distinct strings, none empty or blank"),
    ({"approvers": board(41)}, "approvers: required, a list of 2 to 40 distinct strings, none empty or blank"),
    ({"approvers": ["alice", "bob", "bob"]}, "approvers: required, a list of 2 to 40 distinct strings, none empty or "
                                             "blank"),
    ({"approvers": ["alice", "bob", ""]}, "approvers: required, a list of 2 to 40 distinct strings, none empty or "
                                          "blank"),
    ({"quorum": 2}, "approvers: required, a list of 2 to 40 distinct strings, none empty or blank"),
    ({"approvers": list(APPROVERS), "quorum": 0}, "quorum: must be an integer from 1 to the number of approvers (3)"),
    ({"approvers": list(APPROVERS), "quorum": 4}, "quorum: must be an integer from 1 to the number of approvers (3)"),
    ({"approvers": ["alice", "bob"], "quorum": 3}, "quorum: must be an integer from 1 to the number of approvers (2)"),
    ({"approvers": list(APPROVERS), "quorum": 1.5}, "quorum: must be an integer from 1 to the number of approvers (3)"),
    ({"approvers": list(APPROVERS), "quorum": "2"}, "quorum: must be an integer from 1 to the number of approvers (3)"),
    ({"approvers": list(APPROVERS), "quorum": None}, "quorum: must be an integer from 1 to the number of approvers "
                                                     "(3)"),
    ({"approvers": list(APPROVERS), "quorum": True}, "quorum: must be an integer from 1 to the number of approvers "
                                                     "(3)"),
    ({"approvers": list(APPROVERS), "timeoutSeconds": 0}, "timeoutSeconds: must be an integer from 1 to 31449600 "
                                                          "(364 days)"),
    ({"approvers": list(APPROVERS), "timeoutSeconds": 31449601}, "timeoutSeconds: must be an integer from 1 to "
                                                                 "31449600 (364 days)"),
    ({"approvers": list(APPROVERS), "request": "x"}, "request: must be a JSON object"),
]


@pytest.mark.parametrize(("execution_input", "cause"), INVALID_INPUTS,
                         ids=[json.dumps(i)[:60] for i, _ in INVALID_INPUTS])
def test_invalid_input_fails_naming_the_field_and_rule_before_any_request_or_write(
        sfn: Any, arn: str, tallied: Any, execution_input: Any, cause: str) -> None:
    execution_arn = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    execution = ended(sfn, execution_arn)
    assert (execution.status, execution.error, execution.cause) == ("FAILED", "InvalidInput", cause)
    assert execution.requests == [] and execution.transitions <= 2
    assert tallied(execution_arn) is None


@pytest.mark.parametrize("execution_input", [{"approvers": ["alice", "bob"], "quorum": 2},
                                             {"approvers": board(40), "quorum": 40},
                                             {"approvers": list(APPROVERS), "quorum": 2.0}], ids=["2", "40", "2.0"])
def test_boundary_inputs_are_accepted(sfn: Any, arn: str, execution_input: dict[str, Any]) -> None:
    execution_arn = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    assert len(requests_out(sfn, execution_arn, len(execution_input["approvers"])).requests) == len(
        execution_input["approvers"])
    sfn.stop_execution(executionArn=execution_arn)


# -- answers at the same instant ------------------------------------------------------------------


def check_simultaneous(execution: Execution, approvers: list[str], quorum: int, decisions: dict[str, str],
                       recorded: Tally | None) -> None:
    """Whatever order simultaneous answers land in: the outcome the rule gives (everyone answers, so any order gives
    the same), lists that settle it as a tally read would, a decider on the winning side (or none: the first flow
    to end the Parallel wrote after the outcome was settled the other way), no decision the output lists missing
    from the tally, and one record per decision listed."""
    output = execution.output
    assert execution.status == "SUCCEEDED", execution.error
    rule = expected(approvers, list(decisions.items()), quorum)
    assert output["outcome"] == rule.outcome
    assert settle(approvers, quorum, [("", set(output["approvals"]), set(output["rejections"]))])[0] == rule.outcome
    winning = "approve" if output["outcome"] == "APPROVED" else "reject"
    assert output["decidedBy"] is None or decisions[output["decidedBy"]] == winning, output["decidedBy"]
    assert all(decisions[a] == "approve" for a in output["approvals"])
    assert all(decisions[a] == "reject" for a in output["rejections"])
    assert recorded is not None
    assert set(output["approvals"]) <= recorded.approvals
    assert set(output["rejections"]) <= recorded.rejections
    listed = output["approvals"] + output["rejections"]
    kept = timeless(output)["decisions"]  # oldest first, in an order the test cannot know: compared sorted
    assert sorted(kept, key=lambda d: d["approver"]) == record_at_once(sorted((a, decisions[a]) for a in listed))


def test_simultaneous_answers_over_54_executions_lose_no_decision_and_decide_correctly(
        sfn: Any, arn: str, tallied: Any) -> None:
    combos = [(q, d) for q in (1, 2, 3) for d in itertools.product(("approve", "reject"), repeat=3)]
    plans = combos * 2 + [(2, ("approve", "approve", "reject"))] * 6  # exactly at quorum, the common case
    assert len(plans) >= 50

    def run(plan: tuple[int, tuple[str, str, str]]) -> tuple[Execution, dict[str, Any]]:
        quorum, decisions = plan
        execution_arn = start_approval(sfn, arn, list(APPROVERS), quorum=quorum, timeout_seconds=120)
        answer_at_once(sfn, execution_arn, list(zip(APPROVERS, decisions, strict=True)))
        execution = ended(sfn, execution_arn)
        return execution, tallied(execution.arn)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, plans))
    for (quorum, decisions), (execution, recorded) in zip(plans, results, strict=True):
        check_simultaneous(execution, list(APPROVERS), quorum, dict(zip(APPROVERS, decisions, strict=True)),
                           recorded)
