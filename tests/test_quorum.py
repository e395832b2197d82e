"""Quorum: k of 3 approvals, tallied atomically; the Parallel ends once the outcome is settled."""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import error_code, play, unique

from earlyexit.approvals import decide, start_approval, wait_for_outcome, wait_for_requests
from earlyexit.history import Execution, read_execution
from earlyexit.local import Cloud, Stack

APPROVERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def arn(quorum: Stack) -> str:
    return quorum.outputs["StateMachineArn"]


@pytest.fixture(scope="module")
def tally(cloud: Cloud, quorum: Stack):
    """The tally item of an execution, read consistently: {"approvals": [...], "rejections": [...], ...}."""
    ddb = cloud.client("dynamodb")

    def read(execution_arn: str) -> dict[str, Any] | None:
        item = ddb.get_item(TableName=quorum.outputs["TableName"], Key={"executionArn": {"S": execution_arn}},
                            ConsistentRead=True).get("Item")
        if item is None:
            return None
        return {"approvals": sorted(item.get("approvals", {}).get("SS", [])),
                "rejections": sorted(item.get("rejections", {}).get("SS", [])),
                "expiresAt": int(item["expiresAt"]["N"])}
    return read


def in_order(names: list[str]) -> list[str]:
    return [a for a in APPROVERS if a in names]


@pytest.mark.parametrize("pair", list(itertools.permutations(APPROVERS, 2)), ids="-then-".join)
def test_second_approval_meets_quorum_and_stops_third_flow(sfn: Any, arn: str, tally: Any,
                                                           pair: tuple[str, str]) -> None:
    execution = play(sfn, arn, APPROVERS, [(pair[0], "approve"), (pair[1], "approve")], quorum=2,
                     request={"budget": 5000})
    assert execution.output == {"outcome": "APPROVED", "pattern": "quorum", "request": {"budget": 5000},
                                "approvals": in_order(list(pair)), "rejections": [], "decidedBy": pair[1],
                                "quorum": 2}
    assert execution.exited_by == f"Quorum met {APPROVERS.index(pair[1]) + 1}"
    assert tally(execution.arn)["approvals"] == sorted(pair)
    third = next(r for r in execution.requests if r.approver not in pair)
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=third.task_token, output=json.dumps({"decision": "approve"}))
    assert error_code(refused.value) == "TaskTimedOut"


def test_a_two_of_three_approval_costs_at_most_13_transitions(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, [("alice", "approve"), ("bob", "approve")], quorum=2)
    assert execution.transitions <= 13


def test_one_of_three_is_met_by_the_first_approval(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, [("carol", "approve")], quorum=1)
    assert (execution.output["outcome"], execution.output["approvals"], execution.output["decidedBy"]) == (
        "APPROVED", ["carol"], "carol")


def test_three_of_three_needs_every_approval(sfn: Any, arn: str) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), quorum=3, timeout_seconds=60)
    wait_for_requests(sfn, execution_arn, 3)
    decide(sfn, execution_arn, "bob", "approve")
    decide(sfn, execution_arn, "alice", "approve")
    time.sleep(0.3)
    assert read_execution(sfn, execution_arn).status == "RUNNING"
    decide(sfn, execution_arn, "carol", "approve")
    output = wait_for_outcome(sfn, execution_arn).output
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
    assert execution.exited_by == f"Quorum unreachable {APPROVERS.index(decided_by) + 1}"


def test_approval_after_a_rejection_still_meets_the_quorum(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, [("alice", "approve"), ("bob", "reject"), ("carol", "approve")], quorum=2)
    assert execution.output == {"outcome": "APPROVED", "pattern": "quorum", "request": {},
                                "approvals": ["alice", "carol"], "rejections": ["bob"], "decidedBy": "carol",
                                "quorum": 2}


def test_send_task_failure_and_malformed_answers_count_as_rejections(sfn: Any, arn: str) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), quorum=2, timeout_seconds=60)
    tokens = {r.approver: r.task_token for r in wait_for_requests(sfn, execution_arn, 3).requests}
    sfn.send_task_failure(taskToken=tokens["alice"], error="Declined")
    time.sleep(0.2)
    sfn.send_task_success(taskToken=tokens["bob"], output=json.dumps({"decision": "yes please"}))
    output = wait_for_outcome(sfn, execution_arn).output
    assert (output["outcome"], output["approvals"], output["rejections"]) == ("REJECTED", [], ["alice", "bob"])


@pytest.mark.deploys
def test_default_quorum_comes_from_the_stack_parameter(cloud: Cloud, sfn: Any) -> None:
    stack = cloud.deploy("quorum", parameters={"DefaultQuorum": 3}, stack_name=unique("quorum-default-3"))
    execution = play(sfn, stack.outputs["StateMachineArn"], APPROVERS,
                     [("alice", "approve"), ("bob", "approve"), ("carol", "approve")])
    assert (execution.output["quorum"], execution.output["decidedBy"]) == (3, "carol")


def test_deadline_times_out_with_the_decisions_received_so_far(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, [("bob", "approve"), ("alice", "approve")], quorum=3, timeout_seconds=1)
    assert execution.output == {"outcome": "TIMED_OUT", "pattern": "quorum", "request": {},
                                "approvals": ["alice", "bob"], "rejections": [], "decidedBy": None, "quorum": 3}
    assert execution.exited_by == "Deadline passed"


