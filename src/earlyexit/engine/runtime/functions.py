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
from typing import Any

import boto3
from moto.awslambda.models import LambdaFunction

__all__ = ["INVOCATION_LOG", "FunctionError", "function_endpoint", "invoke_function", "set_function_endpoint"]

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


INVOCATION_LOG = _InvocationLog()  # added to the root logger while the engine is installed


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
