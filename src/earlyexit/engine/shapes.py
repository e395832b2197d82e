"""What Step Functions clients see: request constraints and response shapes as the API reference gives them.

AWS checks every request against the API's constraints (lengths, enumerations, ranges) before it
acts, and answers ValidationException ("1 validation error detected: Value 'NOPE' at
'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [...]");
botocore checks them on the client too, but the AWS CLI and SDKs with parameter validation off
send the request as it is. The constraints are read from botocore's Step Functions model, the
same ones AWS publishes. The responses carry the members the API reference lists: DescribeExecution's
``redriveCount`` and ``redriveStatus``, DescribeStateMachineForExecution's ``updateDate``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit.engine import limits

if TYPE_CHECKING:
    from botocore.model import StructureShape

    from earlyexit.engine.registry import Patcher

__all__ = ["describe_state_machine_for_execution_as_aws", "list_executions_validated", "redrive_fields",
           "validate_request"]

_FAILED_ENDS = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED)


@cache
def _input_shape(operation: str) -> StructureShape:
    return botocore.session.get_session().get_service_model("stepfunctions").operation_model(operation).input_shape


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Raise ValidationException, worded as AWS words it, if a parameter breaks its constraint in the API's
    model: a string outside its enumeration, an integer outside its range, a string of the wrong length."""
    problems = []
    for name, shape in _input_shape(operation).members.items():
        value = params.get(name)
        if isinstance(value, str) and shape.enum and value not in shape.enum:
            shown = "" if shape.metadata.get("sensitive") else f" '{value}'"
            problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must satisfy enum value "
                            f"set: [{', '.join(shape.enum)}]")
        elif isinstance(value, int) and not isinstance(value, bool) and shape.type_name in ("integer", "long"):
            maximum, minimum = shape.metadata.get("max"), shape.metadata.get("min")
            if maximum is not None and value > maximum:
                problems.append(f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value "
                                f"less than or equal to {maximum}")
            elif minimum is not None and value < minimum:
                problems.append(f"Value '{value}' at '{name}' failed to satisfy constraint: Member must have value "
                                f"greater than or equal to {minimum}")
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ValidationException(f"{len(problems)} validation error{plural} detected: " + "; ".join(problems))
    limits.validate(operation, params)


def redrive_fields(execution: Any) -> dict[str, Any]:
    """DescribeExecution's redrive members of an execution never redriven: ``redriveCount`` 0 and
    ``redriveStatus``, with its reason when NOT_REDRIVABLE."""
    fields: dict[str, Any] = {"redriveCount": 0}
    status = execution.exec_status
    if str(getattr(execution, "sm_type", "STANDARD")) not in ("STANDARD", "StateMachineType.STANDARD"):
        fields["redriveStatus"] = "NOT_REDRIVABLE"  # RedriveExecution is not supported by EXPRESS state machines
    elif status in _FAILED_ENDS:
        fields["redriveStatus"] = "REDRIVABLE"
    else:
        fields["redriveStatus"] = "NOT_REDRIVABLE"
        fields["redriveStatusReason"] = f"Execution is {status.value} and cannot be redriven"
    return fields


# -- the fixes ----------------------------------------------------------------------------------------


def list_executions_validated(p: Patcher) -> None:
    """ListExecutions refuses a ``statusFilter`` outside the API's values (RUNNING, SUCCEEDED, FAILED,
    TIMED_OUT, ABORTED, PENDING_REDRIVE) and a ``maxResults`` outside 0 to 1,000 with ValidationException;
    moto listed no execution for an unknown status (``aws stepfunctions list-executions --status-filter
    NOPE`` answered an empty list).

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

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeStateMachineForExecution.html
    """
    from earlyexit.engine.runtime import EngineBackend

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
