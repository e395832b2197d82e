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
from typing import TYPE_CHECKING

from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.api import InvalidOutput, InvalidToken
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit.engine.runtime.backend import EngineBackend
from earlyexit.engine.runtime.validation import validate_lengths

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["send_task_requests_validated"]


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

    Tests: tests/test_engine.py::test_an_answer_over_262144_characters_is_refused_and_the_task_keeps_waiting,
    tests/test_engine.py::test_an_answer_that_is_not_json_is_refused_with_invalid_output
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html
    """
    def send_task_success(self: StepFunctionResponse) -> EmptyResult:
        token, output = self._get_param("taskToken"), self._get_param("output")
        validate_lengths("SendTaskSuccess", {"taskToken": token, "output": output})
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
        validate_lengths("SendTaskFailure", params)
        backend = self.stepfunction_backend
        if isinstance(backend, StepFunctionsParserBackend):
            backend.send_task_failure(params["taskToken"], error=params["error"], cause=params["cause"])
        else:  # moto's backend that only records executions takes no cause
            backend.send_task_failure(params["taskToken"], error=params["error"])
        return EmptyResult()

    def send_task_heartbeat(self: StepFunctionResponse) -> EmptyResult:
        token = self._get_param("taskToken")
        validate_lengths("SendTaskHeartbeat", {"taskToken": token})
        self.stepfunction_backend.send_task_heartbeat(token)
        return EmptyResult()

    p.replace(StepFunctionResponse, "send_task_success", send_task_success)
    p.replace(StepFunctionResponse, "send_task_failure", send_task_failure)
    p.replace(StepFunctionResponse, "send_task_heartbeat", send_task_heartbeat)
