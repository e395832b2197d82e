"""Stopping: StopExecution, and the flows an early exit ends.

On AWS StopExecution aborts the execution at once, wherever it waits, records the given
error and cause, and returns the stop date
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html);
a Parallel state whose branch fails stops the other branches, which record nothing more
(https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html), and the error
a branch ended with (``States.*`` ones included) is the Parallel's error. DescribeExecution
never reports SUCCEEDED without the output
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
    ExecutionStatus,
    HistoryEventType,
    TaskFailedEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component import (
    InlineIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.program_state import (
    ProgramEnded,
    ProgramError,
    ProgramStopped,
    ProgramTimedOut,
)
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit.engine import tokens
from earlyexit.engine.services import reported_error_name
from earlyexit.polling import wait_until

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher
    from earlyexit.engine.runtime import EngineEnvironment, EngineExecution

__all__ = ["branch_errors_keep_their_name", "end_flow", "fail_on_engine_fault", "failed_iteration_stops_the_others",
           "settle", "stop_execution", "stop_execution_aborts_at_once", "stop_flow", "stopped_flows_end_quietly"]


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
    tokens.close_owned(env)


def end_flow(env: EngineEnvironment, end: Callable[[], None]) -> None:
    """``env.set_error`` or ``env.set_timed_out`` (moto's, as ``end``); a stopped flow stays stopped."""
    with env._state_mutex:
        if isinstance(env._program_state, ProgramStopped):
            return
        end()
    tokens.close_owned(env)


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
    env = wait_until(lambda: execution.exec_worker.env, timeout=10, what=f"the environment of {execution.exec_arn}")
    env.set_stop(stop_date=stop_date, cause=cause, error=error)


def settle(execution: EngineExecution) -> None:
    """The execution's program has ended: close its tokens, then publish its output before its status."""
    env = execution.exec_worker.env
    state = env.program_state()
    for endpoint in execution.callbacks.endpoints():
        tokens.close(endpoint)
    with tokens.LOCK:
        if execution.exec_status == ExecutionStatus.ABORTED:  # StopExecution already settled it
            return
        if isinstance(state, ProgramEnded):
            execution.output = env.states.get_input()
            status = ExecutionStatus.SUCCEEDED
        elif isinstance(state, ProgramStopped):
            status = ExecutionStatus.ABORTED
        elif isinstance(state, ProgramError):
            execution.error = (state.error or {}).get("error")
            execution.cause = (state.error or {}).get("cause")
            status = ExecutionStatus.FAILED
        elif isinstance(state, ProgramTimedOut):
            status = ExecutionStatus.TIMED_OUT
        else:
            raise RuntimeError(f"execution ended with unsupported program state {type(state).__name__}")
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
    execution.events.add_event(
        context=_root_context(execution), event_type=HistoryEventType.ExecutionFailed,
        event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(
            error="States.Runtime", cause=cause)))


def _root_context(execution: EngineExecution) -> EventHistoryContext:
    env = execution.exec_worker.env if execution.exec_worker is not None else None
    return env.event_history_context if env is not None else EventHistoryContext.of_program_start()


# --------------------------------------------------------------------------------------


def stop_execution_aborts_at_once(p: Patcher) -> None:
    """StopExecution aborts an execution at once, wherever it waits (a callback included), with the given
    error and cause, and answers with the stop date; moto left an execution that waited for a callback
    RUNNING, dropped error and cause and answered without a stop date. With moto's interpreter off (moto's
    default outside the engine, which runs no execution) StopExecution stays moto's.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
    """
    from earlyexit.engine.runtime import EngineBackend  # runtime imports this module

    original = p.original(StepFunctionResponse, "stop_execution")

    def stop_execution_response(self: StepFunctionResponse) -> Any:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):  # moto's interpreter is off: its backend only records executions
            return original(self)
        execution = backend.stop_execution(
            self._get_param("executionArn"), error=self._get_param("error"), cause=self._get_param("cause"))
        return ActionResult({"stopDate": execution.stop_date})

    p.replace(StepFunctionResponse, "stop_execution", stop_execution_response)


