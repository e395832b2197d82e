"""Python Lambda functions run in this process, and EventBridge rules invoke them.

moto runs a function's code in a Docker container (none here) and EventBridge rules cannot
target a function at all; :mod:`earlyexit.engine.runtime.functions` runs a Python handler
in-process as the Lambda Python runtime does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.events.models import Rule
from moto.utilities.arns import parse_arn

from earlyexit.engine.runtime.functions import INVOCATION_LOG, FunctionError, invoke_function

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["lambda_functions_run_in_process", "rules_invoke_functions"]

_logger = logging.getLogger("earlyexit.engine.functions")


def _is_python(function: LambdaFunction) -> bool:
    return str(function.run_time or "").startswith("python3")


def lambda_functions_run_in_process(p: Patcher) -> None:
    """A Python function runs in this process: Invoke calls its handler with the event and returns what it
    returns as JSON (``x-amz-function-error: Unhandled`` and Lambda's error document if it raises). moto
    needed Docker to run any function. Functions of other runtimes still go to moto (Docker).

    Tests:
    tests/test_engine_functions.py::test_invoke_runs_the_python_handler_in_process_with_its_environment_and_context
    tests/test_engine_functions.py::test_a_handler_that_raises_is_a_function_error_with_lambda_s_error_document
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
    p.hook(lambda: root.addHandler(INVOCATION_LOG), lambda: root.removeHandler(INVOCATION_LOG))


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

    Test: tests/test_engine_functions.py::test_a_rule_delivers_to_its_function_and_its_queue_alike
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
