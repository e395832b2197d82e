"""Executions as AWS starts, runs and ends them: admitted by StartExecution's rules, ended once, whole."""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.exceptions import ExecutionAlreadyExists, InvalidExecutionInput
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

from earlyexit.engine.runtime import stopping
from earlyexit.engine.runtime.backend import EngineBackend
from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.execution import EngineExecution, EngineWorker, ExecutionEnd

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["engine_faults_fail_the_execution", "executions_end_once_with_their_output", "start_execution_as_aws",
           "stopped_flows_record_nothing_more"]

LOG = logging.getLogger("earlyexit.engine")


def start_execution_as_aws(p: Patcher) -> None:
    """StartExecution without a name names the execution with a UUID, refuses an invalid name (InvalidName,
    NameTooLong) and input that is not JSON (InvalidExecutionInput "Invalid State Machine Execution Input:
    '<reason>'"), and with the same name and input as a running execution returns that execution (any other
    reuse of a name is ExecutionAlreadyExists), atomically under concurrent starts. moto took no name as
    ``None``, checked no name and read the name's reuse outside any lock.

    Tests: tests/test_engine.py::test_unnamed_executions_get_distinct_uuid_names,
    tests/test_engine.py::test_invalid_execution_input_is_refused_with_invalid_execution_input
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
    """
    def admit(self: EngineBackend, state_machine: Any, name: str | None,
              input_data: str) -> tuple[str, EngineExecution | None]:
        if name:
            self._validate_name(name)
        name = name or str(uuid.uuid4())
        try:
            json.loads(input_data)
        except ValueError as error:
            raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from None
        execution_arn = self.execution_arn(state_machine, name)
        existing = self.executions_by_arn.get(execution_arn)
        if existing is None:
            return name, None
        if existing.execution_input == input_data and existing.exec_status == ExecutionStatus.RUNNING:
            return name, existing
        raise ExecutionAlreadyExists(f"Execution Already Exists: '{execution_arn}'")

    p.replace(EngineBackend, "admit", admit)


def engine_faults_fail_the_execution(p: Patcher) -> None:
    """An exception that escapes the interpreter (a fault of the engine, not of the workflow) fails the
    execution with States.Runtime naming it, and is logged; moto's worker thread died and left the execution
    RUNNING for ever. AWS reports an execution's own runtime errors as States.Runtime.

    Test: tests/test_engine.py::test_an_exception_inside_the_engine_fails_the_execution_and_is_logged
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    run = p.original(EngineWorker, "_execution_logic")

    def execution_logic(self: EngineWorker) -> None:
        try:
            run(self)
        except Exception as fault:  # noqa: BLE001 - reported: logged and the execution FAILS, never a silent hang
            LOG.exception("engine fault in execution %s", self.execution.exec_arn)
            stopping.fail_on_engine_fault(self.execution, fault)
            self.execution.ended()

    p.replace(EngineWorker, "_execution_logic", execution_logic)


def executions_end_once_with_their_output(p: Patcher) -> None:
    """An execution that ends publishes its output before its status (DescribeExecution never reports
    SUCCEEDED without the output), its task tokens refuse answers from then on, and an execution StopExecution
    aborted keeps the stop date, error and cause it was stopped with. moto set the status first, left the
    tokens open and overwrote a stopped execution's end.

    Tests: tests/test_engine.py::test_succeeded_status_is_never_reported_without_its_output,
    tests/test_engine.py::test_late_token_after_the_execution_ended_is_refused_with_task_timed_out
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
    """
    p.original(ExecutionEnd, "_reflect_execution_status")

    def reflect_execution_status(self: ExecutionEnd) -> None:
        stopping.settle(self.execution)

    p.replace(ExecutionEnd, "_reflect_execution_status", reflect_execution_status)


def stopped_flows_record_nothing_more(p: Patcher) -> None:
    """A stopped flow (StopExecution, or a Parallel branch the early exit ended) moves to no other state,
    records nothing more (a stopped execution only its ExecutionAborted event) and refuses answers to the
    task tokens it waited on; an error or a timeout after the stop leaves it stopped. moto raised when a
    branch stopped before it started moved on, and recorded the events of stopped branches.

    Tests: tests/test_engine.py::test_token_of_a_flow_stopped_by_the_early_exit_is_refused_while_the_execution_runs,
    tests/test_engine.py::test_flows_stopped_by_the_early_exit_release_their_waiting_threads
    https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html
    """
    moved = p.original(EngineEnvironment, "next_state_name")  # a property
    stop, fail, time_out = (p.original(EngineEnvironment, name) for name in ("set_stop", "set_error", "set_timed_out"))

    def move(self: EngineEnvironment, next_state_name: str) -> None:
        with self._state_mutex:
            if not isinstance(self._program_state, ProgramStopped):
                moved.fset(self, next_state_name)

    def set_stop(self: EngineEnvironment, stop_date: Any, cause: str | None, error: str | None) -> None:
        stopping.stop_flow(self, lambda: stop(self, stop_date, cause, error))

    def set_error(self: EngineEnvironment, error: Any) -> None:
        stopping.end_flow(self, lambda: fail(self, error))

    def set_timed_out(self: EngineEnvironment) -> None:
        stopping.end_flow(self, lambda: time_out(self))

    p.replace(EngineEnvironment, "next_state_name", property(moved.fget, move))
    p.replace(EngineEnvironment, "set_stop", set_stop)
    p.replace(EngineEnvironment, "set_error", set_error)
    p.replace(EngineEnvironment, "set_timed_out", set_timed_out)
