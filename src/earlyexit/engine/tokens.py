"""Task tokens and callbacks, as AWS treats them.

On AWS a task token is good for one answer while its task attempt waits for it
(https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token).
An answer to a token whose attempt already has one, was stopped (a sibling branch ended the
Parallel, StopExecution), failed (its request failed after it went out, and Retry asked
again with a new token), or whose execution has ended, gets ``TaskTimedOut``; a token Step
Functions never issued gets ``InvalidToken`` ("Invalid Token: 'Invalid token'", the message moto's
AWS-verified tests expect)
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html).
moto kept stopped tasks waiting (threads blocked for years) and accepted their tokens,
accepted a token twice, accepted a failed attempt's token silently, refused late tokens with
InvalidToken and found a token by scanning every execution.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.parser.api import ExecutionStatus, InvalidToken, TaskDoesNotExist, TaskTimedOut
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackConsumerTimeout,
    CallbackEndpoint,
    CallbackOutcome,
    CallbackOutcomeFailure,
    CallbackOutcomeSuccess,
    CallbackPoolManager,
)

from earlyexit.engine.services import reported_error_name

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher
    from earlyexit.engine.runtime import EngineBackend, EngineEnvironment, EngineExecution

__all__ = ["EngineCallbackPool", "callback_errors_keep_their_name", "close", "close_owned", "deliver", "failure",
           "success", "task_timed_out", "tokens_end_with_their_task_attempt"]

# One lock for every token decision: an answer, a close and an execution's end never interleave.
LOCK = threading.RLock()


def task_timed_out() -> TaskTimedOut:
    return TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'", exception_type=TaskTimedOut.code)


def _task_does_not_exist() -> TaskDoesNotExist:
    return TaskDoesNotExist("Task Does Not Exist", exception_type=TaskDoesNotExist.code)


def success(task_token: str, output: str) -> CallbackOutcome:
    return CallbackOutcomeSuccess(callback_id=task_token, output=output)


def failure(task_token: str, error: str | None, cause: str | None) -> CallbackOutcome:
    return CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)


def _closed(endpoint: CallbackEndpoint) -> bool:
    return endpoint.consumer_error is not None or endpoint.get_outcome() is not None


def close(endpoint: CallbackEndpoint | None) -> None:
    """Refuse any further answer on ``endpoint`` and release whoever waits on it."""
    if endpoint is None:
        return
    with LOCK:
        if endpoint.consumer_error is None:
            endpoint.report(CallbackConsumerTimeout())
    endpoint.interrupt_all()


def close_owned(env: EngineEnvironment) -> None:
    """Close every token a flow waits on (the flow has stopped or ended)."""
    with LOCK:
        endpoints = list(env.owned_endpoints)
    for endpoint in endpoints:
        close(endpoint)


class EngineCallbackPool(CallbackPoolManager):
    """An execution's task tokens, each also indexed by its backend (one lookup per answer)."""

    def __init__(self, *, activity_store: dict[str, Any], execution: EngineExecution) -> None:
        super().__init__(activity_store=activity_store)
        self._execution = execution

    def add(self, callback_id: str) -> CallbackEndpoint:
        endpoint = super().add(callback_id)
        self._execution.backend.tokens[callback_id] = self._execution
        return endpoint

    def add_activity_task(self, callback_id: str, activity_arn: str, activity_input: str) -> Any:
        endpoint = super().add_activity_task(callback_id, activity_arn, activity_input)
        self._execution.backend.tokens[callback_id] = self._execution
        return endpoint

    def token_ids(self) -> list[str]:
        return list(self._pool)

    def endpoints(self) -> list[CallbackEndpoint]:
        return list(self._pool.values())

    def notify(self, callback_id: str, outcome: CallbackOutcome) -> bool:
        with LOCK:
            endpoint = self._pool.get(callback_id)
            if endpoint is None:
                return False
            if _closed(endpoint):
                raise task_timed_out()
            endpoint.notify(outcome)
            return True


def deliver(backend: EngineBackend, task_token: str, outcome: CallbackOutcome | None) -> None:
    """SendTaskSuccess / SendTaskFailure (``outcome``) or SendTaskHeartbeat (None) on ``task_token``."""
    execution = backend.tokens.get(task_token)
    if execution is None:
        raise InvalidToken()
    with LOCK:
        endpoint = execution.callbacks.get(task_token)
        if endpoint is None or execution.exec_status != ExecutionStatus.RUNNING or _closed(endpoint):
            raise task_timed_out()
        if outcome is not None:
            endpoint.notify(outcome)
        elif not endpoint.notify_heartbeat():
            raise _task_does_not_exist()


# --------------------------------------------------------------------------------------


def tokens_end_with_their_task_attempt(p: Patcher) -> None:
    """Each attempt of a ``.waitForTaskToken`` task (the first and every Retry) gets a new token, live only
    while that attempt waits for it: once the attempt ends (answered, failed after its request went out,
    timed out, stopped by the early exit or StopExecution) any answer gets TaskTimedOut, and a stopped
    flow's waiting thread is released at once. moto drew one token per state, shared by its retries.

    https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token
    """
    original_wait = p.original(StateTaskServiceCallback, "_eval_wait_for_task_token")
    original_execution = p.original(StateTaskServiceCallback, "_eval_execution")

    def eval_wait_for_task_token(self: StateTaskServiceCallback, env: EngineEnvironment, timeout_seconds: int,
                                 callback_endpoint: CallbackEndpoint, heartbeat_endpoint: Any) -> CallbackOutcome:
        with LOCK:
            env.owned_endpoints.add(callback_endpoint)
        if not env.is_running():
            close(callback_endpoint)
        try:
            return original_wait(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        finally:
            close(callback_endpoint)
            with LOCK:
                env.owned_endpoints.discard(callback_endpoint)

    def waits_for_token(task: StateTaskServiceCallback) -> bool:
        return task._is_integration_pattern() and ResourceCondition.WaitForTaskToken in \
            task._supported_integration_patterns

    def eval_body(self: StateTaskServiceCallback, env: EngineEnvironment) -> None:
        # moto's, without its one token for the whole state: each attempt draws its own (below).
        if waits_for_token(self):
            self._assert_integration_pattern_is_supported()
        StateTaskService._eval_body(self, env)
        env.states.context_object.context_object_data.pop("Task", None)

    def eval_execution(self: StateTaskServiceCallback, env: EngineEnvironment) -> None:
        # One attempt, in its own frame: its token, closed when the attempt ends, however it ends.
        if not waits_for_token(self):
            original_execution(self, env)
            return
        token = env.states.context_object.update_task_token()
        endpoint = env.callback_pool_manager.add(token)
        with LOCK:  # from now on, stopping this flow closes the token, even before the request is sent
            env.owned_endpoints.add(endpoint)
        if not env.is_running():
            close(endpoint)
        try:
            original_execution(self, env)
        finally:
            close(endpoint)
            with LOCK:
                env.owned_endpoints.discard(endpoint)

    p.replace(StateTaskServiceCallback, "_eval_wait_for_task_token", eval_wait_for_task_token)
    p.replace(StateTaskServiceCallback, "_eval_body", eval_body)
    p.replace(StateTaskServiceCallback, "_eval_execution", eval_execution)


def callback_errors_keep_their_name(p: Patcher) -> None:
    """SendTaskFailure may name any error, ``States.*`` ones included (``States.Timeout`` from an
    approver's own deadline, say), and a Catch sees it unchanged; moto turned every ``States.`` name
    into States.Runtime.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html
    """
    p.replace(state_task_service_callback, "CustomErrorName", reported_error_name)
