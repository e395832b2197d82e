"""Requests the Step Functions API refuses, refused as AWS refuses them.

AWS validates SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat against the API's
constraints before anything reaches the task: ``output`` is at most 262,144 characters of
valid JSON, ``error`` at most 256 and ``cause`` at most 32,768 characters
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html,
https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html). The
lengths are read from botocore's Step Functions model, the same constraints AWS publishes.
moto accepted any length (a 300 KB answer then failed the execution with
States.DataLimitExceeded) and dropped SendTaskFailure's ``cause``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
from moto.core.responses import EmptyResult
from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser.api import InvalidOutput, InvalidToken
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

if TYPE_CHECKING:
    from botocore.model import StructureShape

    from earlyexit.engine.registry import Patcher

__all__ = ["send_task_requests_validated", "validate"]


@cache
def _input_shape(operation: str) -> StructureShape:
    return botocore.session.get_session().get_service_model("stepfunctions").operation_model(operation).input_shape


def validate(operation: str, params: dict[str, Any]) -> None:
    """Raise ValidationException, worded as AWS words it, if a string parameter breaks its length constraint."""
    problems = []
    for name, shape in _input_shape(operation).members.items():
        value = params.get(name)
        if not isinstance(value, str):
            continue
        shown = "" if shape.metadata.get("sensitive") else f" '{value}'"
        maximum, minimum = shape.metadata.get("max"), shape.metadata.get("min")
        if maximum is not None and len(value) > maximum:
            problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must have length less "
                            f"than or equal to {maximum}")
        if minimum is not None and len(value) < minimum:
            problems.append(f"Value{shown} at '{name}' failed to satisfy constraint: Member must have length "
                            f"greater than or equal to {minimum}")
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ValidationException(f"{len(problems)} validation error{plural} detected: " + "; ".join(problems))


def _invalid_output() -> InvalidOutput:
    return InvalidOutput("Invalid Output: 'The provided JSON output data is invalid.'",
                         exception_type=InvalidOutput.code)


def send_task_requests_validated(p: Patcher) -> None:
    """SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat are refused with ValidationException when a
    value breaks the API's length constraints, and SendTaskSuccess with InvalidOutput when ``output`` is
    not JSON; nothing reaches the task, which keeps waiting. SendTaskFailure's ``cause`` reaches the task.
    A token Step Functions never issued is InvalidToken whatever the output (the API reference does not
    order the checks; moto's tests verified against AWS send a bad token with output that is not JSON and
    get InvalidToken).

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html
    """
    from earlyexit.engine.runtime import EngineBackend  # runtime imports the engine's other modules

    def send_task_success(self: StepFunctionResponse) -> EmptyResult:
        token, output = self._get_param("taskToken"), self._get_param("output")
        validate("SendTaskSuccess", {"taskToken": token, "output": output})
        try:
            json.loads(output)
        except (TypeError, ValueError):
            backend = self.stepfunction_backend
            if isinstance(backend, EngineBackend) and token not in backend.tokens:
                raise InvalidToken() from None
            raise _invalid_output() from None
        self.stepfunction_backend.send_task_success(token, output)
        return EmptyResult()

    def send_task_failure(self: StepFunctionResponse) -> EmptyResult:
        params = {name: self._get_param(name) for name in ("taskToken", "error", "cause")}
        validate("SendTaskFailure", params)
        backend = self.stepfunction_backend
        if isinstance(backend, StepFunctionsParserBackend):
            backend.send_task_failure(params["taskToken"], error=params["error"], cause=params["cause"])
        else:  # moto's backend that only records executions takes no cause
            backend.send_task_failure(params["taskToken"], error=params["error"])
        return EmptyResult()

    def send_task_heartbeat(self: StepFunctionResponse) -> EmptyResult:
        token = self._get_param("taskToken")
        validate("SendTaskHeartbeat", {"taskToken": token})
        self.stepfunction_backend.send_task_heartbeat(token)
        return EmptyResult()

    p.replace(StepFunctionResponse, "send_task_success", send_task_success)
    p.replace(StepFunctionResponse, "send_task_failure", send_task_failure)
    p.replace(StepFunctionResponse, "send_task_heartbeat", send_task_heartbeat)
