"""The engine's Step Functions backend: moto's, with the engine's executions, indexed and bounded.

moto creates each account's and region's Step Functions backend from the class registered in
its ``BackendDict``; :func:`executions_run_in_the_engine` registers :class:`EngineBackend`
there, the seam every fix of an execution relies on. Executions are found by ARN and task
tokens by token in one step (moto scanned every execution), and a long-running engine keeps
at most :func:`max_finished_executions` finished executions, the oldest dropped first (None,
the default, keeps all, as moto; AWS keeps closed executions 90 days:
https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.exceptions import ExecutionDoesNotExist, InvalidExecutionInput
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from earlyexit.engine.runtime import stopping
from earlyexit.engine.runtime.execution import EngineExecution, running_executions
from earlyexit.engine.runtime.mock_config import load_test_case

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["EngineBackend", "executions_run_in_the_engine", "max_finished_executions", "set_max_finished_executions",
           "stop_running_executions"]

LOG = logging.getLogger("earlyexit.engine")

_max_finished: int | None = None  # unbounded, as moto, until set


def set_max_finished_executions(limit: int | None) -> None:
    """Keep at most ``limit`` finished executions per account and region (None: keep all); the oldest go first."""
    global _max_finished
    if limit is not None and limit < 0:
        raise ValueError(f"max_finished_executions must be >= 0 or None, got {limit!r}")
    _max_finished = limit


def max_finished_executions() -> int | None:
    """The current bound on finished executions kept (None: unbounded)."""
    return _max_finished


class EngineBackend(StepFunctionsParserBackend):
    """moto's Step Functions backend with executions indexed by ARN and task token, and bounded."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.executions_by_arn: dict[str, EngineExecution] = {}
        self.tokens: dict[str, EngineExecution] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.RLock()

    def execution_arn(self, state_machine: Any, name: str) -> str:
        """The ARN of execution ``name`` of ``state_machine``."""
        return (f"arn:{self.partition}:states:{self.region_name}:{self.account_id}:execution:"
                f"{state_machine.name}:{name}")

    def admit(self, state_machine: Any, name: str | None, input_data: str) -> tuple[str, EngineExecution | None]:
        """StartExecution's checks, as moto makes them: the name to use, and the running execution that the
        same name and input start again (None: a new one)."""
        existing = state_machine._handle_name_input_idempotency(name, input_data)
        if existing is None:
            try:
                json.loads(input_data)
            except ValueError as error:
                raise InvalidExecutionInput(str(error)) from None
        return str(name), existing

    def start_execution(self, state_machine_arn: str, name: str | None = None,
                        execution_input: str | None = None, trace_header: str | None = None) -> EngineExecution:
        arn, separator, test_case_name = state_machine_arn.partition("#")
        state_machine = self.describe_state_machine(arn)
        test_case = load_test_case(state_machine.name, test_case_name, arn=state_machine_arn) if separator else None
        input_data = "{}" if execution_input is None else execution_input
        with self._lock:
            name, existing = self.admit(state_machine, name, input_data)
            if existing is not None:
                return existing
            # A snapshot of the definition for this execution (moto deep-copied the whole state machine;
            # an update replaces attributes, so a shallow copy keeps the definition it started with).
            snapshot = copy.copy(state_machine)
            snapshot.executions = []
            execution = EngineExecution(
                backend=self, home=state_machine, test_case=test_case, name=name, sm_type=snapshot.sm_type,
                role_arn=snapshot.roleArn, exec_arn=self.execution_arn(state_machine, name),
                account_id=self.account_id, region_name=self.region_name, state_machine=snapshot,
                start_date=datetime.datetime.now(tz=datetime.timezone.utc), cloud_watch_logging_session=None,
                input_data=input_data, trace_header=trace_header, activity_store={})
            state_machine.executions.append(execution)
            self.executions_by_arn[execution.exec_arn] = execution
        execution.start()
        return execution

    def describe_execution(self, execution_arn: str) -> EngineExecution:
        self._validate_execution_arn(execution_arn)
        execution = self.executions_by_arn.get(execution_arn)
        if execution is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        return execution

    def finished(self, execution: EngineExecution) -> None:
        """Note that ``execution`` ended; drop the oldest finished ones beyond the bound."""
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
    running = running_executions()
    for execution in running:
        stopping.stop_execution(execution, error="EngineUninstalled",
                                cause="the embedded engine was uninstalled while this execution ran")
    deadline = time.monotonic() + timeout
    for execution in running:
        thread = execution.exec_worker.thread if execution.exec_worker is not None else None
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                LOG.error("execution %s still runs after the engine was uninstalled", execution.exec_arn)


def executions_run_in_the_engine(p: Patcher) -> None:
    """Every Step Functions backend is an :class:`EngineBackend` (moto's ``BackendDict`` seam): executions are
    :class:`~earlyexit.engine.runtime.execution.EngineExecution`, which the fixes of executions change."""
    p.replace(parser_models.stepfunctions_parser_backends, "backend", EngineBackend)
