"""JSONata, evaluated as Step Functions evaluates it.

AWS evaluates JSONata 2.x expressions with ``$states`` and the workflow variables bound, plus
its own functions ``$partition``, ``$range``, ``$hash``, ``$random`` (with an optional seed),
``$uuid`` and ``$parse``, and without ``$eval``
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html). Here
jsonata-python evaluates each expression with those values *bound* (not spliced into the
expression text, so strings need no escaping); an expression that is only a path through
objects (``$states.input.approver``) is read directly (:func:`read_path`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from jsonata import Jsonata
from jsonata.jexception import JException
from jsonata.utils import Utils

__all__ = ["NOT_A_PATH", "JSONataUndefined", "evaluate_jsonata", "json_copy", "read_path"]


class JSONataUndefined(Exception):  # noqa: N818 - a result, not a fault
    """The expression evaluated to nothing (undefined)."""


def _aws_function_error(message: str) -> JException:
    return JException("D3137", 0, message)  # D3137: jsonata's code for an error with a message of its own


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise _aws_function_error(f"{what} must be an integer, got {json.dumps(value, default=str)}")
    return int(value)


def _hash(value: str, algorithm: str = "SHA-256") -> str:
    names = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    if not isinstance(value, str) or algorithm not in names:
        raise _aws_function_error(f"$hash takes a string and one of {', '.join(names)}")
    return hashlib.new(names[algorithm], value.encode()).hexdigest()


def _partition(array: Any, size: Any) -> list[Any]:
    """``$partition(array, chunkSize)``: the array cut in chunks of ``chunkSize`` (the last one may be
    shorter), as States.ArrayPartition."""
    chunk = _integer(size, "the chunk size of $partition")
    if not isinstance(array, list) or chunk < 1:
        raise _aws_function_error("$partition takes an array and a positive chunk size")
    return [list(array[i:i + chunk]) for i in range(0, len(array), chunk)]


_RANGE_LIMIT = 1000  # States.ArrayRange's limit on the items of the array it builds


def _range(start: Any, end: Any, step: Any) -> list[int]:
    """``$range(start, end, step)``: the integers from ``start`` to ``end`` included, ``step`` apart, as
    States.ArrayRange."""
    first, last, by = (_integer(v, f"the {name} of $range") for v, name in ((start, "start"), (end, "end"),
                                                                            (step, "step")))
    if by == 0:
        raise _aws_function_error("the step of $range must not be 0")
    values = list(range(first, last + (1 if by > 0 else -1), by))
    if len(values) > _RANGE_LIMIT:
        raise _aws_function_error(f"$range would build {len(values)} items, more than {_RANGE_LIMIT}")
    return values


def _random(seed: Any = None) -> float:
    """``$random()`` or ``$random(seed)``: a number in [0, 1); the same seed gives the same number."""
    if seed is None:
        return random.random()  # JSONata's $random: not for secrets
    return random.Random(_integer(seed, "the seed of $random")).random()


def _parse(text: Any) -> Any:
    """``$parse(jsonString)``: the JSON value the string holds."""
    if not isinstance(text, str):
        raise _aws_function_error("$parse takes a string")
    try:
        return json.loads(text)
    except ValueError as error:
        raise _aws_function_error(f"$parse: the string is not JSON ({error})") from None


def _eval(*_: Any) -> Any:
    raise _aws_function_error("$eval is not supported by Step Functions: use $parse to read a JSON string")


_AWS_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "uuid": lambda: str(uuid.uuid4()), "parse": _parse, "hash": _hash, "partition": _partition,
    "range": _range, "random": _random, "eval": _eval}
_compiled: dict[str, Jsonata] = {}
_compiled_lock = threading.Lock()


def _compile(expression: str) -> Jsonata:
    with _compiled_lock:
        compiled = _compiled.get(expression)
        if compiled is None:
            compiled = _compiled[expression] = Jsonata(expression)
        return compiled


def evaluate_jsonata(expression: str, bindings: dict[str, Any] | None = None) -> Any:
    """Evaluate ``expression`` with ``bindings`` (names without ``$``) as AWS does.

    Raises :class:`JSONataUndefined` when the result is undefined and ``JException`` on errors.
    """
    instance = copy.copy(_compile(expression))  # its per-evaluation settings are its own
    instance.output_convert_nulls = False
    Jsonata.CURRENT.jsonata = instance  # $now() and $millis() read the thread's current instance
    values: dict[str, Any] = {name: Jsonata.JLambda(fn) for name, fn in _AWS_FUNCTIONS.items()}
    values.update(bindings or {})
    result = instance.evaluate(None, values)
    if result is None:
        raise JSONataUndefined(expression)
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


def json_copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts and lists copied, everything else shared: it is immutable)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


_PATH = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*")
NOT_A_PATH = object()


def _json_native(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_native(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_native(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def read_path(expression: str, roots: Mapping[str, Any]) -> Any:
    """The value of an expression that is only a path through objects (``$states.input.approver``,
    ``$request``), read directly: what JSONata evaluates it to. :data:`NOT_A_PATH` when the evaluator must
    decide: another kind of expression, an unbound root, a missing key or an array on the way (JSONata maps
    over arrays), an array or a non-JSON value at the end."""
    match = _PATH.fullmatch(expression)
    if match is None or match[1] not in roots:
        return NOT_A_PATH
    value = roots[match[1]]
    for key in match[2].split(".")[1:]:
        if type(value) is not dict or key not in value:
            return NOT_A_PATH
        value = value[key]
    if isinstance(value, list) or not _json_native(value):
        return NOT_A_PATH
    return _plain(json_copy(value))
