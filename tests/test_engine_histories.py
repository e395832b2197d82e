"""Histories and descriptions: paged as AWS pages them, the same bytes as moto's serializer, bounded in number."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.stepfunctions.parser.models import stepfunctions_parser_backends
from moto.stepfunctions.responses import StepFunctionResponse
from support import described_end
from test_engine import ASK, Machine, error_code, events, task_tokens

from earlyexit import engine
from earlyexit.engine.runtime.encoding import encoder
from earlyexit.engine.runtime.histories import describe_output, history_page
from earlyexit.local import Cloud

pytestmark = pytest.mark.engine

ACCOUNT, REGION = "123456789012", "us-east-1"


def moto_body(operation: str, result: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    """What moto's own JSON serializer answers for ``result``."""
    model = get_service_model("stepfunctions")
    context = ActionContext(model, model.operation_model(operation), JSONSerializer, StepFunctionResponse())
    return ActionResult(result).execute_result(context)


@pytest.fixture(scope="module")
def variety(sfn: Any, role_arn: str) -> list[str]:  # noqa: F811
    """Ended executions with every kind of event the patterns produce: Parallel, Map, Choice, Wait, tasks that
    fail and are caught, callbacks, JSONata output with quotes and non-ASCII text, FAILED, ABORTED, TIMED_OUT."""
    def create(states: dict[str, Any], start_at: str, **definition: Any) -> str:
        body = {"QueryLanguage": "JSONata", "StartAt": start_at, "States": states, **definition}
        return sfn.create_state_machine(name=f"engine-variety-{uuid.uuid4().hex[:8]}", roleArn=role_arn,
                                        definition=json.dumps(body))["stateMachineArn"]

    everything = create({
        "Assign": {"Type": "Pass", "Assign": {"who": "{% $states.input.who %}"}, "Next": "Both"},
        "Both": {"Type": "Parallel", "Branches": [
            {"StartAt": "Each", "States": {"Each": {"Type": "Map", "Items": "{% [1, 2, 3] %}", "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Double", "States": {
                    "Double": {"Type": "Pass", "Output": "{% $states.input * 2 %}", "End": True}}}, "End": True}}},
            {"StartAt": "Send", "States": {"Send": {
                "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                "Arguments": {"Entries": [{"EventBusName": "no-such-bus", "Source": "t", "DetailType": "t",
                                           "Detail": {}}]},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True},
                "Caught": {"Type": "Pass", "End": True}}}],
            "Next": "Pick"},
        "Pick": {"Type": "Choice", "Choices": [{"Condition": "{% $who = 'zoë' %}", "Next": "Wait"}], "Default": "Fail"},
        "Wait": {"Type": "Wait", "Seconds": 0, "Next": "Done"},
        "Done": {"Type": "Pass", "Output": "{% {'who': $who, 'said': 'she said \"hi\" \\\\ ✓'} %}", "End": True},
        "Fail": {"Type": "Fail", "Error": "Nobody", "Cause": "{% 'not ' & $who %}"},
    }, "Assign")
    asking = create({"Ask": {**ASK, "End": True}}, "Ask")
    slow = create({"Long": {"Type": "Wait", "Seconds": 60, "End": True}}, "Long", TimeoutSeconds=1)
    arns = [sfn.start_execution(stateMachineArn=everything, input=json.dumps({"who": who}))["executionArn"]
            for who in ("zoë", "nobody")]
    answered, stopped = (sfn.start_execution(stateMachineArn=asking)["executionArn"] for _ in range(2))
    sfn.send_task_success(taskToken=task_tokens(sfn, answered, 1)[0], output=json.dumps({"ok": "✓"}))
    task_tokens(sfn, stopped, 1)
    sfn.stop_execution(executionArn=stopped, error="Withdrawn", cause="the request was withdrawn")
    arns += [answered, stopped, sfn.start_execution(stateMachineArn=slow)["executionArn"]]
    for arn in arns:
        described_end(sfn, arn)
    return arns


def test_the_variety_covers_every_ending(sfn: Any, variety: list[str]) -> None:
    assert [sfn.describe_execution(executionArn=a)["status"] for a in variety] == [
        "SUCCEEDED", "FAILED", "SUCCEEDED", "ABORTED", "TIMED_OUT"]


def test_history_bodies_are_byte_for_byte_moto_serializer_output(variety: list[str]) -> None:
    backend = stepfunctions_parser_backends[ACCOUNT][REGION]
    for arn in variety:
        execution = backend.describe_execution(arn)
        status, headers, body = moto_body("GetExecutionHistory",
                                          {"events": execution.events.get_event_history()})
        assert history_page(execution, max_results=1000, next_token=None, reverse=False) == body
        assert (status, headers) == (200, {"Content-Type": "application/x-amz-json-1.0"})


def test_describe_bodies_are_byte_for_byte_moto_serializer_output(variety: list[str]) -> None:
    backend = stepfunctions_parser_backends[ACCOUNT][REGION]
    for arn in variety:
        response = describe_output(backend.describe_execution(arn), arn)
        assert encoder("stepfunctions", "DescribeExecution")(response) == moto_body("DescribeExecution", response)[2]


def test_history_is_paged_forward_and_backward_as_aws_pages_it(sfn: Any, variety: list[str]) -> None:
    arn = variety[0]
    everything = events(sfn, arn)
    assert len(everything) > 20
    for reverse in (False, True):
        pages, kwargs = [], {"executionArn": arn, "maxResults": 7, "reverseOrder": reverse}
        while True:
            page = sfn.get_execution_history(**kwargs)
            pages.append(page["events"])
            if "nextToken" not in page:
                break
            kwargs["nextToken"] = page["nextToken"]
        assert all(len(p) == 7 for p in pages[:-1]) and 0 < len(pages[-1]) <= 7
        assert [e["id"] for p in pages for e in p] == [e["id"] for e in (everything[::-1] if reverse else everything)]


