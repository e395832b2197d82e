"""GetExecutionHistory and DescribeExecution: paged as AWS pages them, and serialized fast.

AWS returns an execution's history in pages: ``maxResults`` events (1-1,000; 0 or none is
100), oldest first or, with ``reverseOrder``, newest first, and a ``nextToken`` while more
remain (https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html);
moto returned the whole history every time. DescribeExecution reports the stop date of
every ended execution, TIMED_OUT ones included
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html);
moto's had none for TIMED_OUT.

Clients poll both operations, and moto's generic response serializer spent most of the
engine's CPU on them. Here each history event is encoded once, when first read, and a page
joins the encoded events; every JSON response (of any emulated service) is written by a
serializer compiled from the service model. The bodies are byte for byte what moto's
serializer produces for the same data (``tests/test_engine_histories.py`` compares them).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import json
import threading
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore import xform_name
from botocore.model import Shape
from botocore.utils import parse_to_aware_datetime
from moto import settings
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import JSONSerializer
from moto.core.utils import get_service_model
from moto.stepfunctions.exceptions import InvalidToken, ValidationException
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.responses import StepFunctionResponse

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher
    from earlyexit.engine.runtime import EngineExecution

__all__ = ["DEFAULT_PAGE", "EngineEventManager", "describe_output", "encoder", "history_and_describe_as_aws",
           "history_page", "responses_encoded_fast"]

DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_ENDED = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT)
_encode_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]

Encode = Callable[[Any], str]


# -- moto's JSON response serializer, compiled per shape ------------------------------------


def _unix_timestamp(value: Any) -> int | float:
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        try:
            moment = datetime.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            moment = parse_to_aware_datetime(value)
    base = calendar.timegm(moment.timetuple())
    return base + (moment.microsecond // 1000) / 1000.0 if moment.microsecond else base


def _candidates(key: str, shape: Shape, parent: Shape) -> tuple[str, ...]:
    """The keys moto's attribute picker tries on a dict for member ``key``, in its order."""
    aliases = []
    if shape.type_name in ("list", "structure") and shape.name not in parent.members and key != shape.name:
        aliases.append(shape.name)  # ShapeNameAlias
    aliases.append(key)  # NoAlias
    if key.lower().startswith(parent.name.lower()) and key[len(parent.name):] not in parent.members:
        aliases.append(key[len(parent.name):])  # ShapePrefixAlias
    if key.lower().startswith("dict"):
        aliases.append(key[len("dict"):])  # ClassPrefixAlias (the value is a dict)
    if shape.serialization.get("name", key) != key:
        aliases.append(shape.serialization["name"])  # ModelAlias
    return tuple(dict.fromkeys(c for alias in aliases for c in (alias, xform_name(alias))))


_MISSING = object()


class _NotPlain(Exception):  # noqa: N818 - a branch of the dispatch, not a fault
    """The value holds objects (not plain dicts): moto's attribute picker must read it."""


def _pick(value: dict[str, Any], candidates: tuple[str, ...]) -> Any:
    for candidate in candidates:
        found = value.get(candidate, _MISSING)
        if found is not _MISSING:
            return found
    return None


def _json(value: Any) -> str:
    return json.dumps(value)


