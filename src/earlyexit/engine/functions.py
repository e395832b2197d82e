"""Python Lambda functions run in-process: no Docker, the same handler code and event shapes as Lambda.

moto runs a function's code in a Docker container (none here) and EventBridge rules cannot
target a function at all. With these fixes a function whose runtime is ``python3.*`` runs in
this process: its deployment package (the zip the Lambda API stored) is unpacked once, its
handler module imported with the function's environment, and each invocation calls the
handler with the event and a context object, as the Lambda Python runtime does
(https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html,
https://docs.aws.amazon.com/lambda/latest/dg/python-context.html). What the handler logs
with :mod:`logging` goes to the function's log group, one stream per invocation, between
``START`` and ``END`` lines, as Lambda writes them.

The environment (the function's variables, the runtime's ``AWS_REGION``,
``AWS_LAMBDA_FUNCTION_NAME``, dummy credentials, and ``AWS_ENDPOINT_URL`` when the engine
serves an endpoint: see :func:`set_function_endpoint`) is set while the handler module is
imported, its cold start: code that reads configuration and creates its clients at import,
as Lambda's best practices advise, sees it; ``os.environ`` read inside the handler is the
process's own, shared by every function. Modules beside the handler are imported privately
for each function.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib.util
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.events.models import Rule
from moto.utilities.arns import parse_arn

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["FunctionError", "function_endpoint", "invoke_function", "lambda_functions_run_in_process",
           "rules_invoke_functions", "set_function_endpoint"]

_logger = logging.getLogger(__name__)
_endpoint: str | None = None
_import_lock = threading.Lock()
_modules: dict[tuple[str, str], ModuleType] = {}
_code_root = Path(tempfile.mkdtemp(prefix="earlyexit-functions-"))
_invocation: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("earlyexit_invocation", default=None)


class FunctionError(Exception):
    """A function's handler raised: Lambda reports it as the invocation's error (``x-amz-function-error``)."""


def set_function_endpoint(endpoint_url: str | None) -> None:
    """The endpoint that in-process functions' AWS clients call (None: the embedded engine intercepts them)."""
    global _endpoint
    _endpoint = endpoint_url


def function_endpoint() -> str | None:
    """The endpoint in-process functions call, if any."""
    return _endpoint


