"""The embedded engine behaves as AWS Step Functions does on the points the patterns rely on.

Each test shows one AWS behaviour that moto 5.2.5's interpreter gets wrong without a fix in
``earlyexit.engine`` (each fix's docstring links the AWS documentation of the behaviour).
They use small state machines of their own, so a moto upgrade that changes these internals
fails here first. The helpers and fixtures here serve the other ``test_engine_*`` files too.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import described_end, play, waits_at

from earlyexit.engine import evaluate_jsonata
from earlyexit.history import history_events
from earlyexit.local import Cloud
from earlyexit.polling import wait_until

pytestmark = pytest.mark.engine

Machine = Callable[..., str]  # the ``machine`` fixture (conftest.py)

ASK = {
    "Type": "Task",
    "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
    "Arguments": {"Entries": [{"Source": "engine-test", "DetailType": "Ask",
                               "Detail": {"token": "{% $states.context.Task.Token %}"}}]},
}


def events(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    return history_events(sfn, execution_arn)


def wait_for_event(sfn: Any, execution_arn: str, event_type: str, *, timeout: float = 10) -> list[dict[str, Any]]:
    """The history once it holds an event of ``event_type``."""
    def history() -> list[dict[str, Any]] | None:
        found = events(sfn, execution_arn)
        return found if any(e["type"] == event_type for e in found) else None

    return wait_until(history, timeout=timeout, what=f"a {event_type} event in {execution_arn}")


def task_tokens(sfn: Any, execution_arn: str, count: int, *, timeout: float = 10) -> list[str]:
    """The task tokens of the first ``count`` asks (ASK tasks) scheduled, in order."""
    def tokens() -> list[str] | None:
        details = [json.loads(e["taskScheduledEventDetails"]["parameters"])["Entries"][0]["Detail"]
                   for e in events(sfn, execution_arn) if e["type"] == "TaskScheduled"
                   and e["taskScheduledEventDetails"]["resource"] == "putEvents.waitForTaskToken"]
        found = [(json.loads(d) if isinstance(d, str) else d)["token"] for d in details]
        return found if len(found) >= count else None

    return wait_until(tokens, timeout=timeout, what=f"{count} task tokens of {execution_arn}")


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.fixture
def waiting_then_cancelled(machine: Any) -> str:
    """Flow A waits for a callback; flow B fails after 1 s, ending the Parallel; then a 2 s Wait."""
    return machine({
        "Race": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Wait for callback", "States": {"Wait for callback": {**ASK, "End": True}}},
                {"StartAt": "Let it ask", "States": {
                    "Let it ask": {"Type": "Wait", "Seconds": 1, "Next": "Finish first"},
                    "Finish first": {"Type": "Fail", "Error": "Done"}}},
            ],
            "Catch": [{"ErrorEquals": ["Done"], "Next": "Still running"}],
            "End": True,
        },
        "Still running": {"Type": "Wait", "Seconds": 2, "End": True},
    }, "Race")


# -- JSONata -------------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "expected"), [
    ("$count($distinct(['a', 'b', 'a']))", 2),
    ("$count($filter(['a', ' ', ''], function($v) { $length($trim($v)) > 0 }))", 1),
    ("$type({}) = 'object' and $type([]) = 'array' and $type(null) = 'null'", True),
    ("3.0 = $floor(3.0)", True),
    ("$substringBefore('EventBridge.FailedEntry', '.') in ['EventBridge', 'States']", True),
    ("$append([], $filter(['c', 'a', 'b'], function($v) { $v in ['a', 'b'] }))", ["a", "b"]),
    ("$append([], $filter(['c'], function($v) { $v in ['a'] }))", []),
    ("$string({'outcome': 'APPROVED', 'decidedBy': null, 'approvals': []})",
     '{"outcome":"APPROVED","decidedBy":null,"approvals":[]}'),
    ("$parse('{\"a\": [1]}').a", [1]),
])
def test_jsonata_functions_the_patterns_use_evaluate_as_on_aws(expression: str, expected: Any) -> None:
    assert evaluate_jsonata(expression) == expected


def test_jsonata_millis_is_the_evaluation_time_in_milliseconds() -> None:
    before = time.time() * 1000
    assert before - 1000 <= evaluate_jsonata("$millis()") <= time.time() * 1000 + 1000


def test_jsonata_uuid_is_a_fresh_uuid() -> None:
    first, second = evaluate_jsonata("$uuid()"), evaluate_jsonata("$uuid()")
    assert uuid.UUID(first) and first != second


def test_string_variables_with_quotes_reach_expressions_unchanged(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Keep": {"Type": "Pass", "Assign": {"name": "{% $states.input.name %}"}, "Next": "Show"},
        "Show": {"Type": "Pass", "Output": "{% {'name': $name, 'length': $length($name)} %}", "End": True},
    }, "Keep")
    name = 'O\'Brien "the \\ approver"'
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"name": name}))["executionArn"]
    described = described_end(sfn, execution)
    assert json.loads(described["output"]) == {"name": name, "length": len(name)}


def test_choice_assign_and_outer_variables_are_readable_in_parallel_branches(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Check": {"Type": "Choice", "Assign": {"who": "{% $states.input.who %}"},
                  "Choices": [{"Condition": "{% $states.input.who = '' %}", "Assign": {"why": "empty"}, "Next": "Bad"}],
                  "Default": "Fan out"},
        "Bad": {"Type": "Fail", "Error": "InvalidInput", "Cause": "{% $why %}"},
        "Fan out": {"Type": "Parallel", "Branches": [
            {"StartAt": "Greet", "States": {"Greet": {"Type": "Pass", "Output": "{% 'hi ' & $who %}", "End": True}}}],
            "End": True},
    }, "Check")
    good = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"who": "ann"}))["executionArn"]
    bad = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"who": ""}))["executionArn"]
    assert json.loads(described_end(sfn, good)["output"]) == ["hi ann"]
    assert (described_end(sfn, bad)["error"], described_end(sfn, bad)["cause"]) == ("InvalidInput", "empty")


def test_states_read_whole_or_by_context_sees_the_context_with_times_as_strings(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Look": {"Type": "Pass", "Assign": {"keys": "{% $keys($states) %}"}, "Next": "Show"},
        "Show": {"Type": "Pass", "Output": "{% {'keys': $keys, 'started': $states.context.Execution.StartTime, "
                                           "'x': $states.input.x} %}", "End": True},
    }, "Look")
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"x": 1}))["executionArn"]
    output = json.loads(described_end(sfn, execution)["output"])
    assert {"input", "context"} <= set(output["keys"]) and output["x"] == 1
    assert isinstance(output["started"], str) and output["started"].startswith("20")


def test_undefined_jsonata_result_fails_with_query_evaluation_error(sfn: Any, machine: Any) -> None:
    arn = machine({"Read": {"Type": "Pass", "Output": "{% $states.input.missing %}", "End": True}}, "Read")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"])
    assert (described["status"], described["error"]) == ("FAILED", "States.QueryEvaluationError")


def test_states_error_from_a_branch_reaches_the_parallel_catch_unchanged(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Race": {"Type": "Parallel", "Branches": [
            {"StartAt": "Broken", "States": {"Broken": {"Type": "Pass", "Output": "{% $states.input.nope %}",
                                                        "End": True}}}],
            "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Succeed"},
    }, "Race")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"])
    assert described["status"] == "SUCCEEDED"


def test_put_events_failure_is_named_after_eventbridge(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                 "Arguments": {"Entries": [{"EventBusName": "no-such-bus", "Source": "t", "DetailType": "t",
                                            "Detail": {}}]},
                 "Catch": [{"ErrorEquals": ["EventBridge.ResourceNotFoundException"], "Next": "Caught"}],
                 "End": True},
        "Caught": {"Type": "Pass", "Output": "{% {'error': $states.input.Error} %}", "End": True},
    }, "Send")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"])
    assert json.loads(described["output"]) == {"error": "EventBridge.ResourceNotFoundException"}


def test_dynamodb_task_failing_on_its_own_arguments_keeps_the_error_name(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Record": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
                   "Arguments": {"TableName": "t", "Key": {"id": {"S": "{% $states.input.missing %}"}},
                                 "UpdateExpression": "SET x = :x", "ExpressionAttributeValues": {":x": {"S": "x"}}},
                   "End": True},
    }, "Record")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"])
    assert (described["status"], described["error"]) == ("FAILED", "States.QueryEvaluationError")


# -- executions ------------------------------------------------------------------------------


def test_unnamed_executions_get_distinct_uuid_names(sfn: Any, machine: Any) -> None:
    arn = machine({"Done": {"Type": "Succeed"}}, "Done")
    first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert first != second
    assert uuid.UUID(first.rsplit(":", 1)[1]) and uuid.UUID(second.rsplit(":", 1)[1])


def test_invalid_execution_input_is_refused_with_invalid_execution_input(sfn: Any, machine: Any) -> None:
    arn = machine({"Done": {"Type": "Succeed"}}, "Done")
    with pytest.raises(ClientError) as error:
        sfn.start_execution(stateMachineArn=arn, input="{not json")
    assert error_code(error) == "InvalidExecutionInput"


def test_succeeded_status_is_never_reported_without_its_output(sfn: Any, machine: Any) -> None:
    arn = machine({"Echo": {"Type": "Pass", "Output": "{% {'n': $states.input.n} %}", "End": True}}, "Echo")
    executions = [sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": n}))["executionArn"]
                  for n in range(40)]
    seen_without_output = []
    pending = set(executions)

    def all_seen_succeeded() -> bool:
        for execution in list(pending):
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] == "SUCCEEDED":
                if "output" not in described:
                    seen_without_output.append(execution)
                pending.discard(execution)
        return not pending

    wait_until(all_seen_succeeded, timeout=30, what="40 executions to succeed", first_pause=0, max_pause=0)
    assert seen_without_output == []


# -- task tokens -----------------------------------------------------------------------------


def test_token_of_a_flow_stopped_by_the_early_exit_is_refused_while_the_execution_runs(
        sfn: Any, waiting_then_cancelled: str) -> None:
    execution = sfn.start_execution(stateMachineArn=waiting_then_cancelled)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    wait_for_event(sfn, execution, "ParallelStateExited")
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    with pytest.raises(ClientError) as error:
        sfn.send_task_success(taskToken=token, output="{}")
    assert error_code(error) == "TaskTimedOut"
    described_end(sfn, execution)
    after_exit = [e["type"] for e in events(sfn, execution)]
    after_exit = after_exit[after_exit.index("ParallelStateExited"):]
    assert not any(t.startswith("Task") for t in after_exit), after_exit


def test_flows_stopped_by_the_early_exit_release_their_waiting_threads(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Race": {"Type": "Parallel", "Branches": [
            {"StartAt": "Wait for callback", "States": {"Wait for callback": {**ASK, "End": True}}},
            {"StartAt": "Finish first", "States": {"Finish first": {"Type": "Fail", "Error": "Done"}}}],
            "Catch": [{"ErrorEquals": ["Done"], "Next": "Done"}], "End": True},
        "Done": {"Type": "Succeed"},
    }, "Race")
    baseline = threading.active_count()
    executions = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(10)]
    for execution in executions:
        assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    # Each execution leaves a callback waiting when its Parallel ends: those threads must go.
    wait_until(lambda: threading.active_count() <= baseline, timeout=10,
               what=f"the thread count back at {baseline} (now {threading.active_count()})")


def test_late_token_after_the_execution_ended_is_refused_with_task_timed_out(
        sfn: Any, waiting_then_cancelled: str) -> None:
    execution = sfn.start_execution(stateMachineArn=waiting_then_cancelled)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as error:
        sfn.send_task_success(taskToken=token, output="{}")
    assert error_code(error) == "TaskTimedOut"


def test_second_answer_on_one_token_is_refused_and_the_first_counts(sfn: Any, machine: Any) -> None:
    arn = machine({"Ask": {**ASK, "End": True}}, "Ask")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    sfn.send_task_success(taskToken=token, output=json.dumps({"answer": 1}))
    with pytest.raises(ClientError) as error:
        sfn.send_task_success(taskToken=token, output=json.dumps({"answer": 2}))
    assert error_code(error) == "TaskTimedOut"
    assert json.loads(described_end(sfn, execution)["output"]) == {"answer": 1}


def test_unknown_token_is_refused_with_invalid_token(sfn: Any) -> None:
    with pytest.raises(ClientError) as error:
        sfn.send_task_success(taskToken=str(uuid.uuid4()), output="{}")
    assert error_code(error) == "InvalidToken"


def test_send_task_failure_passes_error_and_cause_to_the_catch(sfn: Any, machine: Any) -> None:
    arn = machine({"Ask": {**ASK, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}], "End": True},
                   "Failed": {"Type": "Pass", "Output": "{% $states.input %}", "End": True}}, "Ask")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    sfn.send_task_failure(taskToken=token, error="Declined", cause="no budget")
    assert json.loads(described_end(sfn, execution)["output"]) == {"Error": "Declined", "Cause": "no budget"}


def test_send_task_failure_naming_a_states_error_reaches_the_catch_of_that_name(sfn: Any, machine: Any) -> None:
    arn = machine({"Ask": {**ASK, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Timed out"}], "End": True},
                   "Timed out": {"Type": "Pass", "Output": "{% $states.input %}", "End": True}}, "Ask")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    sfn.send_task_failure(taskToken=token, error="States.Timeout", cause="the approver's own deadline")
    assert json.loads(described_end(sfn, execution)["output"]) == {"Error": "States.Timeout",
                                                                     "Cause": "the approver's own deadline"}


def test_decisions_are_accepted_while_other_executions_are_starting(sfn: Any, machine: Any) -> None:
    asking = machine({"Ask": {**ASK, "End": True}}, "Ask")
    idle = machine({"Done": {"Type": "Succeed"}}, "Done")
    executions = [sfn.start_execution(stateMachineArn=asking)["executionArn"] for _ in range(30)]
    tokens = [task_tokens(sfn, e, 1)[0] for e in executions]
    stop = threading.Event()

    def keep_starting() -> None:
        while not stop.is_set():
            sfn.start_execution(stateMachineArn=idle)

    starter = threading.Thread(target=keep_starting)
    starter.start()
    try:
        for token in tokens:
            sfn.send_task_success(taskToken=token, output="{}")
    finally:
        stop.set()
        starter.join()
    assert {described_end(sfn, e)["status"] for e in executions} == {"SUCCEEDED"}


# -- StopExecution --------------------------------------------------------------------------


def test_stop_execution_aborts_a_callback_wait_at_once_with_error_and_cause(sfn: Any, machine: Any) -> None:
    arn = machine({"Ask": {**ASK, "End": True}}, "Ask")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    stopped = sfn.stop_execution(executionArn=execution, error="Withdrawn", cause="request cancelled")
    described = sfn.describe_execution(executionArn=execution)
    assert stopped["stopDate"] is not None
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED", "Withdrawn", "request cancelled")
    assert described["stopDate"] == stopped["stopDate"]
    with pytest.raises(ClientError) as error:
        sfn.send_task_success(taskToken=token, output="{}")
    assert error_code(error) == "TaskTimedOut"
    wait_until(lambda: events(sfn, execution)[-1]["type"] == "ExecutionAborted", timeout=5,
               what="ExecutionAborted as the last event")


# -- DynamoDB ---------------------------------------------------------------------------------


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_concurrent_add_to_one_string_set_loses_no_update(cloud: Cloud, fast_thread_switching: None) -> None:
    ddb = cloud.client("dynamodb")
    table = f"engine-test-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])

    def add(item: int, member: str) -> list[str]:
        response = ddb.update_item(TableName=table, Key={"id": {"S": str(item)}}, UpdateExpression="ADD members :m",
                                   ExpressionAttributeValues={":m": {"SS": [member]}}, ReturnValues="ALL_NEW")
        return response["Attributes"]["members"]["SS"]

    rounds = 40
    with ThreadPoolExecutor(max_workers=3) as pool:
        returned = list(pool.map(add, [i for i in range(rounds) for _ in range(3)],
                                 [m for _ in range(rounds) for m in ("a", "b", "c")]))
    for item in range(rounds):
        stored = ddb.get_item(TableName=table, Key={"id": {"S": str(item)}}, ConsistentRead=True)["Item"]
        assert sorted(stored["members"]["SS"]) == ["a", "b", "c"]
        sizes = sorted(len(r) for r in returned[item * 3:item * 3 + 3])
        assert sizes == [1, 2, 3], "each ADD returns the set as it stood right after it"


def test_an_update_expression_parsed_once_still_applies_each_calls_own_values_and_refuses_bad_syntax_each_time(
        cloud: Cloud) -> None:
    ddb = cloud.client("dynamodb")
    table = f"engine-test-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    expression = "ADD members :m SET since = if_not_exists(since, :t)"

    def add(member: str, since: str) -> dict[str, Any]:
        return ddb.update_item(TableName=table, Key={"id": {"S": "one"}}, UpdateExpression=expression,
                               ExpressionAttributeValues={":m": {"SS": [member]}, ":t": {"N": since}},
                               ReturnValues="ALL_NEW")["Attributes"]

    assert add("a", "1") == {"id": {"S": "one"}, "members": {"SS": ["a"]}, "since": {"N": "1"}}
    second = add("b", "2")
    assert (sorted(second["members"]["SS"]), second["since"]) == (["a", "b"], {"N": "1"})
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            ddb.update_item(TableName=table, Key={"id": {"S": "one"}}, UpdateExpression="ADD members :m SET",
                            ExpressionAttributeValues={":m": {"SS": ["c"]}})
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert sorted(ddb.get_item(TableName=table, Key={"id": {"S": "one"}}, ConsistentRead=True)["Item"]["members"][
        "SS"]) == ["a", "b"]


def test_a_state_machine_s_service_calls_land_in_its_own_region(cloud: Cloud) -> None:
    ireland = Cloud(region="eu-west-1")
    stack = ireland.deploy("quorum", stack_name=f"engine-test-region-{uuid.uuid4().hex[:8]}")
    approval = play(ireland.client("stepfunctions"), stack.outputs["StateMachineArn"], ("alice", "bob", "carol"),
                    [("alice", "approve"), ("bob", "approve")], quorum=2)
    assert (approval.output or {}).get("approvals") == ["alice", "bob"]
    tally = ireland.client("dynamodb").get_item(TableName=stack.outputs["TableName"], ConsistentRead=True,
                                                Key={"executionArn": {"S": approval.arn}})["Item"]
    assert sorted(tally["approvals"]["SS"]) == ["alice", "bob"]


# -- wait-time scale --------------------------------------------------------------------------


def test_wait_time_scale_shortens_wait_states_and_retry_intervals(sfn: Any, machine: Any) -> None:
    arn = machine({
        "Long wait": {"Type": "Wait", "Seconds": 3600, "Next": "Flaky"},
        "Flaky": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                  "Arguments": {"TableName": "no-such-table", "Key": {"id": {"S": "x"}}},
                  "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 600, "MaxAttempts": 2}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}], "End": True},
        "Done": {"Type": "Succeed"},
    }, "Long wait")
    with waits_at(1e-4):
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        described = described_end(sfn, execution, timeout=30)
    assert described["status"] == "SUCCEEDED"
    retries = [e for e in events(sfn, execution) if e["type"] == "TaskFailed"]
    assert len(retries) == 3, "the first attempt and two retries"


# -- Map ------------------------------------------------------------------------------------


def test_failed_map_iteration_stops_the_others_and_their_tokens_are_refused(sfn: Any, machine: Machine) -> None:
    # Both items wait for a callback; item 1's answer is a failure, which fails the Map. Its Catch leads to a
    # 2 s Wait, so the execution still runs when item 0's token is answered.
    arn = machine({
        "Each": {"Type": "Map", "Items": "{% [0, 1] %}",
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Wait for callback",
                                   "States": {"Wait for callback": {**ASK, "End": True}}},
                 "Catch": [{"ErrorEquals": ["Settled"], "Next": "Still running"}], "End": True},
        "Still running": {"Type": "Wait", "Seconds": 2, "End": True},
    }, "Each")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    tokens = task_tokens(sfn, execution, 2)
    sfn.send_task_failure(taskToken=tokens[1], error="Settled", cause="the other item decided")
    wait_for_event(sfn, execution, "MapStateFailed")
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    with pytest.raises(ClientError) as error:
        sfn.send_task_success(taskToken=tokens[0], output="{}")
    assert error_code(error) == "TaskTimedOut"
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    after = [e["type"] for e in events(sfn, execution)]
    after = after[after.index("MapStateFailed"):]
    assert not any(t.startswith("Task") for t in after), after


def test_a_map_stopped_by_its_parallel_stops_quietly(sfn: Any, machine: Machine,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    arn = machine({
        "Race": {"Type": "Parallel", "Branches": [
            {"StartAt": "Each", "States": {"Each": {
                "Type": "Map", "Items": "{% [0, 1] %}", "End": True, "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Wait for callback",
                    "States": {"Wait for callback": {**ASK, "End": True}}}}}},
            {"StartAt": "Let them ask", "States": {
                "Let them ask": {"Type": "Wait", "Seconds": 1, "Next": "Finish first"},
                "Finish first": {"Type": "Fail", "Error": "Done"}}}],
            "Catch": [{"ErrorEquals": ["Done"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Succeed"},
    }, "Race")
    with caplog.at_level(logging.ERROR):
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        tokens = task_tokens(sfn, execution, 2)
        assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    for token in tokens:
        with pytest.raises(ClientError) as error:
            sfn.send_task_success(taskToken=token, output="{}")
        assert error_code(error) == "TaskTimedOut"


def test_flows_stopped_mid_state_end_without_reporting_anything(sfn: Any, machine: Machine,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # Item 1 fails at once and stops items 0 and 2-5 wherever they are, often in the middle of their first
    # state: over 20 executions they record nothing more and nothing is reported as a fault.
    arn = machine({
        "Each": {"Type": "Map", "Items": "{% [0, 1, 2, 3, 4, 5] %}",
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Route", "States": {
                     "Route": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input = 1 %}", "Next": "Fail"}],
                               "Default": "Wait for callback"},
                     "Fail": {"Type": "Fail", "Error": "Settled"},
                     "Wait for callback": {**ASK, "End": True}}},
                 "Catch": [{"ErrorEquals": ["Settled"], "Next": "Done"}], "End": True},
        "Done": {"Type": "Succeed"},
    }, "Each")
    with caplog.at_level(logging.WARNING):
        executions = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(20)]
        assert {described_end(sfn, e)["status"] for e in executions} == {"SUCCEEDED"}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    for execution in executions:
        after = [e["type"] for e in events(sfn, execution)]
        assert not any(t.startswith("Task") for t in after[after.index("MapStateFailed"):])


MAP_OF_THREE = {
    "Each": {"Type": "Map", "Items": "{% [0, 1, 2] %}",
             "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Wait for callback",
                               "States": {"Wait for callback": {**ASK, "End": True}}},
             "Catch": [{"ErrorEquals": ["Settled"], "Next": "Done"}], "End": True},
    "Done": {"Type": "Succeed"},
}


def test_the_history_names_the_iteration_that_ended_the_map(sfn: Any, machine: Machine) -> None:
    execution = sfn.start_execution(stateMachineArn=machine(MAP_OF_THREE, "Each"))["executionArn"]
    tokens = task_tokens(sfn, execution, 3)
    sfn.send_task_failure(taskToken=tokens[2], error="Settled")
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    history = events(sfn, execution)
    failed = [e["mapIterationFailedEventDetails"]["index"] for e in history if e["type"] == "MapIterationFailed"]
    # The iteration whose task received the failure: follow the failure back to its iteration's start.
    by_id = {e["id"]: e for e in history}
    event = next(e for e in history if e["type"] == "TaskFailed")
    while event["type"] != "MapIterationStarted":
        event = by_id[event["previousEventId"]]
    assert failed == [event["mapIterationStartedEventDetails"]["index"]]


def test_stop_execution_stops_waiting_map_iterations_and_refuses_their_tokens(sfn: Any, machine: Machine) -> None:
    execution = sfn.start_execution(stateMachineArn=machine(MAP_OF_THREE, "Each"))["executionArn"]
    tokens = task_tokens(sfn, execution, 3)
    sfn.stop_execution(executionArn=execution, error="Withdrawn", cause="the request was withdrawn")
    described = sfn.describe_execution(executionArn=execution)
    assert (described["status"], described["error"]) == ("ABORTED", "Withdrawn")
    for token in tokens:
        with pytest.raises(ClientError) as error:
            sfn.send_task_success(taskToken=token, output="{}")
        assert error_code(error) == "TaskTimedOut"
    history = wait_for_event(sfn, execution, "ExecutionAborted")
    assert history[-1]["type"] == "ExecutionAborted", "nothing is recorded after the abort"


def test_the_threads_of_iterations_stopped_by_an_early_exit_end(sfn: Any, machine: Machine) -> None:
    before = set(threading.enumerate())
    execution = sfn.start_execution(stateMachineArn=machine(MAP_OF_THREE, "Each"))["executionArn"]
    tokens = task_tokens(sfn, execution, 3)
    started = set(threading.enumerate()) - before
    assert started, "the execution runs on threads of its own"
    sfn.send_task_failure(taskToken=tokens[0], error="Settled")
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"
    wait_until(lambda: not any(t.is_alive() for t in started), timeout=10,
               what="the threads of the stopped iterations to end")


def test_states_error_of_a_map_iteration_fails_the_map_with_that_error(sfn: Any, machine: Machine) -> None:
    arn = machine({
        "Each": {"Type": "Map", "Items": "{% [1] %}",
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Broken", "States": {
                     "Broken": {"Type": "Pass", "Output": "{% $states.input.nope %}", "End": True}}},
                 "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Succeed"},
    }, "Each")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"])
    assert described["status"] == "SUCCEEDED"


# -- timeouts ---------------------------------------------------------------------------------


def test_timed_out_execution_reports_its_stop_date(sfn: Any, machine: Machine) -> None:
    arn = machine({"Long": {"Type": "Wait", "Seconds": 60, "End": True}}, "Long", TimeoutSeconds=1)
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    described = described_end(sfn, execution)
    assert described["status"] == "TIMED_OUT"
    assert described["stopDate"] >= described["startDate"]
    assert events(sfn, execution)[-1]["type"] == "ExecutionTimedOut"


# -- what the API refuses ---------------------------------------------------------------------


def test_an_answer_over_262144_characters_is_refused_and_the_task_keeps_waiting(sfn: Any, machine: Machine) -> None:
    arn = machine({"Ask": {**ASK, "End": True}}, "Ask")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=token, output=json.dumps({"note": "x" * 300_000}))  # a 300 KB answer
    assert error_code(refused) == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        "1 validation error detected: Value at 'output' failed to satisfy constraint: Member must have length "
        "less than or equal to 262144")
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    sfn.send_task_success(taskToken=token, output=json.dumps({"note": "short"}))
    assert json.loads(described_end(sfn, execution)["output"]) == {"note": "short"}


@pytest.mark.parametrize(("error", "cause", "message"), [
    ("E" * 257, None, "1 validation error detected: Value at 'error' failed to satisfy constraint: Member must "
                      "have length less than or equal to 256"),
    (None, "c" * 32_769, "1 validation error detected: Value at 'cause' failed to satisfy constraint: Member must "
                         "have length less than or equal to 32768"),
    ("E" * 257, "c" * 32_769, "2 validation errors detected: Value at 'error' failed to satisfy constraint: Member "
                              "must have length less than or equal to 256; Value at 'cause' failed to satisfy "
                              "constraint: Member must have length less than or equal to 32768"),
], ids=["error", "cause", "both"])
def test_a_failure_with_too_long_an_error_or_cause_is_refused_and_the_task_keeps_waiting(
        sfn: Any, machine: Machine, error: str | None, cause: str | None, message: str) -> None:
    arn = machine({"Ask": {**ASK, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}], "End": True},
                   "Failed": {"Type": "Pass", "Output": "{% $states.input %}", "End": True}}, "Ask")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    with pytest.raises(ClientError) as refused:
        sfn.send_task_failure(taskToken=token, **{k: v for k, v in (("error", error), ("cause", cause)) if v})
    assert (error_code(refused), refused.value.response["Error"]["Message"]) == ("ValidationException", message)
    sfn.send_task_failure(taskToken=token, error="Declined", cause="c" * 32_768)
    assert json.loads(described_end(sfn, execution)["output"]) == {"Error": "Declined", "Cause": "c" * 32_768}


def test_an_answer_that_is_not_json_is_refused_with_invalid_output(sfn: Any, machine: Machine) -> None:
    arn = machine({"Ask": {**ASK, "End": True}}, "Ask")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    [token] = task_tokens(sfn, execution, 1)
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=token, output="{not json")
    assert error_code(refused) == "InvalidOutput"
    sfn.send_task_success(taskToken=token, output="{}")
    assert described_end(sfn, execution)["status"] == "SUCCEEDED"


# -- engine faults ------------------------------------------------------------------------------


def test_an_exception_inside_the_engine_fails_the_execution_and_is_logged(
        sfn: Any, machine: Machine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from earlyexit.engine.runtime import stopping

    def broken(execution: Any) -> None:
        raise RuntimeError("a fix broke")

    monkeypatch.setattr(stopping, "settle", broken)  # what publishes an ended execution's status
    arn = machine({"Done": {"Type": "Succeed"}}, "Done")
    with caplog.at_level(logging.ERROR, logger="earlyexit.engine"):
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        described = described_end(sfn, execution)
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED", "States.Runtime", "engine fault: RuntimeError: a fix broke")
    assert events(sfn, execution)[-1]["type"] == "ExecutionFailed"
    assert any(r.exc_info and "a fix broke" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.parametrize(("expression", "direct"), [
    ("$states.input.approver", True), ("$states.input", True), (" $request ", True), ("$states.input.n", True),
    ("$states.input.f", True), ("$states.input.nothing", True), ("$states.input.nested", True),
    ("$states.input.nested.deep", False), ("$states.input.missing", False), ("$states.input.list", False),
    ("$count($states.input.list)", False), ("$nowhere", False), ("$states.input.list.x", False),
])
def test_a_path_read_directly_is_what_jsonata_evaluates(expression: str, direct: bool) -> None:
    from earlyexit.engine.runtime.jsonata import NOT_A_PATH, JSONataUndefined, read_path

    bindings = {"states": {"input": {"approver": "zoë", "n": 3, "f": 2.0, "nested": {"deep": [1, {"x": 1.0}]},
                                     "list": [{"x": 1}, {"x": 2}], "nothing": None}},
                "request": {"change": "CHG-1", "amount": 12.5}}
    read = read_path(expression, bindings)
    try:
        evaluated = evaluate_jsonata(expression, bindings)
    except JSONataUndefined:
        evaluated = NOT_A_PATH  # undefined: the evaluator decides (read_path must not claim a value)
    assert (read is not NOT_A_PATH) == direct
    assert read is NOT_A_PATH or read == evaluated
