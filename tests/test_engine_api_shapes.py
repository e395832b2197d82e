"""The Step Functions API's client-visible shapes, as the API reference gives them, on the embedded engine and
on `earlyexit serve`: the members each response has and the requests AWS refuses.

Each test cites the API reference page that lists the members or the constraint.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from endpoint import client
from support import described_end

pytestmark = pytest.mark.engine

DESCRIBE_EXECUTION = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html"

PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
FAIL = {"StartAt": "A", "States": {"A": {"Type": "Fail", "Error": "Nope", "Cause": "on purpose"}}}
WAIT = {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 600, "End": True}}}


def state_machine(sfn: Any, role_arn: str, definition: dict[str, Any]) -> str:
    return str(sfn.create_state_machine(name=f"shapes-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                                        definition=json.dumps(definition))["stateMachineArn"])


def started(sfn: Any, role_arn: str, definition: dict[str, Any], execution_input: Any = None) -> str:
    return str(sfn.start_execution(stateMachineArn=state_machine(sfn, role_arn, definition),
                                   input=json.dumps(execution_input or {"order": 7}))["executionArn"])


def unvalidated(endpoint_url: str | None = None) -> Any:
    """A Step Functions client that sends parameters as given (the AWS CLI's parameters reach AWS unchecked
    when botocore's validation is off), on the embedded engine (the active mock) or on ``endpoint_url``."""
    return boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=endpoint_url,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(parameter_validation=False))


# -- DescribeExecution: redriveCount, redriveStatus (API_DescribeExecution.html: "If you have not yet
#    redriven an execution, the redriveCount is 0"; redriveStatusReason: "Execution is RUNNING and cannot be
#    redriven", "Execution is SUCCEEDED and cannot be redriven"; API_RedriveExecution.html: failed, aborted or
#    timed out executions of Standard workflows can be redriven) -------------------------------------------


def test_a_running_execution_is_not_redrivable_and_never_redriven(sfn: Any, role_arn: str) -> None:
    execution = started(sfn, role_arn, WAIT)
    try:
        described = sfn.describe_execution(executionArn=execution)
        assert described["status"] == "RUNNING"
        assert (described["redriveCount"], described["redriveStatus"], described["redriveStatusReason"]) == (
            0, "NOT_REDRIVABLE", "Execution is RUNNING and cannot be redriven")
        assert "redriveDate" not in described
    finally:
        sfn.stop_execution(executionArn=execution)


def test_a_succeeded_execution_is_not_redrivable(sfn: Any, role_arn: str) -> None:
    described = described_end(sfn, started(sfn, role_arn, PASS))
    assert (described["status"], described["redriveCount"], described["redriveStatus"],
            described["redriveStatusReason"]) == ("SUCCEEDED", 0, "NOT_REDRIVABLE",
                                                  "Execution is SUCCEEDED and cannot be redriven")


def test_failed_and_aborted_executions_are_redrivable(sfn: Any, role_arn: str) -> None:
    failed = described_end(sfn, started(sfn, role_arn, FAIL))
    assert (failed["status"], failed["redriveCount"], failed["redriveStatus"]) == ("FAILED", 0, "REDRIVABLE")
    assert "redriveStatusReason" not in failed
    aborted = started(sfn, role_arn, WAIT)
    sfn.stop_execution(executionArn=aborted)
    described = described_end(sfn, aborted)
    assert (described["status"], described["redriveStatus"]) == ("ABORTED", "REDRIVABLE")


# -- the execution's data: DescribeExecution's includedData and GetExecutionHistory's includeExecutionData ----


def test_describe_execution_has_its_input_and_output_with_their_details(sfn: Any, role_arn: str) -> None:
    described = described_end(sfn, started(sfn, role_arn, PASS, {"order": 7}))
    assert json.loads(described["input"]) == json.loads(described["output"]) == {"order": 7}
    assert described["inputDetails"] == described["outputDetails"] == {"included": True}


def test_describe_execution_metadata_only_leaves_out_input_and_output(sfn: Any, role_arn: str) -> None:
    execution = started(sfn, role_arn, PASS)
    described_end(sfn, execution)
    described = sfn.describe_execution(executionArn=execution, includedData="METADATA_ONLY")
    assert described["status"] == "SUCCEEDED"
    assert not {"input", "inputDetails", "output", "outputDetails"} & set(described)
    assert sfn.describe_execution(executionArn=execution, includedData="ALL_DATA")["output"]


