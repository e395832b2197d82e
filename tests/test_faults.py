"""Faults on the stacks' own service calls: the patterns still decide right, or fail saying why.

Faults are injected into the embedded engine, either with its Python API (``cloud.faults``,
docs/fault-injection.md), which can single out one approver's flow (a Map iteration of
quorum), or with Step Functions Local's mock config file (``SFN_MOCK_CONFIG``,
``stateMachineArn#TestCase``), where a mocked response applies to every flow that runs the
state. Errors are the services' wire codes; the tasks report them as Step Functions does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import ApprovalInbox
from support import ended, error_code, record, requests_out, tally, timeless, wait_until_counted

from earlyexit import states
from earlyexit.approvals import decide, start_approval
from earlyexit.engine import Fault, FaultInjector, FaultRule
from earlyexit.history import Execution
from earlyexit.local import Cloud, Stack
from earlyexit.patterns import PATTERNS
from earlyexit.polling import wait_until

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("scaled_waits")]

EXAMPLE_FILE = Path(__file__).parent / "mock-config" / "MockConfigFile.json"
THROTTLED = "DynamoDB.ProvisionedThroughputExceededException"
QUORUM = states.QUORUM
APPROVERS = ["alice", "bob", "carol"]



def on(stack: Stack, state: str, fault: Fault, **selection: Any) -> FaultRule:
    return FaultRule(state_machine_arn=stack.outputs["StateMachineArn"], state=state, fault=fault, **selection)


def start(sfn: Any, stack: Stack, approvers: list[str], quorum: int | None = None) -> str:
    return start_approval(sfn, stack.outputs["StateMachineArn"], approvers, quorum=quorum, timeout_seconds=3600)


# -- the tally update fails, Retry carries the decision through ---------------------------


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "InternalServerError"],
                         ids=["throttling", "internal-error"])
def test_tally_update_failing_twice_is_retried_and_the_quorum_is_still_met(
        sfn: Any, quorum: Stack, faults: FaultInjector, code: str) -> None:
    for attempt in (0, 1):  # bob's flow is Map iteration 1
        faults.add(on(quorum, QUORUM.RECORD, Fault.fail(code), iteration=1, attempt=attempt))
    execution_arn = start(sfn, quorum, APPROVERS, quorum=2)
    requests_out(sfn, execution_arn, 3)
    decide(sfn, execution_arn, "alice", "approve")
    wait_until_counted(sfn, execution_arn, "alice")
    decide(sfn, execution_arn, "bob", "approve")
    execution = ended(sfn, execution_arn, timeout=30)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert timeless(execution.output) == {"outcome": "APPROVED", "pattern": "quorum", "request": {},
                                          "approvals": ["alice", "bob"], "rejections": [],
                                          "decisions": record([("alice", "approve"), ("bob", "approve")]),
                                          "decidedBy": "bob", "quorum": 2}
    assert [(f.iteration, f.attempt) for f in faults.fired(execution_arn=execution_arn)] == [(1, 0), (1, 1)]


def test_a_tally_update_whose_response_is_lost_is_retried_and_counts_once(
        cloud: Cloud, sfn: Any, quorum: Stack, faults: FaultInjector) -> None:
    faults.add(on(quorum, QUORUM.RECORD, Fault.lost_response("InternalServerError"), iteration=0))
    execution_arn = start(sfn, quorum, APPROVERS, quorum=2)
    requests_out(sfn, execution_arn, 3)
    decide(sfn, execution_arn, "alice", "approve")
    wait_until_counted(sfn, execution_arn, "alice")
    decide(sfn, execution_arn, "carol", "approve")
    execution = ended(sfn, execution_arn, timeout=30)
    assert (execution.output["outcome"], execution.output["approvals"]) == ("APPROVED", ["alice", "carol"])
    recorded = tally(cloud.client("dynamodb"), quorum.outputs["TableName"], execution_arn)
    assert recorded is not None and (recorded.approvals, recorded.rejections) == ({"alice", "carol"}, set())


def test_tally_update_throttled_on_every_attempt_fails_the_execution_without_an_outcome(
        sfn: Any, quorum: Stack, faults: FaultInjector) -> None:
    faults.add(on(quorum, QUORUM.RECORD, Fault.fail("ProvisionedThroughputExceededException"), attempt=None))
    execution_arn = start(sfn, quorum, APPROVERS, quorum=2)
    requests_out(sfn, execution_arn, 3)
    decide(sfn, execution_arn, "alice", "approve")
    execution = ended(sfn, execution_arn, timeout=30)
    assert (execution.status, execution.error, execution.output) == ("FAILED", THROTTLED, None)
    assert [f.attempt for f in faults.fired(execution_arn=execution_arn)] == [0, 1, 2, 3, 4, 5]  # 1 call + 5 retries


# -- approval requests EventBridge does not take, or takes twice --------------------------


def asked(stack: Stack) -> tuple[str, dict[str, Any]]:
    """The state that asks alice, and how a rule singles her flow out."""
    if stack.pattern == "quorum":
        return QUORUM.ASK, {"iteration": 0}
    return states.EITHER_OR.ask(1), {}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_undelivered_request_fails_the_execution_naming_the_approver_and_infers_no_approval(
        request: pytest.FixtureRequest, sfn: Any, faults: FaultInjector, pattern: str) -> None:
    stack: Stack = request.getfixturevalue(pattern.replace("-", "_"))
    state, selection = asked(stack)
    faults.add(on(stack, state, Fault.fail("InternalException", cause="event bus unavailable"), attempt=None,
                  **selection))
    execution_arn = start(sfn, stack, APPROVERS if pattern == "quorum" else APPROVERS[:2])
    execution = ended(sfn, execution_arn, timeout=30)
    assert (execution.status, execution.error, execution.output) == ("FAILED", "ApprovalRequestNotDelivered", None)
    cause = json.loads(execution.cause)
    assert (cause["approver"], cause["error"]) == ("alice", "EventBridge.InternalException")
    assert cause["cause"].startswith("event bus unavailable (Service: AmazonEventBridge; Status Code: 500;")
    assert [f.attempt for f in faults.fired(execution_arn=execution_arn)] == [0, 1, 2, 3]  # 1 call + 3 retries
    assert execution.decisions == []


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_request_whose_response_was_lost_is_sent_again_and_only_the_new_token_counts(
        request: pytest.FixtureRequest, sfn: Any, faults: FaultInjector, pattern: str) -> None:
    stack: Stack = request.getfixturevalue(pattern.replace("-", "_"))
    state, selection = asked(stack)
    faults.add(on(stack, state, Fault.lost_response("InternalException"), **selection))
    execution_arn = start(sfn, stack, APPROVERS[:2], quorum=1 if pattern == "quorum" else None)
    # Both requests went out (the first one's PutEvents applied): the history holds both tokens.
    first, second = [r.task_token for r in requests_out(sfn, execution_arn, 3).requests if r.approver == "alice"]
    assert first != second
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=first, output=json.dumps({"decision": "approve"}))
    assert error_code(refused.value) == "TaskTimedOut"
    sfn.send_task_success(taskToken=second, output=json.dumps({"decision": "approve"}))
    execution = ended(sfn, execution_arn, timeout=30)
    assert (execution.output["outcome"], execution.output["decidedBy"]) == ("APPROVED", "alice")


def test_a_request_delivered_twice_carries_one_token_and_counts_one_answer(
        sfn: Any, either_or: Stack, faults: FaultInjector, inbox: ApprovalInbox) -> None:
    faults.add(on(either_or, states.EITHER_OR.ask(1), Fault.duplicate()))
    execution_arn = start(sfn, either_or, APPROVERS[:2])
    to_alice = wait_until(lambda: found if len(found := [e for e in inbox.requests_for(execution_arn)
                                                          if e["detail"]["approver"] == "alice"]) >= 2 else None,
                          timeout=20, what="alice's two deliveries")
    [token] = {e["detail"]["taskToken"] for e in to_alice}
    sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "reject"}))
    with pytest.raises(ClientError) as again:
        sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "approve"}))
    assert error_code(again.value) == "TaskTimedOut"
    execution = ended(sfn, execution_arn, timeout=30)
    assert (execution.output["outcome"], execution.output["decidedBy"]) == ("REJECTED", "alice")


# -- the mock config file ------------------------------------------------------------------


def write_mock_config(path: Path, monkeypatch: pytest.MonkeyPatch, state_machine: str,
                      test_cases: dict[str, dict[str, str]], responses: dict[str, Any]) -> None:
    path.write_text(json.dumps({"StateMachines": {state_machine: {"TestCases": test_cases}},
                                "MockedResponses": responses}))
    monkeypatch.setenv("SFN_MOCK_CONFIG", str(path))


def run(sfn: Any, stack: Stack, test_case: str, approvers: list[str], name: str | None = None) -> Execution:
    execution_input = {"approvers": approvers, "timeoutSeconds": 3600, **({"quorum": 2} if len(approvers) > 2 else {})}
    execution_arn = sfn.start_execution(stateMachineArn=f"{stack.outputs['StateMachineArn']}#{test_case}",
                                        input=json.dumps(execution_input), **({"name": name} if name else {}))[
        "executionArn"]
    return ended(sfn, execution_arn, timeout=30)


def test_test_case_execution_belongs_to_the_state_machine_and_answers_without_a_callback(
        sfn: Any, either_or: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mock_config(tmp_path / "mock.json", monkeypatch, either_or.outputs["StateMachineName"],
                      {"BobApproves": {states.EITHER_OR.ask(2): "Approve"}},
                      {"Approve": {"0": {"Return": {"decision": "approve"}}}})
    execution = run(sfn, either_or, "BobApproves", APPROVERS[:2], name="mocked-bob-approves")
    state_machine_arn = either_or.outputs["StateMachineArn"]
    assert execution.arn == state_machine_arn.replace(":stateMachine:", ":execution:") + ":mocked-bob-approves"
    assert sfn.describe_execution(executionArn=execution.arn)["stateMachineArn"] == state_machine_arn
    assert execution.arn in {e["executionArn"] for e in sfn.list_executions(stateMachineArn=state_machine_arn)[
        "executions"]}
    assert (execution.output["outcome"], execution.output["decidedBy"]) == ("APPROVED", "bob")


@pytest.mark.parametrize(("state_machine", "test_case", "named"), [
    (None, "NoSuchTestCase", ["NoSuchTestCase", "Defined"]),
    ("SomeOtherStateMachine", "Defined", ["SomeOtherStateMachine"]),
    ("unset", "Defined", ["SFN_MOCK_CONFIG"]),
], ids=["unknown-test-case", "unknown-state-machine", "no-mock-config-file"])
def test_unknown_test_case_is_refused_naming_what_is_missing_and_starts_nothing(
        sfn: Any, either_or: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        state_machine: str | None, test_case: str, named: list[str]) -> None:
    name = either_or.outputs["StateMachineName"]
    write_mock_config(tmp_path / "mock.json", monkeypatch, state_machine or name,
                      {"Defined": {states.EITHER_OR.ask(1): "Approve"}},
                      {"Approve": {"0": {"Return": {"decision": "approve"}}}})
    if state_machine == "unset":
        monkeypatch.delenv("SFN_MOCK_CONFIG")
    arn = either_or.outputs["StateMachineArn"]
    before = len(sfn.list_executions(stateMachineArn=arn)["executions"])
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=f"{arn}#{test_case}", input=json.dumps({"approvers": APPROVERS[:2]}))
    assert error_code(refused.value) == "ValidationException"
    for word in named:
        assert word in refused.value.response["Error"]["Message"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == before


# -- the checked-in example file, as Step Functions Local users would run it -------------

# (state machine, test case): (status, outcome or error, decidedBy if it is certain)
EXAMPLE_CASES: dict[tuple[str, str], tuple[str, str, str | None]] = {
    ("QuorumApproval", "TallyThrottled"): ("SUCCEEDED", "APPROVED", None),
    ("QuorumApproval", "TallyThrottledOnEveryAttempt"): ("FAILED", THROTTLED, None),
    ("QuorumApproval", "RequestUndelivered"): ("FAILED", "ApprovalRequestNotDelivered", None),
    ("QuorumApproval", "TallyResponseLost"): ("SUCCEEDED", "APPROVED", None),
    ("EitherOrApproval", "RequestRetriedThenApproved"): ("SUCCEEDED", "APPROVED", "alice"),
    ("EitherOrApproval", "RequestUndelivered"): ("FAILED", "ApprovalRequestNotDelivered", None),
}


def test_example_file_defines_exactly_the_cases_exercised_here() -> None:
    machines = json.loads(EXAMPLE_FILE.read_text())["StateMachines"]
    assert {(m, case) for m, spec in machines.items() for case in spec["TestCases"]} == set(EXAMPLE_CASES)


@pytest.mark.parametrize(("placeholder", "test_case"), list(EXAMPLE_CASES),
                         ids=[f"{machine}/{case}" for machine, case in EXAMPLE_CASES])
def test_example_mock_config_file_runs_on_the_embedded_engine(
        request: pytest.FixtureRequest, cloud: Cloud, sfn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        placeholder: str, test_case: str) -> None:
    stack: Stack = request.getfixturevalue("quorum" if placeholder == "QuorumApproval" else "either_or")
    config = json.loads(EXAMPLE_FILE.read_text())
    config["StateMachines"] = {stack.outputs["StateMachineName"]: config["StateMachines"][placeholder]}
    (tmp_path / "MockConfigFile.json").write_text(json.dumps(config))
    monkeypatch.setenv("SFN_MOCK_CONFIG", str(tmp_path / "MockConfigFile.json"))

    execution = run(sfn, stack, test_case, APPROVERS if placeholder == "QuorumApproval" else APPROVERS[:2])
    status, outcome_or_error, decided_by = EXAMPLE_CASES[(placeholder, test_case)]
    assert execution.status == status, (execution.error, execution.cause)
    if status == "FAILED":
        assert (execution.error, execution.output) == (outcome_or_error, None)
        return
    assert execution.output["outcome"] == outcome_or_error
    if decided_by:
        assert execution.output["decidedBy"] == decided_by
    if test_case == "TallyResponseLost":  # its responses call the real DynamoDB: the tally holds the approvals
        assert set(execution.output["approvals"]) <= tally(cloud.client("dynamodb"), stack.outputs["TableName"],
                                                           execution.arn).approvals
