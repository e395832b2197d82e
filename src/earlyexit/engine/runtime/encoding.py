"""moto's JSON response serializer, compiled per shape, and an execution's history encoded once per event.

An encoder compiled here writes a value exactly as moto's generic ``JSONSerializer`` does
(key order, separators, timestamps, None members left out), from the service model moto
reads; ``tests/test_engine_histories.py`` compares the bytes.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import json
import threading
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Any

from botocore import xform_name
from botocore.model import Shape
from botocore.utils import parse_to_aware_datetime
from moto import settings
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import JSONSerializer
from moto.core.utils import get_service_model
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

__all__ = ["Encode", "EncodedResult", "EngineEventManager", "NotPlain", "content_type", "encode_string", "encoder",
           "plain_json"]

encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]

Encode = Callable[[Any], str]


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


class NotPlain(Exception):  # noqa: N818 - a branch of the dispatch, not a fault
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
    return _json(value) if value in (None, {}, []) else encode_string(str(value))


def _structure(shape: Shape, compiled: dict[str, Encode]) -> Encode:
    if shape.is_document_type:
        return _json
    if shape.name in compiled:
        return lambda value: compiled[shape.name](value)
    members: list[tuple[str, tuple[str, ...], Encode]] = []

    def encode_structure(value: Any) -> str:
        if type(value) is not dict:
            raise NotPlain(shape.name)
        parts: dict[str, str] = {}
        for out_key, candidates, encode in members:
            member = _pick(value, candidates)
            if member is not None:
                parts[out_key] = encode(member)
        return "{" + ", ".join(f"{k}: {v}" for k, v in parts.items()) + "}"

    compiled[shape.name] = encode_structure
    for key, member_shape in shape.members.items():
        members.append((encode_string(member_shape.serialization.get("name", key)),
                        _candidates(key, member_shape, shape), _compile(member_shape, compiled)))
    return encode_structure


def _list(shape: Shape, compiled: dict[str, Encode]) -> Encode:
    item = _compile(shape.member, compiled)
    raw = shape.member.serialization.get("name", shape.member.name) != shape.member.name
    return lambda value: "[" + ", ".join(
        "null" if v is None else (_json(v) if raw else item(v)) for v in value) + "]"


def _map(shape: Shape, compiled: dict[str, Encode]) -> Encode:
    entry = _compile(shape.value, compiled)
    name = shape.value.serialization.get("name")
    skips_none = shape.value.type_name == "structure"

    def encode_map(value: Any) -> str:
        if type(value) is not dict:
            raise NotPlain(shape.name)
        parts: dict[str, str] = {}
        for key, item in value.items():
            if item is None and skips_none:
                continue
            parts[encode_string(str(name or key))] = "null" if item is None else entry(item)
        return "{" + ", ".join(f"{k}: {v}" for k, v in parts.items()) + "}"

    return encode_map


def _timestamp(shape: Shape) -> Encode:
    if shape.serialization.get("timestampFormat", "unixtimestamp") != "unixtimestamp":
        raise TypeError(f"timestamp format {shape.serialization['timestampFormat']} of {shape.name}")
    return lambda value: _json(_unix_timestamp(value))


def _blob(value: Any) -> str:
    return encode_string(base64.b64encode(value.encode() if isinstance(value, str) else value).strip().decode())


def _compile(shape: Shape, compiled: dict[str, Encode]) -> Encode:
    """An encoder that writes ``value`` of ``shape`` as moto's JSONSerializer does (key order, separators,
    timestamps, None members left out)."""
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, compiled)
    if kind == "list":
        return _list(shape, compiled)
    if kind == "map":
        return _map(shape, compiled)
    if kind == "string":
        return _string
    if kind in ("integer", "long"):
        return lambda value: repr(int(value))
    if kind in ("float", "double"):
        return lambda value: _json(float(value))
    if kind == "timestamp":
        return _timestamp(shape)
    if kind == "blob":
        return _blob
    return _json


@cache
def encoder(service: str, operation: str) -> Encode:
    """The body encoder of an operation's output, as moto's JSON serializer writes it (compiled from the model
    moto reads); it raises :class:`NotPlain` for results that are not plain dicts."""
    shape = get_service_model(service).operation_model(operation).output_shape
    if shape is None:
        return lambda value: "{}"
    encode = _compile(shape, {})
    return lambda value: "{}" if value is None else encode(value)


@cache
def _event_encoder() -> Encode:
    shape = get_service_model("stepfunctions").operation_model("GetExecutionHistory").output_shape
    return _compile(shape.members["events"].member, {})


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


def plain_json(context: ActionContext) -> bool:
    """Whether moto would answer with its plain JSON serializer (no pretty printing, no value transformers)."""
    return (context.serializer_class is JSONSerializer and not settings.PRETTIFY_RESPONSES
            and not getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
            and not context.operation_model.has_event_stream_output)


def content_type(context: ActionContext) -> str:
    """The Content-Type of a JSON response of the context's service."""
    return f"application/x-amz-json-{context.service_model.metadata.get('jsonVersion', '1.0')}"


class EncodedResult(ActionResult):
    """A response whose JSON body is already encoded (a history page)."""

    def __init__(self, body: str) -> None:
        super().__init__(None)
        self._body = body

    @property
    def result(self) -> object:
        return json.loads(self._body)

    def execute_result(self, context: ActionContext) -> Any:
        if not plain_json(context):
            return ActionResult(self.result).execute_result(context)
        return 200, {"Content-Type": content_type(context)}, self._body
