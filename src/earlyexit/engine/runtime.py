"""The engine's own backend, execution, worker and environment: moto's seams for the fixes that are not patches.

moto creates each account's and region's Step Functions backend from the class registered
in its ``BackendDict``; :func:`engine_runtime` registers :class:`EngineBackend` there. Its
executions are :class:`EngineExecution`, whose worker (:class:`EngineWorker`) receives the
mock config test case through moto's ``mock_test_case`` parameter and evaluates in an
:class:`EngineEnvironment` (frames included). What these classes change, each with the AWS
behaviour it restores:

- StartExecution without a name gets a UUID, invalid names and input are refused as AWS does,
  and the same name with the same input is idempotent while the execution runs
  (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
- Executions are found by ARN and task tokens by token in one step (moto scanned every
  execution), and a long-running engine keeps at most :func:`max_finished_executions`
  finished executions, dropping the oldest first (AWS keeps closed executions 90 days:
  https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
- A stopped flow (StopExecution, or a branch the early exit ended) moves to no other state
  and records nothing more, and an engine fault fails the execution (States.Runtime) instead
  of leaving it RUNNING for ever.
- Each definition is parsed once, and a task or a program (a branch, a Map iteration, a state
  machine) with no timeout of its own runs on its flow's thread (performance only).
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.exceptions import ExecutionAlreadyExists, ExecutionDoesNotExist, InvalidExecutionInput
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser import utils as parser_utils
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program import program as program_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.evaluation_details import EvaluationDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.eval.states import ContextObjectData, ExecutionData, StateMachineData
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from earlyexit.engine import histories, mock_config, stop, tokens

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["EngineBackend", "EngineEnvironment", "EngineExecution",
           "engine_runtime", "max_finished_executions", "quiet_workflow_errors", "set_max_finished_executions",
           "programs_without_a_timeout_run_inline", "shared_programs", "stop_running_executions",
           "tasks_without_a_timeout_run_inline", "thread_registry_off"]

LOG = logging.getLogger("earlyexit.engine")

_max_finished: int | None = None  # unbounded, as moto, until set
_running: weakref.WeakSet[EngineExecution] = weakref.WeakSet()
_running_lock = threading.Lock()


def set_max_finished_executions(limit: int | None) -> None:
    """Keep at most ``limit`` finished executions per account and region (None: keep all); the oldest go first."""
    global _max_finished
    if limit is not None and limit < 0:
        raise ValueError(f"max_finished_executions must be >= 0 or None, got {limit!r}")
    _max_finished = limit


def max_finished_executions() -> int | None:
    """The current bound on finished executions kept (None: unbounded)."""
    return _max_finished


class EngineEnvironment(Environment):
    """moto's evaluation environment for the engine's executions; its frames are EngineEnvironments too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execution: EngineExecution | None = None
        self.owned_endpoints: set[Any] = set()  # callback endpoints this flow waits on
        self._inherited_item_index: int | None = None

    @classmethod
    def as_frame_of(cls, env: Environment, event_history_frame_cache: EventHistoryContext | None = None
                    ) -> EngineEnvironment:
        # moto's as_frame_of builds a plain Environment; build this class's frame instead.
        return cls.as_inner_frame_of(env=env, variable_store=env.variable_store,
                                     event_history_frame_cache=event_history_frame_cache)

    @classmethod
    def as_inner_frame_of(cls, env: Environment, variable_store: Any,
                          event_history_frame_cache: EventHistoryContext | None = None) -> EngineEnvironment:
        frame = super().as_inner_frame_of(env=env, variable_store=variable_store,
                                          event_history_frame_cache=event_history_frame_cache)
        if isinstance(env, EngineEnvironment):
            frame.execution = env.execution
            frame._inherited_item_index = env.item_index
        return frame

    @property
    def item_index(self) -> int | None:
        """The index of the Map item this flow processes (the innermost Map), None outside a Map."""
        map_data = self.states.context_object.context_object_data.get("Map")
        return map_data["Item"]["Index"] if map_data else self._inherited_item_index

    @property
    def next_state_name(self) -> str | None:
        return Environment.next_state_name.fget(self)  # type: ignore[attr-defined]

    @next_state_name.setter
    def next_state_name(self, next_state_name: str) -> None:
        """A stopped flow goes to no other state (moto raised, killing a branch stopped before it started)."""
        with self._state_mutex:
            if not isinstance(self._program_state, ProgramStopped):
                Environment.next_state_name.fset(self, next_state_name)  # type: ignore[attr-defined]

    def set_stop(self, stop_date: Any, cause: str | None, error: str | None) -> None:
        stop.stop_flow(self, lambda: super(EngineEnvironment, self).set_stop(stop_date, cause, error))

    def set_error(self, error: Any) -> None:
        stop.end_flow(self, lambda: super(EngineEnvironment, self).set_error(error))

    def set_timed_out(self) -> None:
        stop.end_flow(self, lambda: super(EngineEnvironment, self).set_timed_out())

    def is_mocked_mode(self) -> bool:
        return mock_config.is_mocked_attempt(self)


