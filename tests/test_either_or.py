"""Either-or: the first of two approvers to decide settles the request; flow 3 times it out."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import (
    answer_at_once,
    ended,
    error_code,
    expected,
    play,
    record,
    record_at_once,
    requests_out,
    timeless,
    unique,
)

from earlyexit.approvals import ApprovalError, decide, start_approval
from earlyexit.history import Exit, read_execution
from earlyexit.local import Cloud, Stack
from earlyexit.states import DEADLINE_PASSED, EITHER_OR

APPROVERS = ("alice", "bob")
REQUEST = {"laptop": "14-inch", "price": 1499, "note": 'say "hi"'}


@pytest.fixture(scope="module")
def arn(either_or: Stack) -> str:
    return either_or.outputs["StateMachineArn"]


@pytest.mark.parametrize("flow", [1, 2])
def test_first_approval_approves_and_stops_the_other_flows(sfn: Any, arn: str, flow: int) -> None:
    approver = APPROVERS[flow - 1]
    execution = play(sfn, arn, APPROVERS, [(approver, "approve")], request=REQUEST)
    assert timeless(execution.output) == {"outcome": "APPROVED", "pattern": "either-or", "request": REQUEST,
                                          "approvals": [approver], "rejections": [],
                                          "decisions": record([(approver, "approve")]), "decidedBy": approver}
    assert execution.exited_by == Exit(EITHER_OR.decided(flow), approver)
    assert [d.approver for d in execution.decisions] == [approver]


@pytest.mark.parametrize("flow", [1, 2])
def test_first_rejection_rejects(sfn: Any, arn: str, flow: int) -> None:
    approver = APPROVERS[flow - 1]
    execution = play(sfn, arn, APPROVERS, [(approver, "reject")])
    assert timeless(execution.output) == {"outcome": "REJECTED", "pattern": "either-or", "request": {},
                                          "approvals": [], "rejections": [approver],
                                          "decisions": record([(approver, "reject")]), "decidedBy": approver}
    assert execution.exited_by == Exit(EITHER_OR.decided(flow), approver)


def test_send_task_failure_counts_as_a_rejection(sfn: Any, arn: str) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), timeout_seconds=60)
    request = next(r for r in requests_out(sfn, execution_arn, 2).requests if r.approver == "bob")
    sfn.send_task_failure(taskToken=request.task_token, error="Declined", cause="over budget")
    execution = ended(sfn, execution_arn)
    assert (execution.output["outcome"], execution.output["rejections"], execution.output["decidedBy"]) == (
        "REJECTED", ["bob"], "bob")
    assert timeless(execution.output)["decisions"] == record([("bob", "failure")])  # the cause is no comment


@pytest.mark.parametrize("answer", [
    {"decision": "APPROVE"}, {"decision": "approved"}, {"decision": True}, {"approve": True}, {},
    "approve", ["approve"], [{"decision": "approve"}], None, 1,
], ids=repr)
def test_malformed_decision_counts_as_a_rejection(sfn: Any, arn: str, answer: Any) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), timeout_seconds=60)
    request = requests_out(sfn, execution_arn, 2).requests[0]
    sfn.send_task_success(taskToken=request.task_token, output=json.dumps(answer))
    execution = ended(sfn, execution_arn)
    assert (execution.output["outcome"], execution.output["approvals"], execution.output["rejections"]) == (
        "REJECTED", [], [request.approver])
    assert timeless(execution.output)["decisions"] == record([(request.approver, "malformed")])


def test_deadline_passing_first_times_out_with_no_decision(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, timeout_seconds=1)
    assert timeless(execution.output) == {"outcome": "TIMED_OUT", "pattern": "either-or", "request": {},
                                          "approvals": [], "rejections": [], "decisions": [], "decidedBy": None}
    assert execution.exited_by == Exit(DEADLINE_PASSED, None)


@pytest.mark.deploys
def test_missing_timeout_uses_the_stack_default(cloud: Cloud, sfn: Any) -> None:
    stack = cloud.deploy("either-or", parameters={"ApprovalTimeoutSeconds": 1},
                         stack_name=unique("either-or-1s-default"))
    execution_arn = sfn.start_execution(stateMachineArn=stack.outputs["StateMachineArn"],
                                        input=json.dumps({"approvers": list(APPROVERS)}))["executionArn"]
    assert ended(sfn, execution_arn, timeout=20).output["outcome"] == "TIMED_OUT"


@pytest.mark.parametrize(("outcome", "most"), [("approve", 7), ("reject", 7), ("deadline", 8)])
def test_a_decided_execution_costs_at_most_7_transitions_8_at_the_deadline(sfn: Any, arn: str, outcome: str,
                                                                          most: int) -> None:
    # At the deadline the deadline flow also passes its Choice "Remind or end" (no reminders asked: it ends).
    answers = [] if outcome == "deadline" else [("alice", outcome)]
    assert play(sfn, arn, APPROVERS, answers, timeout_seconds=1 if outcome == "deadline" else 60).transitions <= most


@pytest.mark.deploys
def test_each_approver_gets_one_approval_request_event_with_the_request(sfn: Any, arn: str, inbox: Any) -> None:
    execution = play(sfn, arn, APPROVERS, [("alice", "approve")], request=REQUEST)
    events = inbox.requests_for(execution.arn)
    assert sorted(e["detail"]["approver"] for e in events) == sorted(APPROVERS)
    for event in events:
        assert (event["source"], event["detail-type"]) == ("earlyexit", "ApprovalRequested")
        assert event["detail"]["pattern"] == "either-or"
        assert event["detail"]["request"] == REQUEST
        assert event["detail"]["taskToken"] in {r.task_token for r in execution.requests}


def test_late_decision_after_the_outcome_is_refused_and_changes_nothing(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, [("alice", "approve")])
    late = next(r for r in execution.requests if r.approver == "bob")
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=late.task_token, output=json.dumps({"decision": "reject"}))
    assert error_code(refused.value) == "TaskTimedOut"
    assert read_execution(sfn, execution.arn).output == execution.output


ANSWERS_AT_ONCE = [("alice", "approve"), ("bob", "reject")]


def test_simultaneous_decisions_settle_on_exactly_one_decider(sfn: Any, arn: str) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), timeout_seconds=60)
    codes = answer_at_once(sfn, execution_arn, ANSWERS_AT_ONCE)
    assert set(codes) <= {None, "TaskTimedOut"}
    output = ended(sfn, execution_arn).output
    wanted = {"alice": ("APPROVED", ["alice"], []), "bob": ("REJECTED", [], ["bob"])}[output["decidedBy"]]
    assert (output["outcome"], output["approvals"], output["rejections"]) == wanted
    decider = output["decidedBy"]
    assert timeless(output)["decisions"] == record_at_once([(decider, dict(ANSWERS_AT_ONCE)[decider])])  # its only


@pytest.mark.parametrize(("execution_input", "field"), [
    ({}, "approvers"),
    ({"approvers": ["alice"]}, "approvers"),
    ({"approvers": ["alice", "bob", "carol"]}, "approvers"),
    ({"approvers": ["alice", "alice"]}, "approvers"),
    ({"approvers": ["alice", ""]}, "approvers"),
    ({"approvers": ["alice", "   "]}, "approvers"),
    ({"approvers": ["alice", 7]}, "approvers"),
    ({"approvers": "alice,bob"}, "approvers"),
    ({"approvers": None}, "approvers"),
    ([{"approvers": ["alice", "bob"]}], "approvers"),
    ("alice and bob", "approvers"),
    ({"approvers": ["alice", "bob"], "timeoutSeconds": 0}, "timeoutSeconds"),
    ({"approvers": ["alice", "bob"], "timeoutSeconds": -5}, "timeoutSeconds"),
    ({"approvers": ["alice", "bob"], "timeoutSeconds": 1.5}, "timeoutSeconds"),
    ({"approvers": ["alice", "bob"], "timeoutSeconds": "60"}, "timeoutSeconds"),
    ({"approvers": ["alice", "bob"], "timeoutSeconds": 31449601}, "timeoutSeconds"),
    ({"approvers": ["alice", "bob"], "timeoutSeconds": True}, "timeoutSeconds"),
    ({"approvers": ["alice", "bob"], "timeoutSeconds": None}, "timeoutSeconds"),
    ({"approvers": ["alice", "bob"], "request": "laptop"}, "request"),
    ({"approvers": ["alice", "bob"], "request": ["laptop"]}, "request"),
    ({"approvers": ["alice", "bob"], "request": None}, "request"),
], ids=repr)
def test_invalid_input_fails_naming_the_field_before_any_request(sfn: Any, arn: str, execution_input: Any,
                                                                 field: str) -> None:
    execution_arn = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    execution = ended(sfn, execution_arn)
    assert (execution.status, execution.error) == ("FAILED", "InvalidInput")
    assert execution.cause.startswith(f"{field}: ")
    assert execution.requests == []
    assert execution.transitions <= 2


def test_the_shortest_timeout_is_accepted_and_times_out(sfn: Any, arn: str) -> None:
    execution = play(sfn, arn, APPROVERS, timeout_seconds=1)  # nothing to race: nobody answers
    assert (execution.status, len(execution.requests), execution.output["outcome"]) == ("SUCCEEDED", 2, "TIMED_OUT")


def test_the_longest_timeout_is_accepted(sfn: Any, arn: str) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), timeout_seconds=31449600)
    execution = requests_out(sfn, execution_arn, 2)
    assert (execution.status, len(execution.requests)) == ("RUNNING", 2)
    sfn.stop_execution(executionArn=execution_arn)


@pytest.mark.deploys
def test_undeliverable_request_fails_the_execution_without_counting_a_decision(cloud: Cloud, sfn: Any) -> None:
    stack = cloud.deploy("either-or", parameters={"EventBusName": "no-such-bus"}, stack_name=unique("either-or-no-bus"))
    execution_arn = start_approval(sfn, stack.outputs["StateMachineArn"], list(APPROVERS), timeout_seconds=60)
    execution = ended(sfn, execution_arn)
    assert (execution.status, execution.error) == ("FAILED", "ApprovalRequestNotDelivered")
    assert json.loads(execution.cause)["error"].startswith("EventBridge.")
    assert execution.output is None and execution.decisions == []


def test_thirty_two_concurrent_executions_with_concurrent_decisions_are_all_decided_correctly(
        sfn: Any, arn: str) -> None:
    rng = random.Random(7)
    plans = [rng.choice([[("alice", "approve")], [("bob", "approve")], [("alice", "reject")],
                         [("bob", "reject")], [("alice", "approve"), ("bob", "reject")]]) for _ in range(32)]

    def run(answers: list[tuple[str, str]]) -> Any:
        return play(sfn, arn, APPROVERS, answers, simultaneous=len(answers) > 1)

    with ThreadPoolExecutor(max_workers=32) as pool:
        executions = list(pool.map(run, plans))
    for answers, execution in zip(plans, executions, strict=True):
        assert execution.status == "SUCCEEDED"
        decided = dict(answers)[execution.output["decidedBy"]]
        assert execution.output["outcome"] == expected(APPROVERS, [(execution.output["decidedBy"], decided)]).outcome
        if len(answers) == 1:
            assert execution.output["decidedBy"] == answers[0][0]
        # only the deciding decision is recorded, even when the other one arrived at the same instant
        record_of = record_at_once if len(answers) > 1 else record  # answers at once are sent without a comment
        assert timeless(execution.output)["decisions"] == record_of([(execution.output["decidedBy"], decided)])
        # 7, plus the Fail state of a second flow whose decision arrived at the same instant
        assert execution.transitions <= 6 + len(answers)


def test_decide_refuses_an_unknown_approver(sfn: Any, arn: str) -> None:
    execution_arn = start_approval(sfn, arn, list(APPROVERS), timeout_seconds=60)
    with pytest.raises(ApprovalError, match="mallory"):
        decide(sfn, execution_arn, "mallory", "approve")
    sfn.stop_execution(executionArn=execution_arn)