def test_deadline_with_no_decision_times_out_with_empty_lists(sfn: Any, arn: str, tally: Any) -> None:
    execution = play(sfn, arn, APPROVERS, quorum=2, timeout_seconds=1)
    assert execution.output == {"outcome": "TIMED_OUT", "pattern": "quorum", "request": {},
                                "approvals": [], "rejections": [], "decidedBy": None, "quorum": 2}
    assert execution.exited_by == "Deadline passed"
    assert tally(execution.arn) is None


def test_tally_item_expires_after_the_deadline(sfn: Any, arn: str, tally: Any) -> None:
    before = time.time()
    execution = play(sfn, arn, APPROVERS, [("alice", "approve"), ("bob", "approve")], quorum=2,
                     timeout_seconds=3600)
    expires = tally(execution.arn)["expiresAt"]
    assert before + 3600 < expires <= time.time() + 3600 + 86400


def test_late_decision_after_the_outcome_is_refused_and_changes_nothing(sfn: Any, arn: str, tally: Any) -> None:
    execution = play(sfn, arn, APPROVERS, [("alice", "reject"), ("bob", "reject")], quorum=2)
    carol = next(r for r in execution.requests if r.approver == "carol")
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=carol.task_token, output=json.dumps({"decision": "approve"}))
    assert error_code(refused.value) == "TaskTimedOut"
    assert read_execution(sfn, execution.arn).output == execution.output
    assert tally(execution.arn)["approvals"] == []


@pytest.mark.parametrize(("execution_input", "field"), [
    ({"approvers": ["alice", "bob"]}, "approvers"),
    ({"approvers": ["alice", "bob", "carol", "dave"]}, "approvers"),
    ({"approvers": ["alice", "bob", "bob"]}, "approvers"),
    ({"approvers": ["alice", "bob", ""]}, "approvers"),
    ({"quorum": 2}, "approvers"),
    ({"approvers": list(APPROVERS), "quorum": 0}, "quorum"),
    ({"approvers": list(APPROVERS), "quorum": 4}, "quorum"),
    ({"approvers": list(APPROVERS), "quorum": 1.5}, "quorum"),
    ({"approvers": list(APPROVERS), "quorum": "2"}, "quorum"),
    ({"approvers": list(APPROVERS), "quorum": None}, "quorum"),
    ({"approvers": list(APPROVERS), "quorum": True}, "quorum"),
    ({"approvers": list(APPROVERS), "timeoutSeconds": 0}, "timeoutSeconds"),
    ({"approvers": list(APPROVERS), "timeoutSeconds": 31449601}, "timeoutSeconds"),
    ({"approvers": list(APPROVERS), "request": "x"}, "request"),
], ids=repr)
def test_invalid_input_fails_naming_the_field_before_any_request_or_write(sfn: Any, arn: str, tally: Any,
                                                                          execution_input: Any, field: str) -> None:
    execution_arn = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    execution = wait_for_outcome(sfn, execution_arn)
    assert (execution.status, execution.error) == ("FAILED", "InvalidInput")
    assert execution.cause.startswith(f"{field}: ")
    assert execution.requests == [] and execution.transitions <= 2
    assert tally(execution_arn) is None


def _expected_outcome(quorum: int, decisions: tuple[str, str, str]) -> str:
    return "APPROVED" if decisions.count("approve") >= quorum else "REJECTED"


def _check_simultaneous(execution: Execution, quorum: int, decisions: dict[str, str], recorded: dict[str, Any]) -> None:
    output = execution.output
    assert execution.status == "SUCCEEDED", execution.error
    assert output["outcome"] == _expected_outcome(quorum, tuple(decisions.values()))
    decider_list = output["approvals"] if output["outcome"] == "APPROVED" else output["rejections"]
    assert output["decidedBy"] in decider_list
    assert len(output["approvals"]) >= quorum if output["outcome"] == "APPROVED" else (
        len(output["rejections"]) > 3 - quorum)
    for approver in output["approvals"]:
        assert decisions[approver] == "approve"
    for approver in output["rejections"]:
        assert decisions[approver] == "reject"
    # No lost decision: every decision the output counts is in the tally item.
    assert set(output["approvals"]) <= set(recorded["approvals"])
    assert set(output["rejections"]) <= set(recorded["rejections"])


def test_simultaneous_answers_over_54_executions_lose_no_decision_and_decide_correctly(
        sfn: Any, arn: str, tally: Any) -> None:
    combos = [(q, d) for q in (1, 2, 3) for d in itertools.product(("approve", "reject"), repeat=3)]
    plans = combos * 2 + [(2, ("approve", "approve", "reject"))] * 6  # exactly at quorum, the common case
    assert len(plans) >= 50

    def run(plan: tuple[int, tuple[str, str, str]]) -> tuple[Execution, dict[str, Any]]:
        quorum, decisions = plan
        execution = play(sfn, arn, APPROVERS, list(zip(APPROVERS, decisions)), simultaneous=True, quorum=quorum,
                         timeout_seconds=120)
        return execution, tally(execution.arn)

    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        results = list(pool.map(run, plans))
    for (quorum, decisions), (execution, recorded) in zip(plans, results):
        _check_simultaneous(execution, quorum, dict(zip(APPROVERS, decisions)), recorded)
