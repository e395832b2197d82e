"""Fault injection for the service calls a state machine makes (DynamoDB, EventBridge).

A :class:`FaultRule` selects calls by state machine, state, attempt (the state's
``RetryCount``), Map item and execution; its :class:`Fault` says what happens to them:

- ``Fault.fail(code)``: the call fails before it is applied (nothing is written or sent);
- ``Fault.lost_response(code)``: the call is applied, then answers with the error (the
  write landed or the event went out, the response was lost);
- ``Fault.delay(seconds, after=False)``: the call is slowed (``after=True``: it is applied
  at once and its response is late);
- ``Fault.hold(after=False, deadline=30)``: like a delay, until the test releases it
  (:meth:`FiredFault.release`); released when its flow stops; past the deadline the task
  fails with ``States.Runtime`` and the engine logs an error, so nothing hangs;
- ``Fault.duplicate()``: the call is applied twice within one task attempt (the SDK repeated
  a request whose response was lost; both copies of a ``.waitForTaskToken`` PutEvents carry
  the same token).

Error codes are the service's wire codes (DynamoDB ``InternalServerError``, EventBridge
``InternalException``); the task reports them as Step Functions does
(``DynamoDB.InternalServerErrorException``: :mod:`earlyexit.engine.services`), so Retry and
Catch see what they would see on AWS. Every fault that fires is logged in
:meth:`FaultInjector.fired`, which a test can wait on (:meth:`FaultInjector.wait_fired`).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
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
from moto.stepfunctions.parser.mocking.mock_config import MockedResponse

from earlyexit.engine.services import SERVICES, status_code
from earlyexit.polling import wait_until

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher
    from earlyexit.engine.runtime import EngineEnvironment

__all__ = ["FAULTS", "Fault", "FaultInjector", "FaultKind", "FaultResponse", "FaultRule", "FiredFault",
           "injected_service_faults"]

LOG = logging.getLogger("earlyexit.engine")


class FaultKind(enum.Enum):
    FAIL = "fail"
    LOST_RESPONSE = "lost response"
    DELAY = "delay"
    HOLD = "hold"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, kw_only=True)
class Fault:
    """What happens to one service call; build it with the class methods."""

    kind: FaultKind
    error: str | None = None  # the service's wire error code (FAIL, LOST_RESPONSE)
    cause: str | None = None  # the error's message
    seconds: float = 0.0  # DELAY: how long; HOLD: the deadline
    after: bool = False  # DELAY, HOLD: the call is applied first, its response is late

    def __post_init__(self) -> None:
        if self.kind in (FaultKind.FAIL, FaultKind.LOST_RESPONSE) and not self.error:
            raise ValueError(f"a {self.kind.value} fault needs the service's error code")
        if self.seconds < 0 or (self.kind is FaultKind.HOLD and self.seconds <= 0):
            raise ValueError(f"invalid seconds {self.seconds!r} for a {self.kind.value} fault")

    @classmethod
    def fail(cls, error: str, *, cause: str | None = None) -> Fault:
        """The call fails with ``error`` before it is applied."""
        return cls(kind=FaultKind.FAIL, error=error, cause=cause)

    @classmethod
    def lost_response(cls, error: str, *, cause: str | None = None) -> Fault:
        """The call is applied, then answers with ``error``."""
        return cls(kind=FaultKind.LOST_RESPONSE, error=error, cause=cause)

    @classmethod
    def delay(cls, seconds: float, *, after: bool = False) -> Fault:
        """The call takes ``seconds`` longer (``after``: applied at once, the response late)."""
        return cls(kind=FaultKind.DELAY, seconds=seconds, after=after)

    @classmethod
    def hold(cls, *, after: bool = False, deadline: float = 30.0) -> Fault:
        """The call waits until released (or its flow stops); past ``deadline`` seconds the task fails."""
        return cls(kind=FaultKind.HOLD, seconds=deadline, after=after)

    @classmethod
    def duplicate(cls) -> Fault:
        """The call is applied twice within one task attempt."""
        return cls(kind=FaultKind.DUPLICATE)


@dataclass(frozen=True, kw_only=True)
class FaultRule:
    """Which calls get ``fault``: those of ``state`` in executions of ``state_machine_arn``, on attempt
    ``attempt`` (the state's RetryCount; None: every attempt), for Map item ``iteration`` (None: any),
    in execution ``execution_arn`` (None: any)."""

    state_machine_arn: str
    state: str
    fault: Fault
    attempt: int | None = 0
    iteration: int | None = None
    execution_arn: str | None = None

    def matches(self, call: _Call) -> bool:
        return (self.state_machine_arn == call.state_machine_arn and self.state == call.state
                and self.attempt in (None, call.attempt) and self.iteration in (None, call.iteration)
                and self.execution_arn in (None, call.execution_arn))


class FaultResponse(MockedResponse):
    """A mock config response of the ``Earlyexit:`` extension: the real call is made, with ``fault``
    (None: plainly, ``Earlyexit:Passthrough``)."""

    def __init__(self, range_start: int, range_end: int, fault: Fault | None) -> None:
        super().__init__(range_start=range_start, range_end=range_end)
        self.fault = fault


@dataclass(frozen=True)
class _Call:
    """A service call a task is about to make."""

    service: str
    state_machine_arn: str
    execution_arn: str
    state: str
    attempt: int
    iteration: int | None


@dataclass(frozen=True, kw_only=True)
class FiredFault(_Call):
    """A fault that fired: on which call, from which rule (None: the mock config file), when."""

    fault: Fault
    rule: FaultRule | None
    at: datetime.datetime
    _released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def release(self) -> None:
        """Let a held call go on (no effect on other faults)."""
        self._released.set()


class FaultInjector:
    """The engine's fault rules and the log of the faults that fired (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._fired: list[FiredFault] = []

    def add(self, rule: FaultRule) -> FaultRule:
        """Inject ``rule.fault`` into the calls ``rule`` selects (rules added first are matched first)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule, release every held call and empty the fired log."""
        with self._lock:
            self._rules.clear()
            fired, self._fired = self._fired, []
        for fault in fired:
            fault.release()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def fired(self, *, state: str | None = None, execution_arn: str | None = None) -> list[FiredFault]:
        """The faults that fired so far, oldest first (only those of ``state`` / ``execution_arn`` if given)."""
        with self._lock:
            return [f for f in self._fired if state in (None, f.state) and execution_arn in (None, f.execution_arn)]

    def wait_fired(self, *, state: str | None = None, execution_arn: str | None = None, count: int = 1,
                   timeout: float) -> list[FiredFault]:
        """The first ``count`` matching faults once they have fired; raises
        :class:`earlyexit.errors.WaitTimeout` if they have not within ``timeout`` seconds."""
        what = f"{count} fault(s) to fire" + (f" on state {state!r}" if state else "") + \
               (f" in {execution_arn}" if execution_arn else "")
        return wait_until(lambda: found[:count] if len(found := self.fired(state=state, execution_arn=execution_arn))
                          >= count else None, timeout=timeout, what=what)

    def match(self, call: _Call, mocked: Fault | None) -> FiredFault | None:
        """Record and return the fault for ``call``: ``mocked`` (from the mock config) or the first rule's."""
        with self._lock:
            rule = None if mocked is not None else next((r for r in self._rules if r.matches(call)), None)
            if mocked is None and rule is None:
                return None
            fired = FiredFault(**dataclasses.asdict(call), fault=mocked or rule.fault,  # type: ignore[union-attr]
                               rule=rule, at=datetime.datetime.now(tz=datetime.timezone.utc))
            self._fired.append(fired)
            return fired


FAULTS = FaultInjector()


def _mocked_fault(env: EngineEnvironment, state: str, attempt: int) -> Fault | None:
    test_case = env.mock_test_case
    responses = test_case.state_mocked_responses.get(state) if test_case is not None else None
    if responses is None or attempt >= len(responses.mocked_responses):
        return None
    response = responses.mocked_responses[attempt]
    return response.fault if isinstance(response, FaultResponse) else None


def _the_call(env: EngineEnvironment, service: str) -> _Call:
    context = env.states.context_object.context_object_data
    return _Call(service=service, state_machine_arn=context["StateMachine"]["Id"],
                 execution_arn=context["Execution"]["Id"], state=context["State"]["Name"],
                 attempt=context["State"]["RetryCount"], iteration=env.item_index)


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
    while not fired._released.wait(0.02):  # noqa: SLF001
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

    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    for service, spec in SERVICES.items():
        original = p.original(spec.task, "_eval_service_task")

        def eval_service_task(self: StateTaskService, env: EngineEnvironment, resource_runtime_part: Any,
                              normalised_parameters: dict[str, Any], state_credentials: Any,
                              _original: ServiceTask = original, _service: str = service) -> None:
            if not env.is_running():
                # A stopped flow makes no call: its arguments were evaluated while it stopped, every part after
                # the stop skipped (stop.stopped_flows_end_quietly), so a request would go out half made (an
                # ApprovalRequested event without its task token, seen under load). AWS sends nothing.
                return
            call = _the_call(env, _service)
            fired = FAULTS.match(call, _mocked_fault(env, call.state, call.attempt))
            if fired is None:
                _original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            else:
                _faulty_call(self, env, fired, _original, resource_runtime_part, normalised_parameters,
                             state_credentials)

        p.replace(spec.task, "_eval_service_task", eval_service_task)
