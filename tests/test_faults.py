"""Fault injection with Step Functions Local's mock config file (SFN_MOCK_CONFIG, ``arn#TestCase``).

A test case mocks named states: a mocked ``Ask approver N`` answers at once (no callback),
a mocked ``Record decision N`` throws DynamoDB errors on its first calls and then returns
an UpdateItem result. moto's mocking has no fall-back to the real call once the numbered
responses run out, so every call a Retry can make is given a response. States a test case
does not name run for real (an unmocked Ask keeps waiting for its callback).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import error_code

from earlyexit import engine
from earlyexit.approvals import wait_for_outcome
from earlyexit.history import Execution, history_events
from earlyexit.local import Stack

pytestmark = pytest.mark.engine

EXAMPLE_FILE = Path(__file__).parent / "mock-config" / "MockConfigFile.json"
THROTTLED = "DynamoDB.ProvisionedThroughputExceededException"
INTERNAL = "DynamoDB.InternalServerErrorException"
QUORUM_INPUT = {"approvers": ["alice", "bob", "carol"], "quorum": 2, "timeoutSeconds": 3600}
EITHER_OR_INPUT = {"approvers": ["alice", "bob"], "timeoutSeconds": 3600}


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[None]:
    """Retry intervals (1, 2, 4, 8, 10 s) at 1/100 of their length."""
    previous = engine.wait_time_scale()
    engine.set_wait_time_scale(0.01)
    yield
    engine.set_wait_time_scale(previous)


def write_mock_config(path: Path, monkeypatch: pytest.MonkeyPatch, state_machine: str,
                      test_cases: dict[str, dict[str, str]], responses: dict[str, Any]) -> None:
    path.write_text(json.dumps({"StateMachines": {state_machine: {"TestCases": test_cases}},
                                "MockedResponses": responses}))
    monkeypatch.setenv("SFN_MOCK_CONFIG", str(path))


def run(sfn: Any, stack: Stack, test_case: str, execution_input: dict[str, Any], name: str | None = None) -> Execution:
    kwargs = {"name": name} if name else {}
    execution_arn = sfn.start_execution(stateMachineArn=f"{stack.outputs['StateMachineArn']}#{test_case}",
                                        input=json.dumps(execution_input), **kwargs)["executionArn"]
    return wait_for_outcome(sfn, execution_arn, timeout=15)


def state_events(sfn: Any, execution_arn: str, state: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, details) of the task events of ``state``, in order (followed back to the state entered)."""
    events = history_events(sfn, execution_arn)
    by_id = {e["id"]: e for e in events}

    def state_of(event: dict[str, Any]) -> str | None:
        while event is not None and not event["type"].endswith("StateEntered"):
            event = by_id.get(event.get("previousEventId", 0))
        return event["stateEnteredEventDetails"]["name"] if event else None

    found = []
    for event in events:
        if event["type"] in ("TaskFailed", "TaskSucceeded") and state_of(event) == state:
            details = next(v for k, v in event.items() if k.endswith("EventDetails"))
            found.append((event["type"], details))
    return found


def entered(sfn: Any, execution_arn: str) -> set[str]:
    return {e["stateEnteredEventDetails"]["name"] for e in history_events(sfn, execution_arn)
            if e["type"].endswith("StateEntered")}


def approve() -> dict[str, Any]:
    return {"0": {"Return": {"decision": "approve"}}}


def recorded(approvals: list[str], throws: int = 0, error: str = THROTTLED) -> dict[str, Any]:
    """A tally update failing ``throws`` times with ``error``, then returning the item (ReturnValues ALL_NEW)."""
    responses: dict[str, Any] = {}
    if throws:
        responses["0" if throws == 1 else f"0-{throws - 1}"] = {"Throw": {"Error": error, "Cause": f"{error} (mocked)"}}
    responses[str(throws)] = {"Return": {"Attributes": {"approvals": {"SS": approvals},
                                                        "expiresAt": {"N": "1767312000"}}}}
    return responses


# -- the tally update fails, Retry carries the decision through ---------------------------


@pytest.mark.parametrize("error", [THROTTLED, INTERNAL], ids=["throttling", "internal-error"])
def test_tally_update_failing_twice_is_retried_and_the_quorum_is_still_met(
        sfn: Any, quorum: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: str) -> None:
    # Alice's decision is recorded for real; Bob's update fails twice, then returns both approvals.
    write_mock_config(tmp_path / "mock.json", monkeypatch, quorum.outputs["StateMachineName"],
                      {"SecondApprovalRetried": {"Ask approver 1": "Approve", "Ask approver 2": "Approve",
                                                 "Record decision 2": "BobRecordedAfterErrors"}},
                      {"Approve": approve(), "BobRecordedAfterErrors": recorded(["alice", "bob"], throws=2, error=error)})
    execution = run(sfn, quorum, "SecondApprovalRetried", QUORUM_INPUT)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output == {"outcome": "APPROVED", "pattern": "quorum", "request": {},
                                "approvals": ["alice", "bob"], "rejections": [], "decidedBy": "bob", "quorum": 2}
    assert execution.exited_by == "Quorum met 2"
    attempts = state_events(sfn, execution.arn, "Record decision 2")
    assert [(kind, details.get("error")) for kind, details in attempts] == [
        ("TaskFailed", error), ("TaskFailed", error), ("TaskSucceeded", None)]


