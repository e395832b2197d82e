"""Faults injected into the service calls a state machine makes (DynamoDB, EventBridge).

The rules and the log of the faults that fired are :data:`earlyexit.engine.runtime.faults.FAULTS`;
here each call is matched against them and the mock config's ``Earlyexit:`` responses, and the
fault happens to the call.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.faults import FAULTS, Fault, FaultKind, FiredFault, mocked_fault, the_call
from earlyexit.engine.runtime.services import SERVICES, status_code

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["injected_service_faults"]

LOG = logging.getLogger("earlyexit.engine")


def _client_error(task: StateTaskService, fault: Fault) -> ClientError:
    code = str(fault.error)
    return ClientError({"Error": {"Code": code, "Message": fault.cause or f"{code} (injected fault)"},
                        "ResponseMetadata": {"HTTPStatusCode": status_code(code),
                                             "RequestId": uuid.uuid4().hex.upper()}},
                       task.resource.api_action[:1].upper() + task.resource.api_action[1:])


def _hold_expired(task: StateTaskService, env: EngineEnvironment, fired: FiredFault) -> FailureEventException:
    cause = (f"earlyexit: the held {fired.service} call of state {fired.state!r} (attempt {fired.attempt}) "
             f"was not released within {fired.fault.seconds:g} s")
    LOG.error("%s in %s", cause, fired.execution_arn)
    error = StatesErrorName(typ=StatesErrorNameType.StatesRuntime)
    return FailureEventException(FailureEvent(
        env=env, error_name=error, event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
            error=error.error_name, cause=cause, resource=task._get_sfn_resource(),
            resourceType=task._get_sfn_resource_type()))))


def _pause(task: StateTaskService, env: EngineEnvironment, fired: FiredFault) -> None:
    if fired.fault.kind is FaultKind.DELAY:
        time.sleep(fired.fault.seconds)
        return
    deadline = time.monotonic() + fired.fault.seconds
    while not fired.wait_released(0.02):
        if not env.is_running():  # the flow stopped: the call goes on, nobody waits for it
            return
        if time.monotonic() >= deadline:
            raise _hold_expired(task, env, fired)


ServiceTask = Callable[[StateTaskService, Any, Any, dict[str, Any], Any], None]


def _faulty_call(task: StateTaskService, env: EngineEnvironment, fired: FiredFault, call: ServiceTask,
                 runtime_part: Any, parameters: dict[str, Any], credentials: Any) -> None:
    fault = fired.fault
    if fault.kind is FaultKind.FAIL:
        raise _client_error(task, fault)
    if fault.kind in (FaultKind.DELAY, FaultKind.HOLD) and not fault.after:
        _pause(task, env, fired)
    if fault.kind is FaultKind.DUPLICATE:
        call(task, env, runtime_part, copy.deepcopy(parameters), credentials)
        env.stack.pop()
    call(task, env, runtime_part, parameters, credentials)
    if fault.kind is FaultKind.LOST_RESPONSE:
        env.stack.pop()
        raise _client_error(task, fault)
    if fault.kind in (FaultKind.DELAY, FaultKind.HOLD) and fault.after:
        _pause(task, env, fired)


def injected_service_faults(p: Patcher) -> None:
    """DynamoDB and EventBridge calls get the faults :data:`FAULTS` and the mock config select: the failures
    real services have (an error before the call applies, a lost response after it applied, latency, a
    request applied twice), reported as Step Functions reports them, so Retry and Catch are exercised as on
    AWS.

    Tests: tests/test_engine_faults.py::test_a_lost_response_fails_the_task_after_the_write_landed,
    tests/test_engine_faults.py::test_a_held_call_waits_until_released
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    for service, spec in SERVICES.items():
        original = p.original(spec.task, "_eval_service_task")

        def eval_service_task(self: StateTaskService, env: EngineEnvironment, resource_runtime_part: Any,
                              normalised_parameters: dict[str, Any], state_credentials: Any,
                              _original: ServiceTask = original, _service: str = service) -> None:
            if not env.is_running():
                # A stopped flow makes no call: its arguments were evaluated while it stopped, every part after
                # the stop skipped (fixes.stopping.stopped_flows_end_quietly), so a request would go out half made (an
                # ApprovalRequested event without its task token, seen under load). AWS sends nothing.
                return
            call = the_call(env, _service)
            fired = FAULTS.match(call, mocked_fault(env, call.state, call.attempt))
            if fired is None:
                _original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            else:
                _faulty_call(self, env, fired, _original, resource_runtime_part, normalised_parameters,
                             state_credentials)

        p.replace(spec.task, "_eval_service_task", eval_service_task)
