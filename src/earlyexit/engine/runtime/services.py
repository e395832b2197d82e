"""The services the patterns' states call, and how Step Functions names their errors.

Step Functions' optimized integrations report a failed call as ``<Service>.<Name>``, where
the name is the AWS SDK for Java (v1) exception class of the service's error code: a code
that is an error shape of the service's model gets the ``Exception`` suffix if it lacks it
(DynamoDB ``InternalServerError`` -> ``DynamoDB.InternalServerErrorException``), any other
code (``ValidationException`` is not modeled) the service's generic exception
(``DynamoDB.AmazonDynamoDBException``); the cause is the SDK's message,
``<message> (Service: <client>; Status Code: <status>; Error Code: <code>; Request ID: <id>;
Proxy: null)`` (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
:func:`error_name` and :func:`error_cause` are the one place this is done; injected faults
use them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import botocore.session
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
    StateTaskServiceDynamoDB,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events import (
    StateTaskServiceEvents,
)

__all__ = ["SERVICES", "Service", "error_cause", "error_name", "reported_error_name", "status_code"]


@dataclass(frozen=True)
class Service:
    """A service the patterns' states call: the interpreter's task class for it, and how Step Functions names
    its errors."""

    task: type[StateTaskService]  # the interpreter's class for this service's Task states
    boto_name: str  # botocore's service name
    prefix: str  # the error name's prefix
    generic: str  # the SDK's exception for codes the model does not list
    client: str  # the SDK client's name in a cause


SERVICES: dict[str, Service] = {
    "dynamodb": Service(StateTaskServiceDynamoDB, "dynamodb", "DynamoDB", "AmazonDynamoDBException",
                        "AmazonDynamoDBv2"),
    "events": Service(StateTaskServiceEvents, "events", "EventBridge", "AmazonEventBridgeException",
                      "AmazonEventBridge"),
}

# Error codes that AWS answers with a 5xx status (the JSON models carry no status codes).
_SERVER_ERRORS = {"InternalServerError": 500, "InternalException": 500, "InternalFailure": 500,
                  "ServiceUnavailable": 503, "ServiceUnavailableException": 503}


@cache
def _error_shapes(boto_name: str) -> frozenset[str]:
    return frozenset(shape.name for shape in botocore.session.get_session().get_service_model(boto_name).error_shapes)


def error_name(service: str, code: str) -> str:
    """The error a Task state reports for a ``service`` call that failed with wire error ``code``."""
    spec = SERVICES[service]
    if code in _error_shapes(spec.boto_name):
        return f"{spec.prefix}.{code if code.endswith('Exception') else code + 'Exception'}"
    return f"{spec.prefix}.{spec.generic}"


def status_code(code: str) -> int:
    """The HTTP status AWS answers error ``code`` with."""
    return _SERVER_ERRORS.get(code, 400)


def error_cause(service: str, message: str, *, code: str, status: int, request_id: str) -> str:
    """The cause of that error, as the AWS SDK for Java words it."""
    return (f"{message} (Service: {SERVICES[service].client}; Status Code: {status}; Error Code: {code}; "
            f"Request ID: {request_id}; Proxy: null)")


class _ReportedErrorName(ErrorName):
    """An error name reported by a branch or a callback, kept as it is."""


def reported_error_name(error_name: str | None) -> ErrorName:
    """``error_name`` as a flow or SendTaskFailure reported it: a known ``States.*`` name stays one."""
    if error_name is not None and error_name.startswith("States."):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            return _ReportedErrorName(error_name)
    return CustomErrorName(error_name=error_name)
