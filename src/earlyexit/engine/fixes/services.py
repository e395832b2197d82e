"""Failed service calls reported as Step Functions reports them (see :mod:`earlyexit.engine.runtime.services`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from earlyexit.engine.runtime.services import SERVICES, error_cause, error_name, status_code

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["service_errors_named_as_aws"]


def _failure(task: StateTaskService, env: Environment, error: str, cause: str) -> FailureEvent:
    return FailureEvent(
        env=env, error_name=CustomErrorName(error), event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
            error=error, cause=cause, resource=task._get_sfn_resource(), resourceType=task._get_sfn_resource_type())))


def service_errors_named_as_aws(p: Patcher) -> None:
    """A DynamoDB or EventBridge call that fails is reported as ``DynamoDB.<Name>`` / ``EventBridge.<Name>``
    with the SDK's cause (see the module docstring); a state's own failure (a JSONata error in its
    Arguments, a mocked Throw) keeps its name. moto named DynamoDB errors after the bare wire code, every
    other DynamoDB failure DynamoDB.AmazonDynamoDBException, and every EventBridge failure States.Runtime.

    Tests: tests/test_engine_faults.py::test_service_errors_are_named_after_the_sdk_exception_with_the_sdk_cause,
    tests/test_engine.py::test_put_events_failure_is_named_after_eventbridge
    https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
    https://docs.aws.amazon.com/step-functions/latest/dg/connect-eventbridge.html
    """
    for service, spec in SERVICES.items():
        original = p.original(spec.task, "_from_error")

        def from_error(self: StateTaskService, env: Environment, ex: Exception, _original: Any = original,
                       _service: str = service) -> FailureEvent:
            if isinstance(ex, FailureEventException):
                return ex.failure_event
            if isinstance(ex, ClientError):
                error = ex.response.get("Error", {})
                metadata = ex.response.get("ResponseMetadata", {})
                code = str(error.get("Code", ""))
                cause = error_cause(_service, str(error.get("Message", "")), code=code,
                                    status=int(metadata.get("HTTPStatusCode", status_code(code))),
                                    request_id=str(metadata.get("RequestId", "")))
                return _failure(self, env, error_name(_service, code), cause)
            return _original(self, env, ex)

        p.replace(spec.task, "_from_error", from_error)
