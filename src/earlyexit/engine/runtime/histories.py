"""GetExecutionHistory pages and DescribeExecution responses, as the API reference gives them.

AWS returns an execution's history in pages: ``maxResults`` events (1-1,000; 0 or none is
100), oldest first or, with ``reverseOrder``, newest first, and a ``nextToken`` while more
remain (https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html).
A page joins the events encoded once each (:class:`~earlyexit.engine.runtime.encoding.EngineEventManager`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from moto.stepfunctions.exceptions import InvalidToken, ValidationException
from moto.stepfunctions.parser.api import ExecutionStatus

from earlyexit.engine.runtime.encoding import encode_string
from earlyexit.engine.runtime.execution import EngineExecution

__all__ = ["DEFAULT_PAGE", "describe_output", "history_page", "redrive_fields"]

DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_ENDED = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT)
_FAILED_ENDS = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED)
_EXECUTION_DATA = ("input", "inputDetails", "output", "outputDetails")


def _page_token(execution_arn: str, index: int, reverse: bool) -> str:
    raw = json.dumps({"arn": execution_arn, "next": index, "reverse": reverse}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _from_token(token: str, execution_arn: str, reverse: bool, total: int) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        index = decoded["next"]
        valid = decoded["arn"] == execution_arn and decoded["reverse"] == reverse and isinstance(index, int)
    except (binascii.Error, ValueError, TypeError, KeyError):
        valid = False
    if not valid or not 0 <= index < total:
        raise InvalidToken("Invalid token")
    return int(index)


def _without_execution_data(encoded: str) -> str:
    """An encoded event without the input and output of its details (the same encoding otherwise)."""
    event = json.loads(encoded)
    for details in event.values():
        if isinstance(details, dict):
            for key in _EXECUTION_DATA:
                details.pop(key, None)
    return json.dumps(event)


def history_page(execution: EngineExecution, *, max_results: int | None, next_token: str | None,
                 reverse: bool, include_data: bool = True) -> str:
    """The GetExecutionHistory body of one page of ``execution``'s events (without their input and output when
    not ``include_data``)."""
    if max_results is not None and not 0 <= max_results <= _MAX_PAGE:
        bound = f"less than or equal to {_MAX_PAGE}" if max_results > 0 else "greater than or equal to 0"
        raise ValidationException(f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                                  f"satisfy constraint: Member must have value {bound}")
    limit = max_results or DEFAULT_PAGE
    events = execution.events.encoded()
    total = len(events)
    if reverse:
        start = _from_token(next_token, execution.exec_arn, True, total) if next_token else total - 1
        page = [events[i] for i in range(start, max(start - limit, -1), -1)]
        following = start - limit if start - limit >= 0 else None
    else:
        start = _from_token(next_token, execution.exec_arn, False, total) if next_token else 0
        page = events[start:start + limit]
        following = start + limit if start + limit < total else None
    if not include_data:
        page = [_without_execution_data(event) for event in page]
    body = '{"events": [' + ", ".join(page) + "]"
    if following is not None:
        body += ', "nextToken": ' + encode_string(_page_token(execution.exec_arn, following, reverse))
    return body + "}"


def redrive_fields(execution: Any) -> dict[str, Any]:
    """DescribeExecution's redrive members of an execution never redriven: ``redriveCount`` 0 and
    ``redriveStatus``, with its reason when NOT_REDRIVABLE."""
    fields: dict[str, Any] = {"redriveCount": 0}
    status = execution.exec_status
    if str(getattr(execution, "sm_type", "STANDARD")) not in ("STANDARD", "StateMachineType.STANDARD"):
        fields["redriveStatus"] = "NOT_REDRIVABLE"  # RedriveExecution is not supported by EXPRESS state machines
    elif status in _FAILED_ENDS:
        fields["redriveStatus"] = "REDRIVABLE"
    else:
        fields["redriveStatus"] = "NOT_REDRIVABLE"
        fields["redriveStatusReason"] = f"Execution is {status.value} and cannot be redriven"
    return fields


def describe_output(execution: Any, execution_arn: str, *, included_data: str | None = None) -> dict[str, Any]:
    """DescribeExecution's response as moto builds it, plus the stop date of TIMED_OUT executions; the output
    is always JSON text (a string output quoted: ``"\\"hello\\""``), as the API reference states
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html). It has the
    API's redrive members (``redriveCount``, ``redriveStatus``) and, with ``included_data`` METADATA_ONLY,
    neither the input nor the output (nor their details)."""
    with_data = included_data != "METADATA_ONLY"
    response = {"executionArn": execution_arn, "name": execution.name,
                "startDate": execution.start_date, "stateMachineArn": execution.state_machine_arn,
                "status": execution.status}
    if with_data:
        response["input"] = execution.execution_input
        response["inputDetails"] = {"included": True}
    if execution.status in _ENDED:
        response["stopDate"] = execution.stop_date
    if execution.status == ExecutionStatus.SUCCEEDED and with_data:
        # The output is JSON text, whatever its value: a string output is quoted (moto passed a str through).
        response["output"] = json.dumps(execution.output)
        response["outputDetails"] = execution.output_details
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    response.update(redrive_fields(execution))
    return response