def _string(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    return _json(value) if value in (None, {}, []) else _encode_string(str(value))


def _compile(shape: Shape, compiled: dict[str, Encode]) -> Encode:
    """An encoder that writes ``value`` of ``shape`` as moto's JSONSerializer does (key order, separators,
    timestamps, None members left out)."""
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return _json
        if shape.name in compiled:
            return lambda value: compiled[shape.name](value)
        members = []

        def encode_structure(value: Any) -> str:
            if type(value) is not dict:
                raise _NotPlain(shape.name)
            parts: dict[str, str] = {}
            for out_key, candidates, encode in members:
                member = _pick(value, candidates)
                if member is not None:
                    parts[out_key] = encode(member)
            return "{" + ", ".join(f"{k}: {v}" for k, v in parts.items()) + "}"

        compiled[shape.name] = encode_structure
        for key, member_shape in shape.members.items():
            members.append((_encode_string(member_shape.serialization.get("name", key)),
                            _candidates(key, member_shape, shape), _compile(member_shape, compiled)))
        return encode_structure
    if kind == "list":
        item = _compile(shape.member, compiled)
        raw = shape.member.serialization.get("name", shape.member.name) != shape.member.name
        return lambda value: "[" + ", ".join(
            "null" if v is None else (_json(v) if raw else item(v)) for v in value) + "]"
    if kind == "map":
        entry = _compile(shape.value, compiled)
        name = shape.value.serialization.get("name")
        skips_none = shape.value.type_name == "structure"

        def encode_map(value: Any) -> str:
            if type(value) is not dict:
                raise _NotPlain(shape.name)
            parts: dict[str, str] = {}
            for key, item in value.items():
                if item is None and skips_none:
                    continue
                parts[_encode_string(str(name or key))] = "null" if item is None else entry(item)
            return "{" + ", ".join(f"{k}: {v}" for k, v in parts.items()) + "}"

        return encode_map
    if kind == "string":
        return _string
    if kind in ("integer", "long"):
        return lambda value: repr(int(value))
    if kind in ("float", "double"):
        return lambda value: _json(float(value))
    if kind == "timestamp":
        if shape.serialization.get("timestampFormat", "unixtimestamp") != "unixtimestamp":
            raise TypeError(f"timestamp format {shape.serialization['timestampFormat']} of {shape.name}")
        return lambda value: _json(_unix_timestamp(value))
    if kind == "blob":
        return lambda value: _encode_string(base64.b64encode(
            value.encode() if isinstance(value, str) else value).strip().decode())
    return _json


@cache
def encoder(service: str, operation: str) -> Encode:
    """The body encoder of an operation's output, as moto's JSON serializer writes it (compiled from the model
    moto reads); it raises ``_NotPlain`` for results that are not plain dicts."""
    shape = get_service_model(service).operation_model(operation).output_shape
    if shape is None:
        return lambda value: "{}"
    encode = _compile(shape, {})
    return lambda value: "{}" if value is None else encode(value)


@cache
def _event_encoder() -> Encode:
    shape = get_service_model("stepfunctions").operation_model("GetExecutionHistory").output_shape
    return _compile(shape.members["events"].member, {})


# -- the history ---------------------------------------------------------------------------


class EngineEventManager(EventManager):
    """moto's event history of one execution, each event encoded once for GetExecutionHistory."""

    def __init__(self) -> None:
        super().__init__(cloud_watch_logging_session=None)
        self._encoded: list[str] = []
        self._encoding = threading.Lock()

    def encoded(self) -> list[str]:
        """Every event so far, encoded, oldest first."""
        with self._encoding:
            with self._mutex:
                new = self._history_event_list[len(self._encoded):]
            encode = _event_encoder()
            self._encoded.extend(encode(event) for event in new)
            return list(self._encoded)


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


_EXECUTION_DATA = ("input", "inputDetails", "output", "outputDetails")


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
        raise ValidationException(f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                                  f"satisfy constraint: Member must have value {'less' if max_results > 0 else 'greater'}"
                                  f" than or equal to {_MAX_PAGE if max_results > 0 else 0}")
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
        body += ', "nextToken": ' + _encode_string(_page_token(execution.exec_arn, following, reverse))
    return body + "}"


def describe_output(execution: Any, execution_arn: str, *, included_data: str | None = None) -> dict[str, Any]:
    """DescribeExecution's response as moto builds it, plus the stop date of TIMED_OUT executions; the output
    is always JSON text (a string output quoted: ``"\\"hello\\""``), as the API reference states
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html). It has the
    API's redrive members (``redriveCount``, ``redriveStatus``) and, with ``included_data`` METADATA_ONLY,
    neither the input nor the output (nor their details)."""
    from earlyexit.engine.shapes import redrive_fields

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


class _Encoded(ActionResult):
    """A response whose JSON body is already encoded (a history page)."""

    def __init__(self, body: str) -> None:
        super().__init__(None)
        self._body = body

    @property
    def result(self) -> object:
        return json.loads(self._body)

    def execute_result(self, context: ActionContext) -> Any:
        if not _plain_json(context):
            return ActionResult(self.result).execute_result(context)
        return 200, {"Content-Type": _content_type(context)}, self._body


def _plain_json(context: ActionContext) -> bool:
    """Whether moto would answer with its plain JSON serializer (no pretty printing, no value transformers)."""
    return (context.serializer_class is JSONSerializer and not settings.PRETTIFY_RESPONSES
            and not getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
            and not context.operation_model.has_event_stream_output)


def _content_type(context: ActionContext) -> str:
    return f"application/x-amz-json-{context.service_model.metadata.get('jsonVersion', '1.0')}"


def responses_encoded_fast(p: Patcher) -> None:
    """Every JSON response of the emulated services (Step Functions, DynamoDB, EventBridge ...) is written with
    a serializer compiled per operation from the service model: the same bytes as moto's generic one, which
    looked each member up through half a dozen alias rules and was most of the engine's CPU under polling.
    Results that hold objects rather than plain dicts still go through moto's. Performance only.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
    """
    original = p.original(ActionResult, "execute_result")

    def execute_result(self: ActionResult, context: ActionContext) -> Any:
        result = self.result
        if isinstance(result, Exception) or not _plain_json(context):
            return original(self, context)
        try:
            body = encoder(context.service_model.service_name, context.operation_model.name)(result)
        except _NotPlain:
            return original(self, context)
        return context.operation_model.http.get("responseCode", 200), {"Content-Type": _content_type(context)}, body

    p.replace(ActionResult, "execute_result", execute_result)


def history_and_describe_as_aws(p: Patcher) -> None:
    """GetExecutionHistory pages as AWS pages it (maxResults, nextToken, reverseOrder), each event encoded once,
    and DescribeExecution gives every ended execution its stop date (moto's had none for TIMED_OUT).

    GetExecutionHistory with ``includeExecutionData`` false leaves out the execution data ("input or output of
    a history event"): each event's ``input`` and ``output``, and their details (the reference does not say
    whether the details stay; they describe data that is not there, so they go too). moto ignored the flag.

    DescribeExecution has ``inputDetails`` (``{"included": true}``, "Always true for API calls"),
    ``redriveCount`` 0 (no execution is redriven: the engine has no RedriveExecution) and ``redriveStatus``:
    NOT_REDRIVABLE while RUNNING and once SUCCEEDED (with the reference's reasons "Execution is RUNNING and
    cannot be redriven", "Execution is SUCCEEDED and cannot be redriven"), REDRIVABLE once FAILED, TIMED_OUT
    or ABORTED (RedriveExecution "restarts unsuccessful executions of Standard workflows [...] failed,
    aborted, or timed out"; NOT_REDRIVABLE for EXPRESS, which RedriveExecution does not support). Note: the
    engine itself does not implement RedriveExecution, so a REDRIVABLE execution cannot be redriven here. With
    ``includedData`` METADATA_ONLY it leaves out the input and output and their details (the reference
    documents the value for encrypted definitions without listing the members it drops; the input and output
    are the execution's data). moto returned none of these members and ignored ``includedData``.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_CloudWatchEventsExecutionDataDetails.html
    """
    from earlyexit.engine.runtime import EngineBackend
    from earlyexit.engine.shapes import validate_request

    original_history = p.original(StepFunctionResponse, "get_execution_history")
    original_describe = p.original(StepFunctionResponse, "describe_execution")

    def get_execution_history(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):
            return original_history(self)
        execution = backend.describe_execution(self._get_param("executionArn"))
        return _Encoded(history_page(execution, max_results=self._get_param("maxResults"),
                                     next_token=self._get_param("nextToken"),
                                     reverse=bool(self._get_param("reverseOrder")),
                                     include_data=self._get_param("includeExecutionData") is not False))

    def describe_execution(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):
            return original_describe(self)
        arn, included_data = self._get_param("executionArn"), self._get_param("includedData")
        validate_request("DescribeExecution", {"executionArn": arn, "includedData": included_data})
        return ActionResult(describe_output(backend.describe_execution(arn), arn, included_data=included_data))

    p.replace(StepFunctionResponse, "get_execution_history", get_execution_history)
    p.replace(StepFunctionResponse, "describe_execution", describe_execution)
