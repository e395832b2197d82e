"""Task tokens: one lock for every token decision, closing a token, and an execution's pool of tokens.

A closed token (its task attempt ended) refuses any answer with TaskTimedOut, as AWS does
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.stepfunctions.parser.api import TaskDoesNotExist, TaskTimedOut
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackConsumerTimeout,
    CallbackEndpoint,
    CallbackOutcome,
    CallbackOutcomeFailure,
    CallbackOutcomeSuccess,
    CallbackPoolManager,
)

__all__ = ["LOCK", "EngineCallbackPool", "close", "close_all", "closed", "failure", "success", "task_does_not_exist",
           "task_timed_out"]

# One lock for every token decision: an answer, a close and an execution's end never interleave.
LOCK = threading.RLock()


def task_timed_out() -> TaskTimedOut:
    return TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'", exception_type=TaskTimedOut.code)


def task_does_not_exist() -> TaskDoesNotExist:
    return TaskDoesNotExist("Task Does Not Exist", exception_type=TaskDoesNotExist.code)


def success(task_token: str, output: str) -> CallbackOutcome:
    return CallbackOutcomeSuccess(callback_id=task_token, output=output)


def failure(task_token: str, error: str | None, cause: str | None) -> CallbackOutcome:
    return CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)


def closed(endpoint: CallbackEndpoint) -> bool:
    """Whether ``endpoint`` refuses answers (answered once already, or closed)."""
    return endpoint.consumer_error is not None or endpoint.get_outcome() is not None


def close(endpoint: CallbackEndpoint | None) -> None:
    """Refuse any further answer on ``endpoint`` and release whoever waits on it."""
    if endpoint is None:
        return
    with LOCK:
        if endpoint.consumer_error is None:
            endpoint.report(CallbackConsumerTimeout())
    endpoint.interrupt_all()


def close_all(endpoints: Iterable[CallbackEndpoint]) -> None:
    """Close every endpoint of ``endpoints`` (copied under the lock: a flow's set changes as it runs)."""
    with LOCK:
        endpoints = list(endpoints)
    for endpoint in endpoints:
        close(endpoint)


class EngineCallbackPool(CallbackPoolManager):
    """An execution's task tokens; each new one is reported to ``on_token`` (its backend indexes it)."""

    def __init__(self, *, activity_store: dict[str, Any], on_token: Callable[[str], None]) -> None:
        super().__init__(activity_store=activity_store)
        self._on_token = on_token

    def add(self, callback_id: str) -> CallbackEndpoint:
        endpoint = super().add(callback_id)
        self._on_token(callback_id)
        return endpoint

    def add_activity_task(self, callback_id: str, activity_arn: str, activity_input: str) -> Any:
        endpoint = super().add_activity_task(callback_id, activity_arn, activity_input)
        self._on_token(callback_id)
        return endpoint

    def token_ids(self) -> list[str]:
        return list(self._pool)

    def endpoints(self) -> list[CallbackEndpoint]:
        return list(self._pool.values())
