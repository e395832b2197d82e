"""Task errors as AWS names them: a heartbeat timeout is States.Timeout that States.HeartbeatTimeout catches.

The fix here restores a behaviour the Step Functions Developer Guide documents and that moto 5.2.5's
interpreter gets wrong; ``tests/test_engine_aws_reference.py`` shows it on the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

if TYPE_CHECKING:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    from earlyexit.engine.registry import Patcher

__all__ = ["heartbeat_timeouts_caught_by_name"]

_HEARTBEAT_TIMEOUT = StatesErrorNameType.StatesHeartbeatTimeout.to_name()


class _HeartbeatTimeout(StatesErrorName):
    """``States.Timeout`` (the name reported) of a task that missed its heartbeat."""

    def __init__(self) -> None:
        super().__init__(typ=StatesErrorNameType.StatesTimeout)


def heartbeat_timeouts_caught_by_name(p: Patcher) -> None:
    """A service task that sends no heartbeat within HeartbeatSeconds fails with ``States.Timeout`` ("ran longer
    than the TimeoutSeconds value, or failed to send a heartbeat for a period longer than the HeartbeatSeconds
    value"), and a Catch or Retry naming ``States.HeartbeatTimeout`` matches it ("only available inside the
    Catch and Retry fields"); moto's States.HeartbeatTimeout matched nothing. The Developer Guide does not
    say which name the history shows: it keeps States.Timeout, as its description of that error implies.
    (Activity and Lambda tasks, which the patterns do not use, keep moto's handling.)

    Test: tests/test_engine_aws_reference.py::test_a_task_without_heartbeat_is_caught_as_a_heartbeat_timeout
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    original_from_error = p.original(StateTask, "_from_error")
    original_eq = p.original(ErrorName, "__eq__")

    def from_error(self: StateTask, env: Environment, ex: Exception) -> FailureEvent:
        event: FailureEvent = original_from_error(self, env, ex)
        if isinstance(ex, HeartbeatTimeoutError):
            event.error_name = _HeartbeatTimeout()  # type: ignore[misc]
        return event

    def eq(self: ErrorName, other: Any) -> bool:
        # Either side: Python asks the subclass (_HeartbeatTimeout) first.
        names = {self.error_name, getattr(other, "error_name", None)}
        if _HEARTBEAT_TIMEOUT in names and any(isinstance(name, _HeartbeatTimeout) for name in (self, other)):
            return True
        return bool(original_eq(self, other))

    p.replace(StateTask, "_from_error", from_error)
    p.replace(ErrorName, "__eq__", eq)
