"""Stopping and ending: a flow stopped (StopExecution, or a branch the early exit ended), an execution settled.

On AWS StopExecution aborts the execution at once, wherever it waits, records the given
error and cause, and returns the stop date
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html);
a Parallel state whose branch fails stops the other branches, which record nothing more
(https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html). DescribeExecution
never reports SUCCEEDED without the output
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, ExecutionStatus, HistoryEventType
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.program_state import (
    ProgramEnded,
    ProgramError,
    ProgramStopped,
    ProgramTimedOut,
)

from earlyexit.engine.runtime import tokens
from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.execution import EngineExecution
from earlyexit.polling import wait_until

__all__ = ["end_flow", "fail_on_engine_fault", "settle", "stop_execution", "stop_flow"]


class _StoppedEvents:
    """The event log as a stopped flow sees it: a stopped branch records nothing, a stopped execution only
    its ExecutionAborted event."""

    def __init__(self, log: Any, keep: frozenset[HistoryEventType]) -> None:
        self._log = log
        self._keep = keep

    def add_event(self, *args: Any, **kwargs: Any) -> int:
        event_type = kwargs.get("event_type", args[1] if len(args) > 1 else None)
        return self._log.add_event(*args, **kwargs) if event_type in self._keep else 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def stop_flow(env: EngineEnvironment, stop: Callable[[], None]) -> None:
    """``env.set_stop`` (moto's, as ``stop``): stopped is final, records nothing more, releases its tokens."""
    with env._state_mutex:
        if isinstance(env._program_state, ProgramStopped):
            return
        stop()
        if isinstance(env._program_state, ProgramStopped):
            keep = frozenset() if env.is_frame() else frozenset({HistoryEventType.ExecutionAborted})
            env.event_manager = _StoppedEvents(env.event_manager, keep)  # type: ignore[assignment]
    tokens.close_all(env.owned_endpoints)


def end_flow(env: EngineEnvironment, end: Callable[[], None]) -> None:
    """``env.set_error`` or ``env.set_timed_out`` (moto's, as ``end``); a stopped flow stays stopped."""
    with env._state_mutex:
        if isinstance(env._program_state, ProgramStopped):
            return
        end()
    tokens.close_all(env.owned_endpoints)


def stop_execution(execution: EngineExecution, *, error: str | None, cause: str | None) -> None:
    """Abort ``execution`` now (a no-op once it has ended)."""
    with tokens.LOCK:
        if execution.exec_status != ExecutionStatus.RUNNING:
            return
        stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
        execution.stop_date = stop_date
        execution.error, execution.cause = error, cause
        execution.exec_status = ExecutionStatus.ABORTED
    # The execution's thread may still be creating its environment.
    env = wait_until(lambda: execution.env, timeout=10, what=f"the environment of {execution.exec_arn}")
    env.set_stop(stop_date=stop_date, cause=cause, error=error)


def _ended_status(execution: EngineExecution, state: Any) -> ExecutionStatus:
    if isinstance(state, ProgramEnded):
        return ExecutionStatus.SUCCEEDED
    if isinstance(state, ProgramStopped):
        return ExecutionStatus.ABORTED
    if isinstance(state, ProgramError):
        execution.error = (state.error or {}).get("error")
        execution.cause = (state.error or {}).get("cause")
        return ExecutionStatus.FAILED
    if isinstance(state, ProgramTimedOut):
        return ExecutionStatus.TIMED_OUT
    raise RuntimeError(f"execution ended with unsupported program state {type(state).__name__}")


def settle(execution: EngineExecution) -> None:
    """The execution's program has ended: close its tokens, then publish its output before its status."""
    env = execution.exec_worker.env  # type: ignore[union-attr] - its program ran in it
    state = env.program_state()
    for endpoint in execution.callbacks.endpoints():
        tokens.close(endpoint)
    with tokens.LOCK:
        if execution.exec_status == ExecutionStatus.ABORTED:  # StopExecution already settled it
            return
        if isinstance(state, ProgramEnded):
            execution.output = env.states.get_input()
        status = _ended_status(execution, state)
        execution.stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
        execution.exec_status = status


def fail_on_engine_fault(execution: EngineExecution, fault: Exception) -> None:
    """An exception escaped the engine: the execution FAILS with States.Runtime naming it (never stays RUNNING)."""
    cause = f"engine fault: {type(fault).__name__}: {fault}"
    for endpoint in execution.callbacks.endpoints():
        tokens.close(endpoint)
    with tokens.LOCK:
        if execution.exec_status != ExecutionStatus.RUNNING:
            return
        execution.error, execution.cause = "States.Runtime", cause
        execution.stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
        execution.exec_status = ExecutionStatus.FAILED
    env = execution.env
    context = env.event_history_context if env is not None else EventHistoryContext.of_program_start()
    execution.events.add_event(
        context=context, event_type=HistoryEventType.ExecutionFailed,
        event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(
            error="States.Runtime", cause=cause)))