def branch_errors_keep_their_name(p: Patcher) -> None:
    """A Parallel branch or a Map iteration that fails with a ``States.*`` error (States.Timeout,
    States.QueryEvaluationError, ...) fails its state with that error, so a Catch for it catches it; moto
    reported States.Runtime for a branch and crashed the iteration's worker (ValueError) for a Map.

    https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html
    """
    p.replace(branches_decl, "CustomErrorName", reported_error_name)
    p.replace(iteration_worker, "CustomErrorName", reported_error_name)


def failed_iteration_stops_the_others(p: Patcher) -> None:
    """When a Map iteration fails, the Map state fails and its other iterations stop at once: they record
    nothing more and their task tokens are refused (TaskTimedOut). moto only marked them ended, so an
    iteration waiting for a callback kept its token live and, when the execution ended, recorded a
    States.Timeout failure after the fact. A Map stopped from outside (its Parallel ended early,
    StopExecution) stops quietly; moto crashed (AttributeError, logged as an engine error) building the
    error output of its aborted iterations.

    https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html
    """
    original = p.original(InlineIterationComponent, "_eval_body")

    def stop_iterations(env: EngineEnvironment) -> None:
        stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
        with env._state_mutex:
            iterations = list(env._frames)
        for frame in iterations:
            frame.set_stop(stop_date=stop_date, cause=None, error=None)

    def eval_body(self: InlineIterationComponent, env: EngineEnvironment) -> None:
        try:
            original(self, env)
        except FailureEventException as failure:
            stop_iterations(env)
            event = failure.failure_event
            if event.event_type == HistoryEventType.MapIterationAborted and \
                    not all(isinstance(d, dict) for d in (event.event_details or {}).values()):
                # moto's details for an aborted iteration are its stop's error string (or None).
                raise FailureEventException(FailureEvent(
                    env=env, error_name=event.error_name, event_type=event.event_type,
                    event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails()))) from failure
            raise
        except Exception:
            stop_iterations(env)
            raise

    p.replace(InlineIterationComponent, "_eval_body", eval_body)


def stopped_flows_end_quietly(p: Patcher) -> None:
    """A stopped flow does nothing more and reports nothing. moto went on evaluating the state a flow was in
    when it stopped, with every sub-expression skipped, which then failed (an empty evaluation stack) and was
    logged, with the whole parse tree, by every component it passed through and by the flow's program. Now
    the component where that failure of a stopped flow appears ends quietly, and so does the flow. The
    same failure in a running flow is still reported (States.Runtime, logged). A flow stopped while it
    evaluated a task's arguments makes no service call (checked where every call passes:
    faults.injected_service_faults), so no half-made request goes out.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
    """
    original_from_error = p.original(ExecutionState, "_from_error")

    def from_error(self: ExecutionState, env: EngineEnvironment, ex: Exception) -> FailureEvent:
        if isinstance(ex, FailureEventException) or not isinstance(env._program_state, ProgramStopped):  # noqa: SLF001
            return original_from_error(self, env, ex)
        error = StatesErrorName(typ=StatesErrorNameType.StatesRuntime)
        return FailureEvent(env=env, error_name=error, event_type=HistoryEventType.TaskFailed,
                            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                                error=error.error_name, cause="the flow was stopped")))

    def evaluate(self: EvalComponent, env: EngineEnvironment) -> None:
        if not env.is_running():
            return  # moto "prunes": a stopped flow evaluates nothing more
        try:
            field_name = self._field_name()
            if field_name is not None:
                env.next_field_name = field_name
            self._eval_body(env)
        except FailureEventException as failure:
            self._log_failure_event_exception(failure_event_exception=failure)
            raise
        except Exception as exception:
            if isinstance(env._program_state, ProgramStopped):  # noqa: SLF001
                return
            self._log_exception(exception=exception)
            raise

    p.replace(ExecutionState, "_from_error", from_error)
    p.replace(EvalComponent, "eval", evaluate)  # moto's steps, the stopped check added (debug logging left out)
