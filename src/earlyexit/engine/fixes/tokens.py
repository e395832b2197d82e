"""Task tokens, as AWS treats them: one per task attempt, good for one answer while that attempt waits.

On AWS a task token is good for one answer while its task attempt waits for it
(https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token).
An answer to a token whose attempt already has one, was stopped (a sibling branch ended the
Parallel, StopExecution), failed (its request failed after it went out, and Retry asked
again with a new token), or whose execution has ended, gets ``TaskTimedOut``; a token Step
Functions never issued gets ``InvalidToken`` ("Invalid Token: 'Invalid token'", the message moto's
AWS-verified tests expect)
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.parser.api import ExecutionStatus, InvalidToken
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackOutcome

from earlyexit.engine.runtime import tokens
from earlyexit.engine.runtime.backend import EngineBackend
from earlyexit.engine.runtime.environment import EngineEnvironment
from earlyexit.engine.runtime.services import reported_error_name

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["answers_to_ended_tasks_time_out", "callback_errors_keep_their_name", "tokens_end_with_their_task_attempt"]


def _owned_while(env: EngineEnvironment, endpoint: CallbackEndpoint, run: Callable[[], Any]) -> Any:
    """``run()`` with ``endpoint`` owned by the flow (stopping it closes the token); closed when ``run`` ends."""
    with tokens.LOCK:
        env.owned_endpoints.add(endpoint)
    if not env.is_running():
        tokens.close(endpoint)
    try:
        return run()
    finally:
        tokens.close(endpoint)
        with tokens.LOCK:
            env.owned_endpoints.discard(endpoint)


def _waits_for_token(task: StateTaskServiceCallback) -> bool:
    return task._is_integration_pattern() and ResourceCondition.WaitForTaskToken in \
        task._supported_integration_patterns


def tokens_end_with_their_task_attempt(p: Patcher) -> None:
    """Each attempt of a ``.waitForTaskToken`` task (the first and every Retry) gets a new token, live only
    while that attempt waits for it: once the attempt ends (answered, failed after its request went out,
    timed out, stopped by the early exit or StopExecution) any answer gets TaskTimedOut, and a stopped
    flow's waiting thread is released at once. moto drew one token per state, shared by its retries.

    Tests: tests/test_engine.py::test_second_answer_on_one_token_is_refused_and_the_first_counts,
    tests/test_engine.py::test_token_of_a_flow_stopped_by_the_early_exit_is_refused_while_the_execution_runs
    https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token
    """
    original_wait = p.original(StateTaskServiceCallback, "_eval_wait_for_task_token")
    original_execution = p.original(StateTaskServiceCallback, "_eval_execution")
    p.original(StateTaskServiceCallback, "_eval_body")

    def eval_wait_for_task_token(self: StateTaskServiceCallback, env: EngineEnvironment, timeout_seconds: int,
                                 callback_endpoint: CallbackEndpoint, heartbeat_endpoint: Any) -> CallbackOutcome:
        return _owned_while(env, callback_endpoint, lambda: original_wait(
            self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint))

    def eval_body(self: StateTaskServiceCallback, env: EngineEnvironment) -> None:
        # moto's, without its one token for the whole state: each attempt draws its own (below).
        if _waits_for_token(self):
            self._assert_integration_pattern_is_supported()
        StateTaskService._eval_body(self, env)
        env.states.context_object.context_object_data.pop("Task", None)

    def eval_execution(self: StateTaskServiceCallback, env: EngineEnvironment) -> None:
        # One attempt: its token, closed when the attempt ends, however it ends.
        if not _waits_for_token(self):
            original_execution(self, env)
            return
        endpoint = env.callback_pool_manager.add(env.states.context_object.update_task_token())
        _owned_while(env, endpoint, lambda: original_execution(self, env))

    p.replace(StateTaskServiceCallback, "_eval_wait_for_task_token", eval_wait_for_task_token)
    p.replace(StateTaskServiceCallback, "_eval_body", eval_body)
    p.replace(StateTaskServiceCallback, "_eval_execution", eval_execution)


def _deliver(backend: EngineBackend, task_token: str, outcome: CallbackOutcome | None) -> None:
    """SendTaskSuccess / SendTaskFailure (``outcome``) or SendTaskHeartbeat (None) on ``task_token``."""
    execution = backend.tokens.get(task_token)
    if execution is None:
        raise InvalidToken()
    with tokens.LOCK:
        endpoint = execution.callbacks.get(task_token)
        if endpoint is None or execution.exec_status != ExecutionStatus.RUNNING or tokens.closed(endpoint):
            raise tokens.task_timed_out()
        if outcome is not None:
            endpoint.notify(outcome)
        elif not endpoint.notify_heartbeat():
            raise tokens.task_does_not_exist()


def answers_to_ended_tasks_time_out(p: Patcher) -> None:
    """SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat on a token whose task attempt has ended (answered
    already, stopped, failed, or its execution ended) get TaskTimedOut, and on a token never issued
    InvalidToken; the token is found in one step. moto refused late tokens with InvalidToken, accepted a
    token twice and scanned every execution for it.

    Tests: tests/test_engine.py::test_late_token_after_the_execution_ended_is_refused_with_task_timed_out,
    tests/test_engine.py::test_unknown_token_is_refused_with_invalid_token
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html
    """
    def send_task_success(self: EngineBackend, task_token: str, outcome: str) -> None:
        _deliver(self, task_token, tokens.success(task_token, outcome))

    def send_task_failure(self: EngineBackend, task_token: str, error: str | None = None,
                          cause: str | None = None) -> None:
        _deliver(self, task_token, tokens.failure(task_token, error, cause))

    def send_task_heartbeat(self: EngineBackend, task_token: str) -> None:
        _deliver(self, task_token, None)

    p.replace(EngineBackend, "send_task_success", send_task_success)
    p.replace(EngineBackend, "send_task_failure", send_task_failure)
    p.replace(EngineBackend, "send_task_heartbeat", send_task_heartbeat)


def callback_errors_keep_their_name(p: Patcher) -> None:
    """SendTaskFailure may name any error, ``States.*`` ones included (``States.Timeout`` from an
    approver's own deadline, say), and a Catch sees it unchanged; moto turned every ``States.`` name
    into States.Runtime.

    Test: tests/test_engine.py::test_send_task_failure_naming_a_states_error_reaches_the_catch_of_that_name
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html
    """
    p.replace(state_task_service_callback, "CustomErrorName", reported_error_name)
