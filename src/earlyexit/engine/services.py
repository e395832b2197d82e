"""Service calls a state machine makes: reused clients, and errors named as Step Functions names them.

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

import functools
import importlib
import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
import jsonpath_ng.ext
from botocore.exceptions import ClientError
from botocore.handlers import disable_signing
from moto.core import responses as moto_responses
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
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
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import boto_client

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["SERVICES", "Service", "error_cause", "error_name", "event_paths_compiled_once", "requests_dispatched_fast",
           "reported_error_name", "reuse_service_clients", "service_errors_named_as_aws", "status_code"]


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


# Every interpreter module that builds service clients.
_CLIENT_MODULES = [f"moto.stepfunctions.parser.asl.component.state.{name}" for name in (
    "exec.state_task.service.state_task_service_dynamodb", "exec.state_task.service.state_task_service_events",
    "exec.state_task.service.state_task_service_sqs", "exec.state_task.service.state_task_service_sns",
    "exec.state_task.service.state_task_service_sfn", "exec.state_task.service.state_task_service_aws_sdk",
    "exec.state_task.service.state_task_service_batch", "exec.state_task.service.state_task_service_ecs",
    "exec.state_task.service.state_task_service_glue", "exec.state_task.service.state_task_service_unsupported",
    "exec.state_task.lambda_eval_utils", "exec.state_map.item_reader.eval.resource_eval_s3",
    "exec.state_map.result_writer.resource_eval.resource_eval_s3")]


# Services whose emulation reads the signature (an unsigned request is anonymous to moto's S3).
_SIGNED = frozenset({"s3"})


def reuse_service_clients(p: Patcher) -> None:
    """One client per service and region, reused by every task (boto3 clients are thread-safe); moto built a
    new client for every call, tens of milliseconds each. In-process, the clients do not sign their requests:
    moto signed them with fixed dummy keys that no emulated service checks, the region is in the request's
    URL, and signing was a quarter of each call (through a server the URL has no region, so they still sign).
    S3 clients still sign: moto's S3 takes an unsigned request for an anonymous one and refuses it (403) on
    a private bucket, as S3 does. Performance only: the calls are unchanged.

    https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html
    """
    original = p.original(boto_client, "boto_client_for")
    cache_: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto signs every call with fixed dummy keys, whatever the state's credentials.
        key = (region, service, None if botocore_stubber.enabled else moto_server_port())
        with lock:
            if key not in cache_:
                client = original(region=region, service=service)
                if botocore_stubber.enabled and service not in _SIGNED:
                    client.meta.events.register_first("choose-signer", disable_signing)
                cache_[key] = client
            return cache_[key]

    for name in _CLIENT_MODULES:
        p.replace(importlib.import_module(name), "boto_client_for", boto_client_for)
    p.replace(boto_client, "boto_client_for", boto_client_for)


def event_paths_compiled_once(p: Patcher) -> None:
    """EventBridge delivers each event to its rules' targets, by default the event itself; moto compiled the
    eight JSONPath expressions of the default input template (a new parser each time, milliseconds each) for
    every event and target. Each expression is compiled once. Performance only: deliveries are unchanged.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
    """
    p.replace(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=4096)(p.original(jsonpath_ng.ext, "parse")))


def requests_dispatched_fast(p: Patcher) -> None:
    """Every request the emulated services receive (the clients' and the state machines' own calls) finds its
    handler without listing the handler class's methods again (moto called ``inspect.getmembers`` and
    re-derived the action's name on every request). Performance only: the handler is the same.

    https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html
    """
    p.replace(moto_responses, "method_names_from_class",
              functools.cache(p.original(moto_responses, "method_names_from_class")))
    p.replace(moto_responses, "camelcase_to_underscores",
              functools.lru_cache(maxsize=4096)(p.original(moto_responses, "camelcase_to_underscores")))