@dataclass
class _Context:
    """The Lambda context object, with the attributes the Python runtime gives it."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _InvocationLog(logging.Handler):
    """Routes log records to the invocation that emitted them (its thread's context)."""

    def emit(self, record: logging.LogRecord) -> None:
        lines = _invocation.get()
        if lines is not None:
            lines.append(f"[{record.levelname}]\t{self.format(record)}")


_log_handler = _InvocationLog()


def _unpacked(function: LambdaFunction) -> Path:
    digest = hashlib.sha256(function.code_bytes).hexdigest()
    folder = _code_root / digest
    if not folder.is_dir():
        staging = Path(tempfile.mkdtemp(dir=_code_root))
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            archive.extractall(staging)
        staging.rename(folder)
    return folder


def _runtime_environment(function: LambdaFunction) -> dict[str, str]:
    environment = {
        "AWS_REGION": function.region, "AWS_DEFAULT_REGION": function.region,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name, "AWS_LAMBDA_FUNCTION_VERSION": function.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name, "_HANDLER": function.handler,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }
    if _endpoint:
        environment["AWS_ENDPOINT_URL"] = _endpoint
    environment.update({k: str(v) for k, v in function.environment_vars.items()})
    return environment


def _handler_module(function: LambdaFunction) -> ModuleType:
    """The handler's module, imported once per function and code (its cold start), with its environment set."""
    key = (function.function_arn, function.code_sha_256)
    with _import_lock:
        if key in _modules:
            return _modules[key]
        folder = _unpacked(function)
        module_name, _, _ = function.handler.rpartition(".")
        path = folder / (module_name.replace(".", "/") + ".py")
        if not path.is_file():
            raise FunctionError(f"Runtime.ImportModuleError: Unable to import module '{module_name}': no {path.name} "
                                f"in the deployment package of {function.function_name}")
        saved_environ, saved_path, saved_modules = dict(os.environ), list(sys.path), set(sys.modules)
        saved_session = boto3.DEFAULT_SESSION
        try:
            os.environ.update(_runtime_environment(function))
            sys.path.insert(0, str(folder))
            boto3.DEFAULT_SESSION = None  # the function's own clients, made with its environment
            spec = importlib.util.spec_from_file_location(f"_earlyexit_function_{uuid.uuid4().hex}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            os.environ.clear()
            os.environ.update(saved_environ)
            sys.path[:] = saved_path
            boto3.DEFAULT_SESSION = saved_session
            for name in set(sys.modules) - saved_modules:  # modules beside the handler stay private to it
                if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(folder)):
                    del sys.modules[name]
        _modules[key] = module
        return module


def invoke_function(function: LambdaFunction, event: Any) -> Any:
    """Call ``function``'s handler with ``event`` in this thread; its log lines go to its log group.

    Raises :class:`FunctionError` with Lambda's error document if the handler raises.
    """
    request_id = str(uuid.uuid4())
    lines = [f"START RequestId: {request_id} Version: {function.version}"]
    token = _invocation.set(lines)
    started = time.monotonic()
    try:
        handler = getattr(_handler_module(function), function.handler.rpartition(".")[2])
        context = _Context(function.function_name, function.version, function.function_arn,
                           int(function.memory_size), request_id, function.logs_group_name,
                           f"[{function.version}]{request_id}", started + float(function.timeout))
        return handler(event, context)
    except FunctionError:
        raise
    except Exception as error:
        lines.append(f"[ERROR] {type(error).__name__}: {error}")
        lines.extend(traceback.format_exc().splitlines())
        raise FunctionError(json.dumps({"errorMessage": str(error), "errorType": type(error).__name__})) from error
    finally:
        _invocation.reset(token)
        lines.append(f"END RequestId: {request_id}")
        lines.append(f"REPORT RequestId: {request_id}\tDuration: {(time.monotonic() - started) * 1000:.2f} ms")
        function.logs_backend.ensure_log_group(function.logs_group_name)
        function.save_logs("\n".join(lines))


def _is_python(function: LambdaFunction) -> bool:
    return str(function.run_time or "").startswith("python3")


def lambda_functions_run_in_process(p: Patcher) -> None:
    """A Python function runs in this process: Invoke calls its handler with the event and returns what it
    returns as JSON (``x-amz-function-error: Unhandled`` and Lambda's error document if it raises). moto
    needed Docker to run any function. Functions of other runtimes still go to moto (Docker).

    https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
    """
    original = p.original(LambdaFunction, "_invoke_lambda")

    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        if not _is_python(self):
            return original(self, event)  # type: ignore[no-any-return]
        try:
            return json.dumps(invoke_function(self, {} if event is None else event)), False, ""
        except FunctionError as error:
            return str(error), True, ""

    original_invoke = p.original(LambdaFunction, "invoke")

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        result = original_invoke(self, body, request_headers, response_headers)
        if _is_python(self) and response_headers.get("x-amz-function-error") == "Handled":
            response_headers["x-amz-function-error"] = "Unhandled"  # the handler raised: Lambda says Unhandled
        return result  # type: ignore[no-any-return]

    root = logging.getLogger()
    p.replace(LambdaFunction, "_invoke_lambda", _invoke_lambda)
    p.replace(LambdaFunction, "invoke", invoke)
    p.hook(lambda: root.addHandler(_log_handler), lambda: root.removeHandler(_log_handler))


def _deliver_async(function_arn: str, event: dict[str, Any]) -> None:
    """An asynchronous invocation, as EventBridge makes: the event is queued, the caller does not wait;
    a failed invocation is retried twice (Lambda's default for asynchronous invocations)."""
    arn = parse_arn(function_arn)
    function = lambda_backends[arn.account][arn.region].get_function(function_arn)

    def run() -> None:
        for attempt in range(3):
            try:
                invoke_function(function, event)
                return
            except FunctionError as error:
                _logger.warning("asynchronous invocation %d of %s failed: %s", attempt + 1, function_arn, error)

    threading.Thread(target=run, name=f"lambda-async-{arn.resource_id}", daemon=True).start()


def _as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it to a target: its time in ISO-8601 UTC, no internal fields."""
    delivered = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(delivered.get("time"), int | float):
        delivered["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(delivered["time"]))
    return json.loads(json.dumps(delivered))


class _OtherTargets:
    """A rule seen with only the targets moto delivers itself."""

    def __init__(self, rule: Rule, targets: list[dict[str, Any]]) -> None:
        self._rule = rule
        self.targets = targets

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rule, name)


def rules_invoke_functions(p: Patcher) -> None:
    """An EventBridge rule whose target is a Lambda function invokes it asynchronously with the event (moto
    raised NotImplementedError for such a target); the rule's other targets are delivered as before.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html,
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
    """
    original = p.original(Rule, "send_to_targets")

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        functions = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        if functions and self.event_pattern.matches_event(original_event):
            for target in functions:
                _deliver_async(target["Arn"], _as_delivered(original_event))
        others = [t for t in self.targets if parse_arn(t["Arn"]).service != "lambda"]
        if others:
            original(_OtherTargets(self, others) if functions else self, original_event, transform_input)

    p.replace(Rule, "send_to_targets", send_to_targets)