def test_tally_update_throttled_on_every_attempt_fails_the_execution_without_an_outcome(
        sfn: Any, quorum: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Retry allows 5 retries: 6 calls in all, each throttled.
    write_mock_config(tmp_path / "mock.json", monkeypatch, quorum.outputs["StateMachineName"],
                      {"TallyAlwaysThrottled": {"Ask approver 1": "Approve", "Record decision 1": "Throttled"}},
                      {"Approve": approve(),
                       "Throttled": {"0-5": {"Throw": {"Error": THROTTLED, "Cause": "Rate of requests exceeded"}}}})
    execution = run(sfn, quorum, "TallyAlwaysThrottled", QUORUM_INPUT)
    assert (execution.status, execution.error, execution.output) == ("FAILED", THROTTLED, None)
    assert [kind for kind, _ in state_events(sfn, execution.arn, "Record decision 1")] == ["TaskFailed"] * 6
    assert not {"Quorum met 1", "Decided"} & entered(sfn, execution.arn)


# -- an approval request EventBridge does not take --------------------------------------


@pytest.mark.parametrize("pattern", ["either-or", "quorum"])
def test_undelivered_request_fails_the_execution_naming_the_approver_and_infers_no_approval(
        request: pytest.FixtureRequest, sfn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        pattern: str) -> None:
    # putEvents fails on the first call and on each of the 3 retries; the other approvers' requests
    # go out for real and wait for answers that never come.
    stack: Stack = request.getfixturevalue(pattern.replace("-", "_"))
    write_mock_config(tmp_path / "mock.json", monkeypatch, stack.outputs["StateMachineName"],
                      {"RequestUndelivered": {"Ask approver 1": "NotDelivered"}},
                      {"NotDelivered": {"0-3": {"Throw": {"Error": "EventBridge.FailedEntry",
                                                          "Cause": "InternalFailure"}}}})
    execution = run(sfn, stack, "RequestUndelivered", QUORUM_INPUT if pattern == "quorum" else EITHER_OR_INPUT)
    assert (execution.status, execution.error, execution.output) == ("FAILED", "ApprovalRequestNotDelivered", None)
    assert json.loads(execution.cause) == {"approver": "alice", "error": "EventBridge.FailedEntry",
                                           "cause": "InternalFailure"}
    assert [kind for kind, _ in state_events(sfn, execution.arn, "Ask approver 1")] == ["TaskFailed"] * 4
    assert execution.decisions == []
    assert not {"Record decision 1", "Decided"} & entered(sfn, execution.arn)


# -- the wiring itself -------------------------------------------------------------------


def test_test_case_execution_belongs_to_the_state_machine_and_answers_without_a_callback(
        sfn: Any, either_or: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mock_config(tmp_path / "mock.json", monkeypatch, either_or.outputs["StateMachineName"],
                      {"BobApproves": {"Ask approver 2": "Approve"}}, {"Approve": approve()})
    execution = run(sfn, either_or, "BobApproves", EITHER_OR_INPUT, name="mocked-bob-approves")
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
                      {"Defined": {"Ask approver 1": "Approve"}}, {"Approve": approve()})
    if state_machine == "unset":
        monkeypatch.delenv("SFN_MOCK_CONFIG")
    arn = either_or.outputs["StateMachineArn"]
    before = len(sfn.list_executions(stateMachineArn=arn)["executions"])
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=f"{arn}#{test_case}", input=json.dumps(EITHER_OR_INPUT))
    assert error_code(refused.value) == "ValidationException"
    for word in named:
        assert word in refused.value.response["Error"]["Message"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == before


# -- the checked-in example file, as Step Functions Local users would run it -------------

EXAMPLE_CASES = {
    ("QuorumApproval", "TallyThrottled"): ("SUCCEEDED", "APPROVED"),
    ("QuorumApproval", "TallyInternalErrors"): ("SUCCEEDED", "APPROVED"),
    ("QuorumApproval", "TallyThrottledOnEveryAttempt"): ("FAILED", THROTTLED),
    ("QuorumApproval", "RequestUndelivered"): ("FAILED", "ApprovalRequestNotDelivered"),
    ("EitherOrApproval", "RequestThrottledThenApproved"): ("SUCCEEDED", "APPROVED"),
    ("EitherOrApproval", "RequestUndelivered"): ("FAILED", "ApprovalRequestNotDelivered"),
}


def test_example_file_defines_exactly_the_cases_exercised_here() -> None:
    machines = json.loads(EXAMPLE_FILE.read_text())["StateMachines"]
    assert {(m, case) for m, spec in machines.items() for case in spec["TestCases"]} == set(EXAMPLE_CASES)


@pytest.mark.parametrize(("placeholder", "test_case"), list(EXAMPLE_CASES),
                         ids=[f"{machine}/{case}" for machine, case in EXAMPLE_CASES])
def test_example_mock_config_file_runs_on_the_embedded_engine(
        request: pytest.FixtureRequest, sfn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        placeholder: str, test_case: str) -> None:
    stack: Stack = request.getfixturevalue("quorum" if placeholder == "QuorumApproval" else "either_or")
    config = json.loads(EXAMPLE_FILE.read_text())
    config["StateMachines"] = {stack.outputs["StateMachineName"]: config["StateMachines"][placeholder]}
    (tmp_path / "MockConfigFile.json").write_text(json.dumps(config))
    monkeypatch.setenv("SFN_MOCK_CONFIG", str(tmp_path / "MockConfigFile.json"))

    execution = run(sfn, stack, test_case, QUORUM_INPUT if placeholder == "QuorumApproval" else EITHER_OR_INPUT)
    status, outcome_or_error = EXAMPLE_CASES[(placeholder, test_case)]
    assert execution.status == status, (execution.error, execution.cause)
    if status == "SUCCEEDED":
        decided_by = "bob" if placeholder == "QuorumApproval" else "alice"
        assert (execution.output["outcome"], execution.output["decidedBy"]) == (outcome_or_error, decided_by)
    else:
        assert (execution.error, execution.output) == (outcome_or_error, None)