class _Comm(BaseExecutionWorkerCommunication):
    execution: EngineExecution

    def _reflect_execution_status(self) -> None:
        stop.settle(self.execution)
        self.execution.backend.finished(self.execution)


_programs: dict[str, Any] = {}
_programs_lock = threading.Lock()


class EngineWorker(ExecutionWorker):
    """moto's execution worker with the engine's environment; a fault of the engine fails the execution."""

    def __init__(self, *, execution: EngineExecution, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.execution = execution
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._execution_logic, name=f"execution {self.execution.name}",
                                       daemon=True)
        self.thread.start()

    def _get_evaluation_entrypoint(self) -> Any:
        # The parsed program keeps no per-execution state (that lives in the environment): parse once.
        definition = self._evaluation_details.state_machine_details.definition
        with _programs_lock:
            if definition not in _programs:
                _programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return _programs[definition]

    def _get_evaluation_environment(self) -> EngineEnvironment:
        details = self._evaluation_details
        env = EngineEnvironment(
            aws_execution_details=details.aws_execution_details,
            execution_type=details.state_machine_details.typ,
            context=ContextObjectData(
                Execution=ExecutionData(
                    Id=details.execution_details.arn, Input=details.execution_details.inpt,
                    Name=details.execution_details.name, RoleArn=details.execution_details.role_arn,
                    StartTime=details.execution_details.start_time),
                StateMachine=StateMachineData(Id=details.state_machine_details.arn,
                                              Name=details.state_machine_details.name)),
            event_history_context=EventHistoryContext.of_program_start(),
            cloud_watch_logging_session=self._cloud_watch_logging_session,
            activity_store=self._activity_store,
            mock_test_case=self._mock_test_case,
        )
        env.execution = self.execution
        env.event_manager = self.execution.events
        env.callback_pool_manager = self.execution.callbacks
        return env

    def _execution_logic(self) -> None:
        try:
            super()._execution_logic()
        except Exception as fault:  # noqa: BLE001 - reported: logged and the execution FAILS, never a silent hang
            LOG.exception("engine fault in execution %s", self.execution.exec_arn)
            stop.fail_on_engine_fault(self.execution, fault)
            self.execution.backend.finished(self.execution)


