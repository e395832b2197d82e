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
joins the encoded events; both operations' bodies are byte for byte what moto's serializer
produces for the same data (``tests/test_engine_histories.py`` compares them).
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

__all__ = ["DEFAULT_PAGE", "EngineEventManager", "encoder", "history_and_describe_as_aws", "history_page"]

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
            if not isinstance(value, dict):
                raise TypeError(f"cannot encode {type(value).__name__} as {shape.name}")
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
def _output_shape(operation: str) -> Shape:
    # The model moto's serializer reads (moto's own loading of botocore's Step Functions model).
    return get_service_model("stepfunctions").operation_model(operation).output_shape


@cache
def encoder(operation: str) -> Encode:
    """The body encoder of a Step Functions operation's output (moto's JSON serializer, compiled)."""
    return _compile(_output_shape(operation), {})


@cache
def _event_encoder() -> Encode:
    return _compile(_output_shape("GetExecutionHistory").members["events"].member, {})


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


def history_page(execution: EngineExecution, *, max_results: int | None, next_token: str | None,
                 reverse: bool) -> str:
    """The GetExecutionHistory body of one page of ``execution``'s events."""
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
    body = '{"events": [' + ", ".join(page) + "]"
    if following is not None:
        body += ', "nextToken": ' + _encode_string(_page_token(execution.exec_arn, following, reverse))
    return body + "}"


def describe_output(execution: Any, execution_arn: str) -> dict[str, Any]:
    """DescribeExecution's response as moto builds it, plus the stop date of TIMED_OUT executions."""
    response = {"executionArn": execution_arn, "input": execution.execution_input, "name": execution.name,
                "startDate": execution.start_date, "stateMachineArn": execution.state_machine_arn,
                "status": execution.status}
    if execution.status in _ENDED:
        response["stopDate"] = execution.stop_date
    if execution.status == ExecutionStatus.SUCCEEDED:
        if isinstance(execution.output, str):
            response["output"] = execution.output
        elif execution.output is not None:
            response["output"] = json.dumps(execution.output)
        response["outputDetails"] = execution.output_details
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    return response


class _Encoded(ActionResult):
    """A response whose JSON body is already encoded; through moto's serializer if it is not plain JSON."""

    def __init__(self, body: Callable[[], str], result: Callable[[], object]) -> None:
        super().__init__(None)
        self._body = body
        self._full = result

    @property
    def result(self) -> object:
        return self._full()

    def execute_result(self, context: ActionContext) -> Any:
        if context.serializer_class is not JSONSerializer or settings.PRETTIFY_RESPONSES:
            return ActionResult(self._full()).execute_result(context)
        version = context.service_model.metadata.get("jsonVersion", "1.0")
        return 200, {"Content-Type": f"application/x-amz-json-{version}"}, self._body()


def history_and_describe_as_aws(p: Patcher) -> None:
    """GetExecutionHistory pages as AWS pages it (maxResults, nextToken, reverseOrder) and DescribeExecution
    gives every ended execution its stop date; both answer with the bytes moto's serializer would, fast.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
    """
    from earlyexit.engine.runtime import EngineBackend

    original_history = p.original(StepFunctionResponse, "get_execution_history")
    original_describe = p.original(StepFunctionResponse, "describe_execution")

    def get_execution_history(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):
            return original_history(self)
        execution = backend.describe_execution(self._get_param("executionArn"))
        body = history_page(execution, max_results=self._get_param("maxResults"),
                            next_token=self._get_param("nextToken"), reverse=bool(self._get_param("reverseOrder")))
        return _Encoded(lambda: body, lambda: json.loads(body))

    def describe_execution(self: StepFunctionResponse) -> ActionResult:
        backend = self.stepfunction_backend
        if not isinstance(backend, EngineBackend):
            return original_describe(self)
        arn = self._get_param("executionArn")
        response = describe_output(backend.describe_execution(arn), arn)
        return _Encoded(lambda: encoder("DescribeExecution")(response), lambda: response)

    p.replace(StepFunctionResponse, "get_execution_history", get_execution_history)
    p.replace(StepFunctionResponse, "describe_execution", describe_execution)
