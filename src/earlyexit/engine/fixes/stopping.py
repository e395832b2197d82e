"""Stopping as AWS stops: StopExecution at once, a failed branch or iteration stopping the others, quietly.

On AWS StopExecution aborts the execution at once, wherever it waits
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html); a Parallel
state whose branch fails stops the other branches, and the error a branch ended with (``States.*``
ones included) is the Parallel's error (https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
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
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit.engine.runtime import stopping
from earlyexit.engine.runtime.backend import EngineBackend
from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.execution import EngineExecution
from earlyexit.engine.runtime.services import reported_error_name

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["branch_errors_keep_their_name", "failed_iteration_stops_the_others", "stop_execution_aborts_at_once",
           "stopped_flows_end_quietly"]


def stop_execution_aborts_at_once(p: Patcher) -> None:
    """StopExecution aborts an execution at once, wherever it waits (a callback included), with the given
    error and cause, and answers with the stop date; moto left an execution that waited for a callback
    RUNNING, dropped error and cause and answered without a stop date. With moto's interpreter off (moto's
    default outside the engine, which runs no execution) StopExecution stays moto's.

    Test: tests/test_engine.py::test_stop_execution_aborts_a_callback_wait_at_once_with_error_and_cause
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
    """
    original = p.original(StepFunctionResponse, "stop_execution")

    def stop_execution(self: EngineBackend, execution_arn: str, error: str | None = None,
                       cause: str | None = None) -> EngineExecution:
        execution = self.describe_execution(execution_arn)
        stopping.stop_execution(execution, error=error, cause=cause)
        return execution

    def stop_execution_response(self: StepFunctionResponse) -> Any:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):  # moto's interpreter is off: its backend only records executions
            return original(self)
        execution = backend.stop_execution(
            self._get_param("executionArn"), error=self._get_param("error"), cause=self._get_param("cause"))
        return ActionResult({"stopDate": execution.stop_date})

    p.replace(StepFunctionResponse, "stop_execution", stop_execution_response)
    p.replace(EngineBackend, "stop_execution", stop_execution)


def branch_errors_keep_their_name(p: Patcher) -> None:
    """A Parallel branch or a Map iteration that fails with a ``States.*`` error (States.Timeout,
    States.QueryEvaluationError, ...) fails its state with that error, so a Catch for it catches it; moto
    reported States.Runtime for a branch and crashed the iteration's worker (ValueError) for a Map.

    Tests: tests/test_engine.py::test_states_error_from_a_branch_reaches_the_parallel_catch_unchanged,
    tests/test_engine.py::test_states_error_of_a_map_iteration_fails_the_map_with_that_error
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

    Tests: tests/test_engine.py::test_failed_map_iteration_stops_the_others_and_their_tokens_are_refused,
    tests/test_engine.py::test_a_map_stopped_by_its_parallel_stops_quietly
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
    fixes.faults.injected_service_faults), so no half-made request goes out.

    Test: tests/test_engine.py::test_flows_stopped_mid_state_end_without_reporting_anything
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
