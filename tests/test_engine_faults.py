"""Fault injection into the service calls of state machines, and the error names the tasks then report.

Each test runs a small state machine of its own on the embedded engine with a fault on one of
its DynamoDB or EventBridge calls, and checks what AWS would show: the service's error named
as Step Functions names it, Retry and Catch acting on it, and the writes and events that did or
did not happen.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import ApprovalInbox
from support import described_end
from test_engine import Machine, error_code, events, task_tokens

from earlyexit.engine import Fault, FaultInjector, FaultRule
from earlyexit.engine.runtime.services import error_name
from earlyexit.errors import WaitTimeout
from earlyexit.local import Cloud
from earlyexit.polling import wait_until

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("scaled_waits")]

SDK_CAUSE = re.compile(r"^(?P<message>.*) \(Service: (?P<client>\w+); Status Code: (?P<status>\d{3}); "
                       r"Error Code: (?P<code>\w+); Request ID: (?P<request_id>[\w-]+); Proxy: null\)$")



@pytest.fixture(scope="module")
def table(cloud: Cloud) -> str:
    name = f"engine-faults-{uuid.uuid4().hex[:8]}"
    cloud.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    return name


def count(cloud: Cloud, table: str, key: str) -> int:
    """How many times the ADD of the Record task landed on item ``key``."""
    item = cloud.client("dynamodb").get_item(TableName=table, Key={"id": {"S": key}}, ConsistentRead=True)
    return int(item.get("Item", {}).get("n", {}).get("N", 0))


def record(table: str, key: str, **fields: Any) -> dict[str, Any]:
    """A Task that ADDs 1 to item ``key``'s counter."""
    return {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Arguments": {"TableName": table, "Key": {"id": {"S": key}}, "UpdateExpression": "ADD n :one",
                          "ExpressionAttributeValues": {":one": {"N": "1"}}}, **fields}


RETRY_ONCE = [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}]


def task_events(sfn: Any, execution_arn: str) -> list[tuple[str, str | None]]:
    """(type, error) of the execution's TaskFailed and TaskSucceeded events, in order."""
    return [(e["type"], e.get("taskFailedEventDetails", {}).get("error")) for e in events(sfn, execution_arn)
            if e["type"] in ("TaskFailed", "TaskSucceeded")]


