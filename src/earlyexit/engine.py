"""Fixes that make moto's Step Functions interpreter behave as AWS Step Functions does.

moto (pinned exactly in pyproject.toml) ports LocalStack's ASL interpreter. On the points
these patterns rely on it deviates from AWS; each fix below names the AWS behaviour it
restores, and ``tests/test_engine.py`` shows that behaviour on the engine, so a moto
upgrade that changes these internals fails loudly instead of silently.

Call :func:`install` once per process before the interpreter runs (``embedded_cloud`` and
``earlyexit serve`` do).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from jsonata import Jsonata
from jsonata.jexception import JException
from jsonata.utils import Utils
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.exceptions import InvalidExecutionInput, InvalidToken
from moto.stepfunctions.parser.api import (
    EvaluationFailedEventDetails,
    ExecutionStatus,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackConsumerTimeout,
    CallbackEndpoint,
    CallbackOutcome,
    CallbackOutcomeFailure,
    CallbackOutcomeSuccess,
    CallbackPoolManager,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import (
    ProgramEnded,
    ProgramError,
    ProgramStopped,
    ProgramTimedOut,
)
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.jsonata.jsonata import (
    extract_jsonata_variable_references,
)
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit import mock_config

__all__ = ["install", "set_wait_time_scale", "wait_time_scale", "evaluate_jsonata"]

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Apply every fix to moto's interpreter (idempotent, process-wide)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        # The interpreter logs every caught error (a Fail state, a rejected callback) at
        # ERROR level with its whole parse tree; those are workflow events, not faults.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        _install_jsonata()
        _install_dynamodb_serialisation()
        _install_execution_names()
        _install_callback_tokens()
        _install_stop_execution()
        _install_status_after_output()
        _install_wait_time_scale()
        _install_client_cache()
        _install_program_cache()
        _install_states_errors_from_branches()
        _install_branch_start_after_stop()
        _install_eventbridge_errors()
        _install_dynamodb_task_errors()
        mock_config.install()
        _installed = True


# --------------------------------------------------------------------------------------
# States.* errors. On AWS a branch that fails with a States.* error (States.Timeout,
# States.QueryEvaluationError, ...) fails the Parallel with that error, and SendTaskFailure
# may name one; moto refused any "States." name there and reported States.Runtime instead,
# which a Catch for the real error misses.


class _ReportedErrorName(ErrorName):
    """An error name reported by a branch or a callback, kept as it is."""


def _reported_error_name(error_name: str | None) -> ErrorName:
    if error_name is not None and error_name.startswith("States."):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            return _ReportedErrorName(error_name)
    return CustomErrorName(error_name=error_name)


def _install_states_errors_from_branches() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )

    branches_decl.CustomErrorName = _reported_error_name  # type: ignore[assignment,misc]
    state_task_service_callback.CustomErrorName = _reported_error_name  # type: ignore[assignment,misc]


# --------------------------------------------------------------------------------------
# A branch stopped before its thread started (the Parallel already ended, StopExecution)
# never runs on AWS; moto's thread died with "Could not set NextState" instead.


def _install_branch_start_after_stop() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import BranchWorker

    original = BranchWorker._thread_routine

    def thread_routine(self: BranchWorker) -> None:
        try:
            original(self)
        except RuntimeError:
            if self.env.is_running():
                raise

    BranchWorker._thread_routine = thread_routine  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------
# EventBridge errors. On AWS a PutEvents call that fails names its error after the
# service, as the DynamoDB integration does ("EventBridge.ResourceNotFoundException");
# moto reported every such failure as States.Runtime, so a Retry or Catch on it missed.


def _install_eventbridge_errors() -> None:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events import (
        StateTaskServiceEvents,
    )

    original = StateTaskServiceEvents._from_error

    def from_error(self: StateTaskServiceEvents, env: Environment, ex: Exception) -> FailureEvent:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        error = f"EventBridge.{ex.response['Error']['Code']}"
        return FailureEvent(
            env=env, error_name=CustomErrorName(error), event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=ex.response["Error"].get("Message", str(ex)),
                resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type())))

    StateTaskServiceEvents._from_error = from_error  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------
# DynamoDB task errors. On AWS a state's own failure (a JSONata error in its Arguments,
# a mocked Throw) keeps its name; moto's DynamoDB integration renamed every failure that
# is not a service error DynamoDB.AmazonDynamoDBException, which the tally's Retry retries.


def _install_dynamodb_task_errors() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
        StateTaskServiceDynamoDB,
    )

    original = StateTaskServiceDynamoDB._from_error

    def from_error(self: StateTaskServiceDynamoDB, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, FailureEventException):
            return ex.failure_event
        return original(self, env, ex)

    StateTaskServiceDynamoDB._from_error = from_error  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------
# Service clients. moto's interpreter builds a new boto3 client for every service call
# (tens of milliseconds, more under load); boto3 clients are thread-safe, so reuse them.
# Performance only: what the calls do is unchanged.


def _install_client_cache() -> None:
    import sys

    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (  # noqa: F401 - imports every integration
        state_task_service_factory,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    cache: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto passes the state's credentials but signs every call with fixed dummy keys.
        key = (region, service, None if botocore_stubber.enabled else moto_server_port())
        with lock:
            if key not in cache:
                cache[key] = original(region=region, service=service)
            return cache[key]

    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Parsed definitions. moto parses the ASL (ANTLR, slow) again for every execution; the
# parsed program keeps no per-execution state (that lives in the environment), so each
# definition is parsed once. Its retry counters were keyed by a lazily drawn UUID, which
# two executions sharing a program could draw differently: key them by identity instead.
# Performance only.


def _install_program_cache() -> None:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def evaluation_entrypoint(self: ExecutionWorker) -> Any:
        definition = self._evaluation_details.state_machine_details.definition  # noqa: SLF001
        with lock:
            if definition not in programs:
                programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return programs[definition]

    ExecutionWorker._get_evaluation_entrypoint = evaluation_entrypoint  # type: ignore[method-assign]
    EvalComponent.heap_key = property(lambda self: f"{type(self).__name__}-{id(self)}")  # type: ignore[assignment]


# --------------------------------------------------------------------------------------
# Wait-time scale (as Step Functions Local's): Wait states and Retry intervals last
# `scale` times their declared duration. 1.0, the default, is AWS's timing.

_wait_scale = 1.0


def set_wait_time_scale(scale: float) -> None:
    """Scale every Wait state and Retry interval by ``scale`` (1.0 is AWS's timing)."""
    global _wait_scale
    if not scale > 0:
        raise ValueError(f"wait_time_scale must be > 0, got {scale!r}")
    _wait_scale = float(scale)


def wait_time_scale() -> float:
    return _wait_scale


def _install_wait_time_scale() -> None:
    def _wait_interval(self: WaitFunction, env: Environment, wait_seconds: float) -> None:
        # moto re-waits on whole seconds only; waits here are fractional once scaled.
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * _wait_scale
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    class _ScaledClock:
        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(seconds * _wait_scale)

    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    retrier_decl.time = _ScaledClock  # type: ignore[assignment]


# --------------------------------------------------------------------------------------
# JSONata. moto's evaluator is a stub (it expects a JVM bridge that is not shipped).
# AWS evaluates JSONata 2.x with $states and the workflow variables bound; here the
# pure-Python jsonata-python evaluates each expression with those values *bound*, not
# spliced into the expression text, so strings need no escaping and cost stays flat.

_compiled: dict[str, Jsonata] = {}
_compiled_lock = threading.Lock()


def _hash(value: str, algorithm: str = "SHA-256") -> str:
    names = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    return hashlib.new(names[algorithm], value.encode()).hexdigest()


_AWS_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "uuid": lambda: str(uuid.uuid4()),
    "parse": json.loads,
    "hash": _hash,
}


