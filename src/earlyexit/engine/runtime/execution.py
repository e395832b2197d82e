"""The engine's execution and its worker: moto's, evaluated in an :class:`EngineEnvironment`, with its own
history and task tokens, and tracked while it runs."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

from moto.stepfunctions.parser.asl.eval.evaluation_details import EvaluationDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.states import ContextObjectData, ExecutionData, StateMachineData
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from earlyexit.engine.runtime.encoding import EngineEventManager
from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.tokens import EngineCallbackPool

__all__ = ["EngineExecution", "EngineWorker", "Home", "running_executions"]

_running: weakref.WeakSet[EngineExecution] = weakref.WeakSet()
_running_lock = threading.Lock()


class Home(Protocol):
    """What an execution needs of its backend: the task token index, and being told when it ends."""

    tokens: dict[str, EngineExecution]

    def finished(self, execution: EngineExecution) -> None: ...


def running_executions() -> list[EngineExecution]:
    """The executions started and not yet ended, in every backend."""
    with _running_lock:
        return list(_running)


class ExecutionEnd(BaseExecutionWorkerCommunication):
    """How a worker reports its execution's end: moto's status reflection, then the backend is told."""

    execution: EngineExecution

    def terminated(self) -> None:
        self._reflect_execution_status()
        self.execution.ended()


class EngineWorker(ExecutionWorker):
    """moto's execution worker, evaluating in the engine's environment on a thread of its own."""

    def __init__(self, *, execution: EngineExecution, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.execution = execution
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._execution_logic, name=f"execution {self.execution.name}",
                                       daemon=True)
        self.thread.start()

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
        env.event_manager = self.execution.events
        env.callback_pool_manager = self.execution.callbacks
        return env


class EngineExecution(Execution):
    """An execution of the engine: it knows its backend, its test case, its events and its task tokens."""

    exec_worker: EngineWorker | None

    def __init__(self, *, backend: Home, home: Any, test_case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.home = home  # the state machine whose executions list holds this one
        self.test_case = test_case
        self.events = EngineEventManager()
        self.callbacks = EngineCallbackPool(activity_store=self._activity_store, on_token=self._index_token)

    def _index_token(self, token: str) -> None:
        self.backend.tokens[token] = self

    @property
    def env(self) -> EngineEnvironment | None:
        """The environment of the execution's program (None until its worker has built it)."""
        return self.exec_worker.env if self.exec_worker is not None else None

    def _get_start_execution_worker_comm(self) -> BaseExecutionWorkerCommunication:
        return ExecutionEnd(self)

    def _get_start_execution_worker(self) -> ExecutionWorker:
        return EngineWorker(
            execution=self,
            evaluation_details=EvaluationDetails(aws_execution_details=self._get_start_aws_execution_details(),
                                                 execution_details=self.get_start_execution_details(),
                                                 state_machine_details=self.get_start_state_machine_details()),
            exec_comm=self._get_start_execution_worker_comm(),
            cloud_watch_logging_session=self._cloud_watch_logging_session,
            activity_store=self._activity_store,
            mock_test_case=self.test_case,
        )

    def start(self) -> None:
        with _running_lock:
            _running.add(self)
        super().start()

    def ended(self) -> None:
        """The execution's program has ended (or failed in the engine): its backend is told."""
        with _running_lock:
            _running.discard(self)
        self.backend.finished(self)