def failures(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    return [e["taskFailedEventDetails"] for e in events(sfn, execution_arn) if e["type"] == "TaskFailed"]


# -- the four faults -----------------------------------------------------------------------


def test_a_call_that_fails_before_applying_writes_nothing_and_retry_repeats_it(
        cloud: Cloud, sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    key = uuid.uuid4().hex
    arn = machine({"Record": record(table, key, Retry=RETRY_ONCE, End=True)}, "Record")
    faults.add(FaultRule(state_machine_arn=arn, state="Record", fault=Fault.fail("InternalServerError")))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert task_events(sfn, execution) == [("TaskFailed", "DynamoDB.InternalServerErrorException"),
                                           ("TaskSucceeded", None)]
    assert count(cloud, table, key) == 1, "only the retry applied"
    [fired] = faults.fired(execution_arn=execution)
    assert (fired.state, fired.attempt, fired.service, fired.iteration) == ("Record", 0, "dynamodb", None)


def test_a_lost_response_fails_the_task_after_the_write_landed(
        cloud: Cloud, sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    key = uuid.uuid4().hex
    arn = machine({"Record": record(table, key, Retry=RETRY_ONCE, End=True)}, "Record")
    faults.add(FaultRule(state_machine_arn=arn, state="Record",
                         fault=Fault.lost_response("ProvisionedThroughputExceededException")))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert task_events(sfn, execution) == [("TaskFailed", "DynamoDB.ProvisionedThroughputExceededException"),
                                           ("TaskSucceeded", None)]
    assert count(cloud, table, key) == 2, "the lost attempt's write and the retry's"


def test_a_duplicated_request_applies_twice_within_one_attempt(
        cloud: Cloud, sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    key = uuid.uuid4().hex
    arn = machine({"Record": record(table, key, End=True)}, "Record")
    faults.add(FaultRule(state_machine_arn=arn, state="Record", fault=Fault.duplicate()))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert (task_events(sfn, execution), count(cloud, table, key)) == ([("TaskSucceeded", None)], 2)


def test_a_delayed_call_still_applies_and_succeeds(
        cloud: Cloud, sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    key = uuid.uuid4().hex
    arn = machine({"Record": record(table, key, End=True)}, "Record")
    faults.add(FaultRule(state_machine_arn=arn, state="Record", fault=Fault.delay(0.2, after=True)))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert count(cloud, table, key) == 1
    assert [f.fault for f in faults.fired(execution_arn=execution)] == [Fault.delay(0.2, after=True)]


@pytest.mark.parametrize("after", [False, True], ids=["before-applying", "after-applying"])
def test_a_held_call_waits_until_released(
        cloud: Cloud, sfn: Any, machine: Machine, faults: FaultInjector, table: str, after: bool) -> None:
    key = uuid.uuid4().hex
    arn = machine({"Record": record(table, key, End=True)}, "Record")
    faults.add(FaultRule(state_machine_arn=arn, state="Record", fault=Fault.hold(after=after)))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [held] = faults.wait_fired(execution_arn=execution, timeout=10)
    if after:  # the write landed, its response is late
        wait_until(lambda: count(cloud, table, key) == 1, timeout=10, what="the held call's write")
    assert count(cloud, table, key) == (1 if after else 0)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert task_events(sfn, execution) == []
    held.release()
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert count(cloud, table, key) == 1


def test_a_held_call_is_released_when_its_execution_stops(
        cloud: Cloud, sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    key = uuid.uuid4().hex
    arn = machine({"Record": record(table, key, End=True)}, "Record")
    faults.add(FaultRule(state_machine_arn=arn, state="Record", fault=Fault.hold(deadline=60)))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    faults.wait_fired(execution_arn=execution, timeout=10)
    sfn.stop_execution(executionArn=execution)
    # The request was in flight: it reaches DynamoDB, nobody waits for its answer.
    wait_until(lambda: count(cloud, table, key) == 1, timeout=10, what="the released call's write")
    assert described_end(sfn, execution)["status"] == "ABORTED"
    assert task_events(sfn, execution) == []


def test_a_hold_never_released_fails_the_task_at_its_deadline_and_is_logged(
        sfn: Any, machine: Machine, faults: FaultInjector, table: str, caplog: pytest.LogCaptureFixture) -> None:
    arn = machine({"Record": record(table, uuid.uuid4().hex, End=True)}, "Record")
    faults.add(FaultRule(state_machine_arn=arn, state="Record", fault=Fault.hold(deadline=0.3)))
    with caplog.at_level(logging.ERROR, logger="earlyexit.engine"):
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        described = described_end(sfn, execution)
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert "not released within 0.3 s" in described["cause"]
    assert any("not released within 0.3 s" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


# -- selecting calls ------------------------------------------------------------------------


def test_a_rule_can_select_one_map_iteration_and_every_attempt(
        cloud: Cloud, sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    prefix = uuid.uuid4().hex
    arn = machine({"Each": {"Type": "Map", "Items": "{% [0, 1, 2] %}", "ItemProcessor": {
        "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Record", "States": {
            "Record": record(table, f"{{% '{prefix}' & $string($states.input) %}}", Retry=RETRY_ONCE,
                             Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Gave up"}], End=True),
            "Gave up": {"Type": "Pass", "Output": "{% 'gave up' %}", "End": True}}}, "End": True}}, "Each")
    faults.add(FaultRule(state_machine_arn=arn, state="Record", iteration=1, attempt=None,
                         fault=Fault.fail("ThrottlingException")))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    described = described_end(sfn, execution)
    assert [o == "gave up" for o in json.loads(described["output"])] == [False, True, False]
    assert [count(cloud, table, f"{prefix}{i}") for i in range(3)] == [1, 0, 1]
    assert [(f.iteration, f.attempt) for f in faults.fired(execution_arn=execution)] == [(1, 0), (1, 1)]


def test_a_rule_can_select_one_execution(
        sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    arn = machine({"Record": record(table, uuid.uuid4().hex, End=True)}, "Record")
    name = f"faulty-{uuid.uuid4().hex[:8]}"
    faulty = arn.replace(":stateMachine:", ":execution:") + f":{name}"
    faults.add(FaultRule(state_machine_arn=arn, state="Record", execution_arn=faulty,
                         fault=Fault.fail("InternalServerError")))
    assert sfn.start_execution(stateMachineArn=arn, name=name)["executionArn"] == faulty
    other = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert (described_end(sfn, faulty)["status"], described_end(sfn, other)["status"]) == ("FAILED", "SUCCEEDED")


def test_wait_fired_raises_wait_timeout_when_nothing_fires() -> None:
    with pytest.raises(WaitTimeout, match="fault"):
        FaultInjector().wait_fired(state="Nothing", timeout=0.1)


@pytest.mark.parametrize("build", [lambda: Fault.fail(""), lambda: Fault.hold(deadline=0),
                                   lambda: Fault.delay(-1)], ids=["no-error-code", "no-deadline", "negative-delay"])
def test_a_fault_that_cannot_happen_is_refused(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


# -- EventBridge and task tokens ------------------------------------------------------------


def asks(**fields: Any) -> dict[str, Any]:
    """An ApprovalRequested PutEvents with a task token (the inbox fixture receives it)."""
    return {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
            "Arguments": {"Entries": [{"Source": "earlyexit", "DetailType": "ApprovalRequested",
                                       "Detail": {"executionArn": "{% $states.context.Execution.Id %}",
                                                  "token": "{% $states.context.Task.Token %}"}}]}, **fields}


def test_a_duplicated_put_events_delivers_two_events_with_the_same_token(
        sfn: Any, machine: Machine, faults: FaultInjector, inbox: ApprovalInbox) -> None:
    arn = machine({"Ask": asks(End=True)}, "Ask")
    faults.add(FaultRule(state_machine_arn=arn, state="Ask", fault=Fault.duplicate()))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    delivered = wait_until(lambda: found if len(found := inbox.requests_for(execution)) >= 2 else None,
                           timeout=10, what="two deliveries")
    assert [e["detail"]["token"] for e in delivered] == [token, token]
    sfn.send_task_success(taskToken=token, output=json.dumps({"answer": 1}))
    with pytest.raises(ClientError) as again:
        sfn.send_task_success(taskToken=token, output=json.dumps({"answer": 2}))
    assert error_code(again) == "TaskTimedOut"
    assert json.loads(described_end(sfn, execution)["output"]) == {"answer": 1}


def test_the_token_of_a_failed_attempt_is_refused_and_each_retry_asks_with_a_new_token(
        sfn: Any, machine: Machine, faults: FaultInjector) -> None:
    arn = machine({"Ask": asks(Retry=[{"ErrorEquals": ["EventBridge.InternalException"], "IntervalSeconds": 1,
                                       "MaxAttempts": 2}], End=True)}, "Ask")
    # The first request goes out, then its response is lost: Step Functions fails the attempt and asks again.
    faults.add(FaultRule(state_machine_arn=arn, state="Ask", fault=Fault.lost_response("InternalException")))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    first, second = task_tokens(sfn, execution, 2)
    assert first != second
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=first, output=json.dumps({"answer": "to the failed attempt"}))
    assert error_code(refused) == "TaskTimedOut"
    sfn.send_task_success(taskToken=second, output=json.dumps({"answer": "to the retry"}))
    assert json.loads(described_end(sfn, execution)["output"]) == {"answer": "to the retry"}
    assert failures(sfn, execution)[0]["error"] == "EventBridge.InternalException"


def test_retry_on_states_task_failed_retries_dynamodb_and_eventbridge_failures(
        sfn: Any, machine: Machine, faults: FaultInjector, table: str) -> None:
    arn = machine({
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                 "Arguments": {"Entries": [{"Source": "engine-test", "DetailType": "t", "Detail": {}}]},
                 "Retry": RETRY_ONCE, "Next": "Record"},
        "Record": record(table, uuid.uuid4().hex, Retry=RETRY_ONCE, End=True),
    }, "Send")
    faults.add(FaultRule(state_machine_arn=arn, state="Send", fault=Fault.fail("ThrottlingException")))
    faults.add(FaultRule(state_machine_arn=arn, state="Record", fault=Fault.fail("RequestLimitExceeded")))
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert task_events(sfn, execution) == [
        ("TaskFailed", "EventBridge.ThrottlingException"), ("TaskSucceeded", None),
        ("TaskFailed", "DynamoDB.RequestLimitExceededException"), ("TaskSucceeded", None)]


# -- error names ----------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "code", "expected"), [
    ("dynamodb", "InternalServerError", "DynamoDB.InternalServerErrorException"),
    ("dynamodb", "RequestLimitExceeded", "DynamoDB.RequestLimitExceededException"),
    ("dynamodb", "ProvisionedThroughputExceededException", "DynamoDB.ProvisionedThroughputExceededException"),
    ("dynamodb", "ResourceNotFoundException", "DynamoDB.ResourceNotFoundException"),
    ("dynamodb", "ValidationException", "DynamoDB.AmazonDynamoDBException"),
    ("dynamodb", "AccessDeniedException", "DynamoDB.AmazonDynamoDBException"),
    ("events", "InternalException", "EventBridge.InternalException"),
    ("events", "ThrottlingException", "EventBridge.ThrottlingException"),
    ("events", "AccessDeniedException", "EventBridge.AccessDeniedException"),
    ("events", "ValidationException", "EventBridge.AmazonEventBridgeException"),
])
def test_service_errors_are_named_after_the_sdk_exception_with_the_sdk_cause(
        sfn: Any, machine: Machine, faults: FaultInjector, table: str, service: str, code: str,
        expected: str) -> None:
    assert error_name(service, code) == expected
    task = record(table, uuid.uuid4().hex, End=True) if service == "dynamodb" else \
        {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "End": True,
         "Arguments": {"Entries": [{"Source": "engine-test", "DetailType": "t", "Detail": {}}]}}
    arn = machine({"Call": task}, "Call")
    faults.add(FaultRule(state_machine_arn=arn, state="Call", fault=Fault.fail(code, cause="what the service said")))
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"])
    assert (described["status"], described["error"]) == ("FAILED", expected)
    cause = SDK_CAUSE.match(described["cause"])
    assert cause is not None, described["cause"]
    assert (cause["message"], cause["code"], cause["client"]) == (
        "what the service said", code, "AmazonDynamoDBv2" if service == "dynamodb" else "AmazonEventBridge")
    assert cause["status"] == ("500" if code.startswith("Internal") else "400")


def test_a_real_dynamodb_error_is_named_and_explained_as_on_aws(sfn: Any, machine: Machine) -> None:
    arn = machine({"Read": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem", "End": True,
                            "Arguments": {"TableName": "no-such-table", "Key": {"id": {"S": "x"}}}}}, "Read")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"])
    assert described["error"] == "DynamoDB.ResourceNotFoundException"
    cause = SDK_CAUSE.match(described["cause"])
    assert cause is not None and (cause["client"], cause["status"], cause["code"]) == (
        "AmazonDynamoDBv2", "400", "ResourceNotFoundException"), described["cause"]


# -- the mock config file's extension -------------------------------------------------------


def run_test_case(sfn: Any, arn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str,
                  responses: dict[str, Any]) -> str:
    name = sfn.describe_state_machine(stateMachineArn=arn)["name"]
    config = {"StateMachines": {name: {"TestCases": {"Case": {state: "Responses"}}}},
              "MockedResponses": {"Responses": responses}}
    (tmp_path / "mock.json").write_text(json.dumps(config))
    monkeypatch.setenv("SFN_MOCK_CONFIG", str(tmp_path / "mock.json"))
    return sfn.start_execution(stateMachineArn=f"{arn}#Case")["executionArn"]


@pytest.mark.parametrize(("responses", "writes", "tasks"), [
    ({"0": {"Earlyexit:LostResponse": {"Error": "InternalServerError", "Cause": "lost"}},
      "1": {"Earlyexit:Passthrough": {}}}, 2,
     [("TaskFailed", "DynamoDB.InternalServerErrorException"), ("TaskSucceeded", None)]),
    ({"0": {"Earlyexit:Duplicate": {}}}, 2, [("TaskSucceeded", None)]),
    ({"0": {"Earlyexit:Delay": {"Seconds": 0.1, "After": True}}}, 1, [("TaskSucceeded", None)]),
    ({"0": {"Throw": {"Error": "DynamoDB.Whatever", "Cause": "mocked"}}, "1": {"Earlyexit:Passthrough": {}}}, 1,
     [("TaskFailed", "DynamoDB.Whatever"), ("TaskSucceeded", None)]),
    ({"0": {"Throw": {"Error": "States.Timeout", "Cause": "mocked"}}, "1": {"Return": {"mocked": True}}}, 0,
     [("TaskFailed", "States.Timeout"), ("TaskSucceeded", None)]),
], ids=["lost-response-then-passthrough", "duplicate", "delay", "throw-then-passthrough", "throw-states-then-return"])
def test_mock_config_extension_responses_call_the_real_service(
        cloud: Cloud, sfn: Any, machine: Machine, table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        responses: dict[str, Any], writes: int, tasks: list[tuple[str, str | None]]) -> None:
    key = uuid.uuid4().hex
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    arn = machine({"Record": record(table, key, Retry=retry, End=True)}, "Record")
    execution = run_test_case(sfn, arn, tmp_path, monkeypatch, "Record", responses)
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert (count(cloud, table, key), task_events(sfn, execution)) == (writes, tasks)
