"""GetExecutionHistory and DescribeExecution answer as the API reference gives them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from moto.core.responses import ActionResult
from moto.stepfunctions.responses import StepFunctionResponse

from earlyexit.engine.runtime.backend import EngineBackend
from earlyexit.engine.runtime.encoding import EncodedResult
from earlyexit.engine.runtime.histories import describe_output, history_page
from earlyexit.engine.runtime.validation import validate_request

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["describe_execution_as_aws", "history_paged_as_aws"]


def history_paged_as_aws(p: Patcher) -> None:
    """GetExecutionHistory pages as AWS pages it: ``maxResults`` events (1-1,000; 0 or none is 100), oldest
    first or, with ``reverseOrder``, newest first, and a ``nextToken`` while more remain; moto returned the
    whole history every time. With ``includeExecutionData`` false it leaves out the execution data ("input
    or output of a history event"): each event's ``input`` and ``output``, and their details (the reference
    does not say whether the details stay; they describe data that is not there, so they go too). moto
    ignored the flag. Each event is encoded once (the same bytes as moto's serializer).

    Tests: tests/test_engine_histories.py::test_history_is_paged_forward_and_backward_as_aws_pages_it,
    tests/test_engine_api_shapes.py::test_history_without_execution_data_has_no_input_or_output
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
    """
    original = p.original(StepFunctionResponse, "get_execution_history")

    def get_execution_history(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):
            return original(self)
        execution = backend.describe_execution(self._get_param("executionArn"))
        return EncodedResult(history_page(execution, max_results=self._get_param("maxResults"),
                                          next_token=self._get_param("nextToken"),
                                          reverse=bool(self._get_param("reverseOrder")),
                                          include_data=self._get_param("includeExecutionData") is not False))

    p.replace(StepFunctionResponse, "get_execution_history", get_execution_history)


def describe_execution_as_aws(p: Patcher) -> None:
    """DescribeExecution gives every ended execution its stop date (moto's had none for TIMED_OUT), its output
    as JSON text (a string output quoted), ``inputDetails`` (``{"included": true}``, "Always true for API
    calls"), ``redriveCount`` 0 (the engine has no RedriveExecution) and ``redriveStatus``: NOT_REDRIVABLE
    while RUNNING and once SUCCEEDED (with the reference's reasons "Execution is RUNNING and cannot be
    redriven"), REDRIVABLE once FAILED, TIMED_OUT or ABORTED (RedriveExecution "restarts unsuccessful
    executions of Standard workflows"; NOT_REDRIVABLE for EXPRESS). With ``includedData`` METADATA_ONLY it
    leaves out the input and output and their details (the reference documents the value without listing the
    members it drops). moto returned none of these members and ignored ``includedData``.

    Tests: tests/test_engine.py::test_timed_out_execution_reports_its_stop_date,
    tests/test_engine_api_shapes.py::test_failed_and_aborted_executions_are_redrivable,
    tests/test_engine_api_shapes.py::test_describe_execution_metadata_only_leaves_out_input_and_output,
    tests/test_engine_aws_documented.py::test_a_string_output_is_json_text
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html
    """
    original = p.original(StepFunctionResponse, "describe_execution")

    def describe_execution(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):
            return original(self)
        arn, included_data = self._get_param("executionArn"), self._get_param("includedData")
        validate_request("DescribeExecution", {"executionArn": arn, "includedData": included_data})
        return ActionResult(describe_output(backend.describe_execution(arn), arn, included_data=included_data))

    p.replace(StepFunctionResponse, "describe_execution", describe_execution)
