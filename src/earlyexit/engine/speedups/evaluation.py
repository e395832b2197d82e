"""The interpreter's evaluation: definitions parsed once, flows without a timeout on their own thread, no thread
registry, workflow errors not logged as engine faults."""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.parser import utils as parser_utils
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program import program as program_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from earlyexit.engine.runtime.execution import EngineWorker

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["programs_parsed_once", "programs_without_a_timeout_run_inline", "quiet_workflow_errors",
           "tasks_without_a_timeout_run_inline", "thread_registry_off"]


def programs_parsed_once(p: Patcher) -> None:
    """Each definition is parsed once and its program serves every execution of it (the parsed program keeps
    no per-execution state: that lives in the environment); moto parsed the definition for every execution.
    moto keyed per-execution retry counters by a lazily drawn id that two executions of one program could
    draw differently: they are keyed by the component. Performance only.

    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-retrying-after-an-error
    """
    programs: dict[str, Any] = {}
    lock = threading.Lock()
    p.original(EngineWorker, "_get_evaluation_entrypoint")

    def get_evaluation_entrypoint(self: EngineWorker) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            if definition not in programs:
                programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return programs[definition]

    p.replace(EngineWorker, "_get_evaluation_entrypoint", get_evaluation_entrypoint)
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


def _evaluate_inline(self: execute_state.ExecutionState, env: Environment) -> None:
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


def tasks_without_a_timeout_run_inline(p: Patcher) -> None:
    """A Task or other execution state with no ``TimeoutSeconds`` of its own has nothing to time out, so
    its work runs on its flow's thread (moto started a thread per state, to wait on it with the default
    timeout of 99,999,999 s). What it does is unchanged: the same frame, output and errors; a state with a
    timeout keeps moto's timed evaluation. Performance only.

    https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html
    """
    timed = p.original(execute_state.ExecutionState, "_evaluate_with_timeout")

    def evaluate(self: execute_state.ExecutionState, env: Environment) -> None:
        if self.timeout.is_default_value():
            _evaluate_inline(self, env)
        else:
            timed(self, env)

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