def test_history_pages_hold_100_events_unless_asked_otherwise(sfn: Any, machine: Machine) -> None:  # noqa: F811
    arn = machine({"Each": {"Type": "Map", "Items": "{% [1..30] %}", "ItemProcessor": {
        "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Item", "States": {
            "Item": {"Type": "Pass", "End": True}}}, "End": True}}, "Each")
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    described_end(sfn, execution)
    first = sfn.get_execution_history(executionArn=execution)
    second = sfn.get_execution_history(executionArn=execution, nextToken=first["nextToken"])
    assert len(first["events"]) == 100 and "nextToken" in first
    assert [e["id"] for e in first["events"] + second["events"]] == [e["id"] for e in events(sfn, execution)]


@pytest.mark.parametrize("token", ["not-a-token", "other-execution"])
def test_a_token_that_is_not_this_executions_is_refused(sfn: Any, variety: list[str], token: str) -> None:
    if token == "other-execution":
        token = sfn.get_execution_history(executionArn=variety[1], maxResults=2)["nextToken"]
    with pytest.raises(ClientError) as refused:
        sfn.get_execution_history(executionArn=variety[0], maxResults=2, nextToken=token)
    assert error_code(refused) == "InvalidToken"


def test_more_than_1000_events_per_page_is_refused(variety: list[str]) -> None:
    raw = boto3.client("stepfunctions", region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as refused:
        raw.get_execution_history(executionArn=variety[0], maxResults=1001)
    assert error_code(refused) == "ValidationException"
    assert "Member must have value less than or equal to 1000" in refused.value.response["Error"]["Message"]


# -- the bound on finished executions ---------------------------------------------------------


@pytest.fixture
def two_finished_kept() -> Iterator[None]:
    previous = engine.max_finished_executions()
    engine.set_max_finished_executions(2)
    yield
    engine.set_max_finished_executions(previous)


def test_the_engine_keeps_only_the_newest_finished_executions(cloud: Cloud, role_arn: str,  # noqa: F811
                                                              two_finished_kept: None) -> None:
    # In a region of its own: the bound applies to each account and region.
    sfn = boto3.client("stepfunctions", region_name="eu-west-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    arn = sfn.create_state_machine(name=f"engine-bound-{uuid.uuid4().hex[:8]}", roleArn=role_arn, definition=json.dumps(
        {"QueryLanguage": "JSONata", "StartAt": "Ask", "States": {"Ask": {**ASK, "End": True}}}))["stateMachineArn"]
    executions = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(4)]
    tokens = [task_tokens(sfn, e, 1)[0] for e in executions]
    for execution, token in zip(executions, tokens, strict=True):  # they end in order: the first two go
        sfn.send_task_success(taskToken=token, output="{}")
        described_end(sfn, execution)
    assert sorted(e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]) == \
        sorted(executions[2:])
    with pytest.raises(ClientError) as gone:
        sfn.describe_execution(executionArn=executions[0])
    assert error_code(gone) == "ExecutionDoesNotExist"
    with pytest.raises(ClientError) as forgotten:
        sfn.send_task_success(taskToken=tokens[0], output="{}")
    assert error_code(forgotten) == "InvalidToken"
    with pytest.raises(ClientError) as late:
        sfn.send_task_success(taskToken=tokens[3], output="{}")
    assert error_code(late) == "TaskTimedOut"


def test_responses_of_every_service_the_patterns_call_are_moto_serializer_output(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch, variety: list[str]) -> None:
    # Record what each response's result was and what the engine answered, then ask moto's own serializer.
    answered: list[tuple[ActionContext, object, str]] = []
    fast = ActionResult.execute_result

    def recording(self: ActionResult, context: ActionContext) -> Any:
        status, headers, body = fast(self, context)
        answered.append((context, self.result, body))
        return status, headers, body

    monkeypatch.setattr(ActionResult, "execute_result", recording)
    ddb, events_client, sfn = cloud.client("dynamodb"), cloud.client("events"), cloud.client("stepfunctions")
    table = f"engine-bodies-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    ddb.describe_table(TableName=table)
    ddb.update_item(TableName=table, Key={"id": {"S": "x"}}, ReturnValues="ALL_NEW",
                    UpdateExpression="ADD approvals :a SET expiresAt = if_not_exists(expiresAt, :e)",
                    ExpressionAttributeValues={":a": {"SS": ["alice", "zoë"]}, ":e": {"N": "1767312000"}})
    ddb.get_item(TableName=table, Key={"id": {"S": "x"}}, ConsistentRead=True)
    events_client.put_events(Entries=[{"Source": "engine-test", "DetailType": "t", "Detail": json.dumps({"a": 1})}])
    sfn.describe_execution(executionArn=variety[0])
    sfn.list_executions(stateMachineArn=sfn.describe_execution(executionArn=variety[0])["stateMachineArn"])
    monkeypatch.undo()
    assert {c.operation_model.name for c, _, _ in answered} >= {
        "CreateTable", "DescribeTable", "UpdateItem", "GetItem", "DescribeExecution", "ListExecutions"}
    for context, result, body in answered:
        picker = XFormedAttributePicker(
            response_transformers=getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None))
        serializer = context.serializer_class(operation_model=context.operation_model, value_picker=picker)
        assert body == serializer.serialize(result)["body"], context.operation_model.name
