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
(``DynamoDB.InternalServerErrorException``: :mod:`earlyexit.engine.runtime.services`), so Retry and
Catch see what they would see on AWS. Every fault that fires is logged in
:meth:`FaultInjector.fired`, which a test can wait on (:meth:`FaultInjector.wait_fired`).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import threading
from dataclasses import dataclass, field

from moto.stepfunctions.parser.mocking.mock_config import MockedResponse

from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.polling import wait_until

__all__ = ["FAULTS", "Call", "Fault", "FaultInjector", "FaultKind", "FaultResponse", "FaultRule", "FiredFault",
           "mocked_fault", "the_call"]


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

    def matches(self, call: Call) -> bool:
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
class Call:
    """A service call a task is about to make."""

    service: str
    state_machine_arn: str
    execution_arn: str
    state: str
    attempt: int
    iteration: int | None


@dataclass(frozen=True, kw_only=True)
class FiredFault(Call):
    """A fault that fired: on which call, from which rule (None: the mock config file), when."""

    fault: Fault
    rule: FaultRule | None
    at: datetime.datetime
    _released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def release(self) -> None:
        """Let a held call go on (no effect on other faults)."""
        self._released.set()

    def wait_released(self, timeout: float) -> bool:
        """Whether the call is released within ``timeout`` seconds."""
        return self._released.wait(timeout)


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

    def match(self, call: Call, mocked: Fault | None) -> FiredFault | None:
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


def mocked_fault(env: EngineEnvironment, state: str, attempt: int) -> Fault | None:
    test_case = env.mock_test_case
    responses = test_case.state_mocked_responses.get(state) if test_case is not None else None
    if responses is None or attempt >= len(responses.mocked_responses):
        return None
    response = responses.mocked_responses[attempt]
    return response.fault if isinstance(response, FaultResponse) else None


def the_call(env: EngineEnvironment, service: str) -> Call:
    context = env.states.context_object.context_object_data
    return Call(service=service, state_machine_arn=context["StateMachine"]["Id"],
                 execution_arn=context["Execution"]["Id"], state=context["State"]["Name"],
                 attempt=context["State"]["RetryCount"], iteration=env.item_index)
