"""What Step Functions clients see: requests refused and responses shaped as the API reference gives them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from moto.core.responses import ActionResult
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit.engine.runtime.backend import EngineBackend
from earlyexit.engine.runtime.validation import validate_request

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["describe_state_machine_for_execution_as_aws", "list_executions_validated"]


def list_executions_validated(p: Patcher) -> None:
    """ListExecutions refuses a ``statusFilter`` outside the API's values (RUNNING, SUCCEEDED, FAILED,
    TIMED_OUT, ABORTED, PENDING_REDRIVE) and a ``maxResults`` outside 0 to 1,000 with ValidationException;
    moto listed no execution for an unknown status (``aws stepfunctions list-executions --status-filter
    NOPE`` answered an empty list).

    Test: tests/test_engine_api_shapes.py::test_list_executions_with_an_unknown_status_filter_is_a_validation_exception
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html
    """
    original = p.original(StepFunctionResponse, "list_executions")

    def list_executions(self: StepFunctionResponse) -> ActionResult:
        validate_request("ListExecutions", {name: self._get_param(name) for name in (
            "stateMachineArn", "statusFilter", "maxResults", "nextToken", "mapRunArn", "redriveFilter")})
        return original(self)

    p.replace(StepFunctionResponse, "list_executions", list_executions)


def describe_state_machine_for_execution_as_aws(p: Patcher) -> None:
    """DescribeStateMachineForExecution answers the state machine as the execution ran it (its definition,
    role and configuration when it started) with the members the API reference lists, ``updateDate``
    included (required: "For a newly created state machine, this is the creation date"); an execution that
    does not exist is ExecutionDoesNotExist. moto answered DescribeStateMachine's members (creationDate, no
    updateDate) for the state machine as it is now, and ResourceNotFound for an unknown execution.

    Tests: tests/test_engine_api_shapes.py::test_describe_state_machine_for_execution_has_update_date,
    tests/test_engine_api_shapes.py::test_describe_state_machine_for_an_unknown_execution_is_execution_does_not_exist
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeStateMachineForExecution.html
    """
    original = p.original(StepFunctionResponse, "describe_state_machine_for_execution")

    def describe_state_machine_for_execution(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):
            return original(self)
        execution = backend.describe_execution(self._get_param("executionArn"))
        machine = execution.state_machine  # the snapshot taken when the execution started
        response = {"stateMachineArn": machine.arn, "name": machine.name, "definition": machine.definition,
                    "roleArn": machine.roleArn, "updateDate": machine.update_date,
                    "loggingConfiguration": machine.loggingConfiguration,
                    "tracingConfiguration": machine.tracingConfiguration,
                    "encryptionConfiguration": machine.encryptionConfiguration}
        if getattr(machine, "revision_id", None):
            response["revisionId"] = machine.revision_id
        return ActionResult(response)

    p.replace(StepFunctionResponse, "describe_state_machine_for_execution", describe_state_machine_for_execution)