def _data_members(events: list[dict[str, Any]]) -> set[str]:
    return {key for event in events for value in event.values() if isinstance(value, dict)
            for key in value if key in ("input", "inputDetails", "output", "outputDetails")}


def test_history_without_execution_data_has_no_input_or_output(sfn: Any, role_arn: str) -> None:
    """API_GetExecutionHistory.html: includeExecutionData "You can select whether execution data (input or
    output of a history event) is returned. The default is true." """
    execution = started(sfn, role_arn, PASS)
    described_end(sfn, execution)
    full = sfn.get_execution_history(executionArn=execution)["events"]
    bare = sfn.get_execution_history(executionArn=execution, includeExecutionData=False)["events"]
    assert {"input", "output"} <= _data_members(full)
    assert _data_members(bare) == set()
    assert [(e["id"], e["type"]) for e in bare] == [(e["id"], e["type"]) for e in full]
    assert bare[0]["executionStartedEventDetails"]["roleArn"] == full[0]["executionStartedEventDetails"]["roleArn"]


# -- DescribeStateMachineForExecution (API_DescribeStateMachineForExecution.html: updateDate is required, "For a
#    newly created state machine, this is the creation date") ----------------------------------------------


def test_describe_state_machine_for_execution_has_update_date(sfn: Any, role_arn: str) -> None:
    arn = state_machine(sfn, role_arn, PASS)
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    described = sfn.describe_state_machine_for_execution(executionArn=execution)
    assert described["updateDate"] == sfn.describe_state_machine(stateMachineArn=arn)["creationDate"]
    assert (described["stateMachineArn"], json.loads(described["definition"])) == (arn, PASS)
    assert described["roleArn"] == role_arn


def test_describe_state_machine_for_an_unknown_execution_is_execution_does_not_exist(sfn: Any) -> None:
    with pytest.raises(ClientError) as raised:
        sfn.describe_state_machine_for_execution(
            executionArn="arn:aws:states:us-east-1:123456789012:execution:nothing:nobody")
    assert raised.value.response["Error"]["Code"] == "ExecutionDoesNotExist"


# -- ListExecutions statusFilter (API_ListExecutions.html: "Valid Values: RUNNING | SUCCEEDED | FAILED |
#    TIMED_OUT | ABORTED | PENDING_REDRIVE") ---------------------------------------------------------------


def test_list_executions_with_an_unknown_status_filter_is_a_validation_exception(sfn: Any, role_arn: str) -> None:
    arn = state_machine(sfn, role_arn, PASS)
    with pytest.raises(ClientError) as raised:
        unvalidated().list_executions(stateMachineArn=arn, statusFilter="NOPE")
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == ("1 validation error detected: Value 'NOPE' at 'statusFilter' failed to satisfy "
                                "constraint: Member must satisfy enum value set: [RUNNING, SUCCEEDED, FAILED, "
                                "TIMED_OUT, ABORTED, PENDING_REDRIVE]")
    assert sfn.list_executions(stateMachineArn=arn, statusFilter="SUCCEEDED")["executions"] == []


def test_describe_execution_with_an_unknown_included_data_is_a_validation_exception(sfn: Any,
                                                                                    role_arn: str) -> None:
    execution = started(sfn, role_arn, PASS)
    with pytest.raises(ClientError) as raised:
        unvalidated().describe_execution(executionArn=execution, includedData="EVERYTHING")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


# -- the same shapes through `earlyexit serve` ------------------------------------------------------------


def test_the_local_endpoint_answers_the_same_shapes(served: dict[str, Any]) -> None:
    url = served["endpoint"]
    sfn = client(url, "stepfunctions")
    arn = served["stacks"]["quorum"]["StateMachineArn"]
    with pytest.raises(ClientError) as raised:
        unvalidated(url).list_executions(stateMachineArn=arn, statusFilter="NOPE")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(
        {"approvers": ["alice", "bob"], "request": {"laptop": "14-inch"}, "timeoutSeconds": 30}))["executionArn"]
    try:
        described = sfn.describe_execution(executionArn=execution)
        assert (described["redriveCount"], described["redriveStatus"]) == (0, "NOT_REDRIVABLE")
        assert "input" not in sfn.describe_execution(executionArn=execution, includedData="METADATA_ONLY")
        assert sfn.describe_state_machine_for_execution(executionArn=execution)["updateDate"]
        history = sfn.get_execution_history(executionArn=execution, includeExecutionData=False)["events"]
        assert _data_members(history) == set()
    finally:
        sfn.stop_execution(executionArn=execution)