class EngineExecution(Execution):
    """An execution of the engine: it knows its backend, its test case, its events and its task tokens."""

    def __init__(self, *, backend: EngineBackend, home: Any, test_case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.home = home  # the state machine whose executions list holds this one
        self.test_case = test_case
        self.events = histories.EngineEventManager()
        self.callbacks = tokens.EngineCallbackPool(activity_store=self._activity_store, execution=self)

    def _get_start_execution_worker_comm(self) -> BaseExecutionWorkerCommunication:
        return _Comm(self)

    def _get_start_execution_worker(self) -> ExecutionWorker:
        return EngineWorker(
            execution=self,
            evaluation_details=self._evaluation_details(),
            exec_comm=self._get_start_execution_worker_comm(),
            cloud_watch_logging_session=self._cloud_watch_logging_session,
            activity_store=self._activity_store,
            mock_test_case=self.test_case,
        )

    def _evaluation_details(self) -> EvaluationDetails:
        return EvaluationDetails(aws_execution_details=self._get_start_aws_execution_details(),
                                 execution_details=self.get_start_execution_details(),
                                 state_machine_details=self.get_start_state_machine_details())

    def start(self) -> None:
        with _running_lock:
            _running.add(self)
        super().start()


class EngineBackend(StepFunctionsParserBackend):
    """moto's Step Functions backend with executions indexed by ARN and task token, and bounded."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.executions_by_arn: dict[str, EngineExecution] = {}
        self.tokens: dict[str, EngineExecution] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.RLock()

    def start_execution(self, state_machine_arn: str, name: str | None = None,
                        execution_input: str | None = None, trace_header: str | None = None) -> EngineExecution:
        arn, separator, test_case_name = state_machine_arn.partition("#")
        state_machine = self.describe_state_machine(arn)
        test_case = mock_config.load_test_case(state_machine.name, test_case_name, arn=state_machine_arn) \
            if separator else None
        if name:
            self._validate_name(name)
        name = name or str(uuid.uuid4())
        input_data = "{}" if execution_input is None else execution_input
        try:
            json.loads(input_data)
        except ValueError as error:
            raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from None
        execution_arn = (f"arn:{self.partition}:states:{self.region_name}:{self.account_id}:execution:"
                         f"{state_machine.name}:{name}")
        with self._lock:
            existing = self.executions_by_arn.get(execution_arn)
            if existing is not None:
                if existing.execution_input == input_data and existing.exec_status == ExecutionStatus.RUNNING:
                    return existing
                raise ExecutionAlreadyExists(f"Execution Already Exists: '{execution_arn}'")
            # A snapshot of the definition for this execution (moto deep-copied the whole state machine;
            # an update replaces attributes, so a shallow copy keeps the definition it started with).
            snapshot = copy.copy(state_machine)
            snapshot.executions = []
            execution = EngineExecution(
                backend=self, home=state_machine, test_case=test_case, name=name, sm_type=snapshot.sm_type,
                role_arn=snapshot.roleArn, exec_arn=execution_arn, account_id=self.account_id,
                region_name=self.region_name, state_machine=snapshot,
                start_date=datetime.datetime.now(tz=datetime.timezone.utc), cloud_watch_logging_session=None,
                input_data=input_data, trace_header=trace_header, activity_store={})
            state_machine.executions.append(execution)
            self.executions_by_arn[execution_arn] = execution
        execution.start()
        return execution

    def describe_execution(self, execution_arn: str) -> EngineExecution:
        self._validate_execution_arn(execution_arn)
        execution = self.executions_by_arn.get(execution_arn)
        if execution is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        return execution

    def stop_execution(self, execution_arn: str, error: str | None = None,  # type: ignore[override]
                       cause: str | None = None) -> EngineExecution:
        execution = self.describe_execution(execution_arn)
        stop.stop_execution(execution, error=error, cause=cause)
        return execution

    def send_task_success(self, task_token: str, outcome: str) -> None:
        tokens.deliver(self, task_token, tokens.success(task_token, outcome))

    def send_task_failure(self, task_token: str, error: str | None = None,  # type: ignore[override]
                          cause: str | None = None) -> None:
        tokens.deliver(self, task_token, tokens.failure(task_token, error, cause))

    def send_task_heartbeat(self, task_token: str) -> None:
        tokens.deliver(self, task_token, None)

    def finished(self, execution: EngineExecution) -> None:
        """Note that ``execution`` ended; drop the oldest finished ones beyond the bound."""
        with _running_lock:
            _running.discard(execution)
        with self._lock:
            if execution.exec_arn not in self.executions_by_arn:
                return
            self._finished[execution.exec_arn] = None
            limit = _max_finished
            while limit is not None and len(self._finished) > limit:
                oldest, _ = self._finished.popitem(last=False)
                self._forget(self.executions_by_arn.pop(oldest))

    def _forget(self, execution: EngineExecution) -> None:
        for token in execution.callbacks.token_ids():
            self.tokens.pop(token, None)
        execution.home.executions.remove(execution)


def stop_running_executions(*, timeout: float = 10.0) -> None:
    """Abort every execution still running (the engine is being uninstalled) and wait for their threads to end;
    one that has not ended after ``timeout`` seconds is logged."""
    with _running_lock:
        running = list(_running)
    for execution in running:
        stop.stop_execution(execution, error="EngineUninstalled",
                            cause="the embedded engine was uninstalled while this execution ran")
    deadline = time.monotonic() + timeout
    for execution in running:
        thread = execution.exec_worker.thread if execution.exec_worker is not None else None
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                LOG.error("execution %s still runs after the engine was uninstalled", execution.exec_arn)


# --------------------------------------------------------------------------------------


def engine_runtime(p: Patcher) -> None:
    """Every Step Functions backend is an :class:`EngineBackend` (moto's ``BackendDict`` seam), so executions
    are named, found, bounded and evaluated as the module docstring lists.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
    """
    p.replace(parser_models.stepfunctions_parser_backends, "backend", EngineBackend)


def shared_programs(p: Patcher) -> None:
    """A program parsed once serves every execution of its definition; moto keyed per-execution retry
    counters by a lazily drawn id that two executions could draw differently: key them by the component.

    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-retrying-after-an-error
    """
    p.replace(EvalComponent, "heap_key", property(lambda self: f"{type(self).__name__}-{id(self)}"))


class _NoThreads(list):  # type: ignore[type-arg]
    """moto's TMP_THREADS, which kept every thread it ever started: it keeps none (memory only)."""

    def append(self, thread: Any) -> None:
        pass


_NO_THREADS = _NoThreads()


def thread_registry_off(p: Patcher) -> None:
    """A long-running engine keeps no reference to the threads of ended flows (moto listed every thread
    it started, for ever). Memory only; Step Functions keeps no such state.

    https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
    """
    for module in (parser_utils, program_module, execute_state, branch_worker, inline_iteration_component,
                   state_task_service_callback):
        p.replace(module, "TMP_THREADS", _NO_THREADS)


def tasks_without_a_timeout_run_inline(p: Patcher) -> None:
    """A Task or other execution state with no ``TimeoutSeconds`` of its own has nothing to time out, so
    its work runs on its flow's thread (moto started a thread per state, to wait on it with the default
    timeout of 99,999,999 s). What it does is unchanged: the same frame, output and errors; a state with a
    timeout keeps moto's timed evaluation. Performance only.

    https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html
    """
    timed = p.original(execute_state.ExecutionState, "_evaluate_with_timeout")

    def evaluate(self: execute_state.ExecutionState, env: Environment) -> None:
        if not self.timeout.is_default_value():
            timed(self, env)
            return
        frame = env.open_frame()
        frame.states.reset(input_value=env.states.get_input())
        frame.stack = copy.deepcopy(env.stack)
        try:
            self._eval_execution(frame)
            output = frame.stack.pop()
        finally:
            frame.set_ended()
            env.close_frame(frame)
        env.stack.append(output)
        if not self._is_language_query_jsonpath():
            env.states.set_result(output)
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.result_selector:
            self.result_selector.eval(env=env)
        if self.result_path:
            self.result_path.eval(env)
        else:
            env.states.reset(input_value=env.stack.pop())

    p.replace(execute_state.ExecutionState, "_evaluate_with_timeout", evaluate)


def programs_without_a_timeout_run_inline(p: Patcher) -> None:
    """A program with no ``TimeoutSeconds`` (every Parallel branch and Map iteration, and a state machine
    that declares none) runs on the thread that evaluates it: moto started a thread for each and waited
    for it with no timeout, which is the same but for the thread. A state machine's timeout keeps moto's
    timed evaluation. Performance only.

    https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html
    """
    timed = p.original(program_module.Program, "eval")

    def evaluate(self: program_module.Program, env: Environment) -> None:
        if self.timeout_seconds is not None:
            timed(self, env)
            return
        env.next_state_name = self.start_at.start_at_name
        EvalComponent.eval(self, env)

    p.replace(program_module.Program, "eval", evaluate)


def quiet_workflow_errors(p: Patcher) -> None:
    """Workflow errors (a Fail state, a task failure that a Retry or Catch handles) are events of the
    execution's history, not faults of the engine: moto logged each at ERROR level, with the repr of the
    whole parse tree below it (milliseconds per nesting level, on every early exit). Other exceptions, which
    are engine faults, are still logged where they escape a component and where they end a flow.

    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    p.replace(EvalComponent, "_log_failure_event_exception", lambda self, failure_event_exception: None)