def _compile(expression: str) -> Jsonata:
    with _compiled_lock:
        compiled = _compiled.get(expression)
        if compiled is None:
            compiled = Jsonata(expression)
            _compiled[expression] = compiled
        return compiled


class _Undefined(Exception):
    """The expression returned nothing."""


def evaluate_jsonata(expression: str, bindings: dict[str, Any] | None = None) -> Any:
    """Evaluate ``expression`` with ``bindings`` (names without ``$``) as AWS does.

    Raises ``_Undefined`` when the result is undefined and ``JException`` on errors.
    """
    instance = copy.copy(_compile(expression))
    instance.output_convert_nulls = False
    # $now() and $millis() read the thread's current instance.
    Jsonata.CURRENT.jsonata = instance
    values: dict[str, Any] = {name: Jsonata.JLambda(fn) for name, fn in _AWS_FUNCTIONS.items()}
    values.update(bindings or {})
    result = instance.evaluate(None, values)
    if result is None:
        raise _Undefined(expression)
    return _plain(Utils.convert_nulls(result))


def _plain(value: Any) -> Any:
    """jsonata-python's sequences and numbers as plain JSON values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"unsupported JSONata result type {type(value).__name__}")


def _query_evaluation_error(env: Environment, cause: str) -> FailureEventException:
    error_name = StatesErrorName(typ=StatesErrorNameType.StatesQueryEvaluationError)
    details = EventDetails(
        evaluationFailedEventDetails=EvaluationFailedEventDetails(
            error=error_name.error_name, cause=cause, state=env.next_state_name or ""
        )
    )
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.EvaluationFailed,
        event_details=details,
    )
    return FailureEventException(
        FailureEvent(env=env, error_name=error_name, event_type=HistoryEventType.EvaluationFailed, event_details=details)
    )


def _states_bindings(env: Environment, references: set[str]) -> dict[str, Any]:
    data = env.states._states_data  # noqa: SLF001 - the interpreter keeps $states here
    if "$states" in references:
        wanted = dict(data)
    else:
        wanted = {key: data.get(key) for key in ("input", "context", "result", "errorOutput")
                  if any(ref.startswith(f"$states.{key}") for ref in references)}
    # A JSON round trip: the context holds datetimes, AWS exposes ISO-8601 strings.
    return json.loads(to_json_str(wanted))


def _variable_bindings(env: Environment) -> dict[str, Any]:
    store = env.variable_store
    return copy.deepcopy({**store._outer_scope, **store._inner_scope})  # noqa: SLF001


def _evaluate_in_env(env: Environment, expression: str, with_states: bool) -> Any:
    references = extract_jsonata_variable_references(expression)
    bindings = _variable_bindings(env)
    if with_states:
        bindings["states"] = _states_bindings(env, references)
    try:
        return evaluate_jsonata(expression, bindings)
    except _Undefined:
        raise _query_evaluation_error(env, f"The JSONata expression '{expression}' returned nothing (undefined).")
    except TypeError:
        raise _query_evaluation_error(env, f"The JSONata expression '{expression}' returned an unsupported result type.")
    except JException as error:
        raise _query_evaluation_error(env, f"An error occurred while evaluating the JSONata expression '{expression}': {error}")


def _install_jsonata() -> None:
    def jsonata_eval_body(self: string_expression.StringJSONata, env: Environment) -> None:
        env.stack.append(_evaluate_in_env(env, self.expression, with_states=True))

    def variable_eval_body(self: string_expression.StringVariableSample, env: Environment) -> None:
        with_states = self.query_language_mode == string_expression.QueryLanguageMode.JSONata
        env.stack.append(_evaluate_in_env(env, self.expression, with_states=with_states))

    def eval_text(expression: str) -> Any:
        try:
            return evaluate_jsonata(expression)
        except _Undefined:
            return None

    string_expression.StringJSONata._eval_body = jsonata_eval_body  # type: ignore[method-assign]
    string_expression.StringVariableSample._eval_body = variable_eval_body  # type: ignore[method-assign]
    moto_jsonata._eval_jsonata = eval_text


# --------------------------------------------------------------------------------------
# DynamoDB. AWS applies each item write atomically; moto's backend is not thread-safe
# (parallel branches updating one item lose ADDs). Serialise the item-level handlers.

_DYNAMODB_ITEM_ACTIONS = (
    "put_item", "get_item", "update_item", "delete_item", "batch_write_item",
    "batch_get_item", "query", "scan", "transact_get_items", "transact_write_items",
)
_dynamodb_lock = threading.RLock()


def _install_dynamodb_serialisation() -> None:
    for action in _DYNAMODB_ITEM_ACTIONS:
        original = getattr(DynamoHandler, action)

        def serialised(self: DynamoHandler, _original: Callable[..., Any] = original) -> Any:
            with _dynamodb_lock:
                return _original(self)

        setattr(DynamoHandler, action, serialised)


# --------------------------------------------------------------------------------------
# StartExecution without a name: AWS generates a UUID; moto named every such execution
# "None", so the second one failed with ExecutionAlreadyExists.


def _install_execution_names() -> None:
    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: StepFunctionsParserBackend, state_machine_arn: str, name: str | None = None,
                        execution_input: str | None = None, trace_header: str | None = None) -> Execution:
        if execution_input is not None:
            try:
                json.loads(execution_input)
            except ValueError as error:  # moto answered with an empty error code
                raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from None
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------
# Task tokens. On AWS a token is good for one answer while its task waits: an answer to
# a task that already has one, that was stopped (a sibling branch ended the Parallel,
# StopExecution) or whose execution has ended gets TaskTimedOut, and a stopped task
# records nothing more. moto kept the stopped task waiting (threads blocked ~3 years),
# accepted its token and recorded it; answered tokens twice; refused late tokens with
# InvalidToken; and crashed (AttributeError) when another execution was starting.

_token_lock = threading.RLock()


def _task_timed_out() -> AWSError:
    return AWSError("Task Timed Out: 'Provided task does not exist anymore'", exception_type="TaskTimedOut")


def _close(endpoint: CallbackEndpoint) -> None:
    """Refuse any further answer on ``endpoint`` and release whoever waits on it."""
    with _token_lock:
        if endpoint.consumer_error is None:
            endpoint.report(CallbackConsumerTimeout())
    endpoint.interrupt_all()


def _owned_endpoints(env: Environment) -> set[CallbackEndpoint]:
    endpoints = env.__dict__.get("_earlyexit_endpoints")
    if endpoints is None:
        endpoints = env.__dict__.setdefault("_earlyexit_endpoints", set())
    return endpoints


class _StoppedEvents:
    """The event log of a stopped execution or branch: AWS records nothing more from it
    (a stopped execution only its ExecutionAborted event)."""

    def __init__(self, log: Any, keep: frozenset[HistoryEventType]) -> None:
        self._log = log
        self._keep = keep

    def add_event(self, *args: Any, **kwargs: Any) -> int:
        event_type = kwargs.get("event_type", args[1] if len(args) > 1 else None)
        return self._log.add_event(*args, **kwargs) if event_type in self._keep else 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def _on_frame_terminated(env: Environment) -> None:
    with _token_lock:
        endpoints = list(_owned_endpoints(env))
    for endpoint in endpoints:
        _close(endpoint)


def _install_callback_tokens() -> None:
    original_wait = StateTaskServiceCallback._eval_wait_for_task_token

    def eval_wait_for_task_token(self: StateTaskServiceCallback, env: Environment, timeout_seconds: int,
                                 callback_endpoint: CallbackEndpoint, heartbeat_endpoint: Any) -> CallbackOutcome:
        with _token_lock:
            _owned_endpoints(env).add(callback_endpoint)
        if not env.is_running():
            _close(callback_endpoint)
        try:
            return original_wait(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        finally:
            _close(callback_endpoint)
            with _token_lock:
                _owned_endpoints(env).discard(callback_endpoint)

    def notify(self: CallbackPoolManager, callback_id: str, outcome: CallbackOutcome) -> bool:
        with _token_lock:
            endpoint = self._pool.get(callback_id)  # noqa: SLF001
            if endpoint is None:
                return False
            if endpoint.consumer_error is not None or endpoint.get_outcome() is not None:
                raise _task_timed_out()
            endpoint.notify(outcome)
            return True

    for terminal in ("set_stop", "set_error", "set_timed_out"):
        original = getattr(Environment, terminal)

        def terminate(self: Environment, *args: Any, _original: Callable[..., Any] = original,
                      _stopping: bool = terminal == "set_stop", **kwargs: Any) -> None:
            if isinstance(self._program_state, ProgramStopped):  # noqa: SLF001 - stopped is final
                return
            _original(self, *args, **kwargs)
            if _stopping and isinstance(self._program_state, ProgramStopped):  # noqa: SLF001
                keep = frozenset() if self.is_frame() else frozenset({HistoryEventType.ExecutionAborted})
                self.event_manager = _StoppedEvents(self.event_manager, keep)  # type: ignore[assignment]
            _on_frame_terminated(self)

        setattr(Environment, terminal, terminate)

    def _deliver(backend: StepFunctionsParserBackend, task_token: str, outcome: CallbackOutcome | None) -> None:
        for execution in backend._get_executions():  # noqa: SLF001
            worker = execution.exec_worker
            env = worker.env if worker is not None else None
            if env is None:  # still starting: it has no tokens yet
                continue
            pool = env.callback_pool_manager
            if pool.get(task_token) is None:
                continue
            if execution.exec_status != ExecutionStatus.RUNNING:
                raise _task_timed_out()
            if outcome is None:
                endpoint = pool.get(task_token)
                if endpoint.consumer_error is not None or endpoint.get_outcome() is not None:
                    raise _task_timed_out()
                if not endpoint.notify_heartbeat():
                    raise AWSError("Task does not exist", exception_type="TaskDoesNotExist")
                return
            pool.notify(task_token, outcome)
            return
        raise InvalidToken()

    def send_task_success(self: StepFunctionsParserBackend, task_token: str, outcome: str) -> None:
        _deliver(self, task_token, CallbackOutcomeSuccess(callback_id=task_token, output=outcome))

    def send_task_failure(self: StepFunctionsParserBackend, task_token: str, error: str | None = None,
                          cause: str | None = None) -> None:
        _deliver(self, task_token, CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause))

    def send_task_heartbeat(self: StepFunctionsParserBackend, task_token: str) -> None:
        _deliver(self, task_token, None)

    def send_task_failure_response(self: StepFunctionResponse) -> Any:
        # moto's handler dropped `cause`.
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
        return EmptyResult()

    StateTaskServiceCallback._eval_wait_for_task_token = eval_wait_for_task_token  # type: ignore[method-assign]
    CallbackPoolManager.notify = notify  # type: ignore[method-assign]
    StepFunctionsParserBackend.send_task_success = send_task_success  # type: ignore[method-assign]
    StepFunctionsParserBackend.send_task_failure = send_task_failure  # type: ignore[method-assign]
    StepFunctionsParserBackend.send_task_heartbeat = send_task_heartbeat  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = send_task_failure_response  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------
# StopExecution. AWS aborts the execution at once, wherever it waits, with the given
# error and cause, and returns the stop date. moto left an execution that waited for a
# callback RUNNING, dropped error and cause and returned no stop date.


def _install_stop_execution() -> None:
    def stop_execution(self: StepFunctionsParserBackend, execution_arn: str, error: str | None = None,
                       cause: str | None = None) -> Execution:
        execution = self.describe_execution(execution_arn)
        with _token_lock:
            if execution.exec_status != ExecutionStatus.RUNNING:
                return execution
            stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
            execution.stop_date = stop_date
            execution.error, execution.cause = error, cause
            execution.exec_status = ExecutionStatus.ABORTED
        deadline = time.monotonic() + 5
        while execution.exec_worker.env is None and time.monotonic() < deadline:
            time.sleep(0.001)  # the execution's thread is still creating its environment
        execution.exec_worker.env.set_stop(stop_date=stop_date, cause=cause, error=error)
        return execution

    def stop_execution_response(self: StepFunctionResponse) -> Any:
        execution = self.stepfunction_backend.stop_execution(
            self._get_param("executionArn"), error=self._get_param("error"), cause=self._get_param("cause"))
        return ActionResult({"stopDate": execution.stop_date})

    StepFunctionsParserBackend.stop_execution = stop_execution  # type: ignore[method-assign]
    StepFunctionResponse.stop_execution = stop_execution_response  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------
# DescribeExecution. AWS never reports SUCCEEDED without the output; moto set the status
# first. An ended execution also closes its tokens (a late answer gets TaskTimedOut).


def _install_status_after_output() -> None:
    def reflect_execution_status(self: BaseExecutionWorkerCommunication) -> None:
        execution = self.execution
        env = execution.exec_worker.env
        state = env.program_state()
        for endpoint in list(env.callback_pool_manager._pool.values()):  # noqa: SLF001
            _close(endpoint)
        with _token_lock:
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
                raise RuntimeWarning(f"Execution ended with unsupported program state {type(state).__name__}.")
            execution.stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
            execution.exec_status = status

    BaseExecutionWorkerCommunication._reflect_execution_status = reflect_execution_status  # type: ignore[method-assign]
