"""Answers of any shape and names of any whitespace: a failure is a rejection, a blank is no name.

An approver's answer must not be able to fail the whole execution: SendTaskFailure with any
error name (``States.*`` and ``EventBridge.*``-looking ones included) is that approver's
rejection. Only a failure of the PutEvents call itself (tests/test_fault_matrix.py) is an
undelivered request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import ended, record, requests_out, timeless

from earlyexit.approvals import start_approval
from earlyexit.local import Stack
from earlyexit.patterns import PATTERNS

UNICODE_BLANKS = ["\t", "\n", "\x0b", "\x0c", "\r", " ", "\x85", "\xa0", "\u1680", "\u2000", "\u2005", "\u200a",
                  "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "\xa0\u3000 "]
FAILURE_ERRORS = {
    "event-bridge-lookalike": "EventBridge.Foo",
    "states-timeout": "States.Timeout",
    "states-task-failed": "States.TaskFailed",
    "states-runtime": "States.Runtime",
    "empty": "",
    "longest-allowed": "E" * 256,
    "custom": "Declined",
}


@pytest.fixture(params=PATTERNS)
def machine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(pattern, state machine ARN) of each pattern in turn."""
    stack: Stack = request.getfixturevalue(request.param.replace("-", "_"))
    return request.param, stack.outputs["StateMachineArn"]


@pytest.mark.parametrize("error", list(FAILURE_ERRORS.values()), ids=list(FAILURE_ERRORS))
def test_send_task_failure_with_any_error_name_is_that_approvers_rejection(
        sfn: Any, machine: tuple[str, str], error: str) -> None:
    pattern, arn = machine
    approvers = ["alice", "bob"] if pattern == "either-or" else ["alice", "bob", "carol"]
    quorum = 3 if pattern == "quorum" else None  # one rejection settles both: 3 of 3 is out of reach
    execution_arn = start_approval(sfn, arn, approvers, quorum=quorum, timeout_seconds=120)
    bob = requests_out(sfn, execution_arn, len(approvers)).request_for("bob")
    sfn.send_task_failure(taskToken=bob.task_token, error=error, cause="x" * 32_768)
    execution = ended(sfn, execution_arn)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert (execution.output["outcome"], execution.output["rejections"], execution.output["decidedBy"]) == (
        "REJECTED", ["bob"], "bob")
    assert [(d.approver, d.decision) for d in execution.decisions] == [("bob", "failure")]
    # a rejection; the cause is no comment
    assert timeless(execution.output)["decisions"] == record([("bob", "failure")])


def test_send_task_failure_without_an_error_name_is_a_rejection(sfn: Any, machine: tuple[str, str]) -> None:
    pattern, arn = machine
    approvers = ["alice", "bob"] if pattern == "either-or" else ["alice", "bob", "carol"]
    execution_arn = start_approval(sfn, arn, approvers, quorum=3 if pattern == "quorum" else None,
                                   timeout_seconds=120)
    alice = requests_out(sfn, execution_arn, len(approvers)).request_for("alice")
    sfn.send_task_failure(taskToken=alice.task_token)
    execution = ended(sfn, execution_arn)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["rejections"] == ["alice"] and execution.output["approvals"] == []
    assert timeless(execution.output)["decisions"] == record([("alice", "failure")])


@pytest.mark.parametrize("blank", UNICODE_BLANKS, ids=[f"U+{ord(b[0]):04X}" + ("..." if len(b) > 1 else "")
                                                       for b in UNICODE_BLANKS])
def test_an_approver_named_only_with_unicode_whitespace_is_invalid_input(
        sfn: Any, machine: tuple[str, str], blank: str) -> None:
    pattern, arn = machine
    approvers = ["alice", blank] if pattern == "either-or" else ["alice", "bob", blank]
    execution_arn = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"approvers": approvers}))[
        "executionArn"]
    execution = ended(sfn, execution_arn)
    assert (execution.status, execution.error) == ("FAILED", "InvalidInput")
    assert execution.cause.startswith("approvers: ")
    assert execution.requests == []


@pytest.mark.parametrize("name", ["a\xa0b", " alice ", "\u200b", "名前"],
                         ids=["inner-nbsp", "padded", "zero-width-space", "cjk"])
def test_a_name_with_any_visible_character_is_valid(sfn: Any, machine: tuple[str, str], name: str) -> None:
    pattern, arn = machine
    approvers = ["alice", name] if pattern == "either-or" else ["alice", "bob", name]
    execution_arn = start_approval(sfn, arn, approvers, timeout_seconds=120)
    assert name in {r.approver for r in requests_out(sfn, execution_arn, len(approvers)).requests}
    sfn.stop_execution(executionArn=execution_arn)


def test_send_task_failure_naming_a_delivery_error_that_is_not_retried_fails_closed(
        sfn: Any, either_or: Stack) -> None:
    execution_arn = start_approval(sfn, either_or.outputs["StateMachineArn"], ["alice", "bob"], timeout_seconds=120)
    alice = requests_out(sfn, execution_arn, 2).request_for("alice")
    sfn.send_task_failure(taskToken=alice.task_token, error="EventBridge.AccessDeniedException")
    execution = ended(sfn, execution_arn)
    assert (execution.status, execution.error, execution.output) == ("FAILED", "ApprovalRequestNotDelivered", None)


def test_send_task_failure_naming_a_retried_delivery_error_asks_the_approver_again(
        sfn: Any, either_or: Stack) -> None:
    execution_arn = start_approval(sfn, either_or.outputs["StateMachineArn"], ["alice", "bob"], timeout_seconds=120)
    first = requests_out(sfn, execution_arn, 2).request_for("alice")
    sfn.send_task_failure(taskToken=first.task_token, error="EventBridge.InternalException")
    again = requests_out(sfn, execution_arn, 3, timeout=30).request_for("alice")  # after the Retry's interval
    assert again.task_token != first.task_token
    sfn.send_task_success(taskToken=again.task_token, output=json.dumps({"decision": "approve"}))
    execution = ended(sfn, execution_arn)
    assert (execution.output["outcome"], execution.output["decidedBy"]) == ("APPROVED", "alice")
    assert timeless(execution.output)["decisions"] == record([("alice", "approve")])  # the failure was no decision
