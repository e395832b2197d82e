"""JSONata, evaluated as Step Functions evaluates it.

AWS evaluates JSONata 2.x expressions with ``$states`` and the workflow variables bound, plus
its own functions ``$partition``, ``$range``, ``$hash``, ``$random`` (with an optional seed),
``$uuid`` and ``$parse``, and without ``$eval``
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html); an undefined
result or an evaluation error fails the state with ``States.QueryEvaluationError``. moto's
evaluator is a stub (it expects a JVM bridge that is not shipped): here jsonata-python
evaluates each expression with those values *bound* (not spliced into the expression text,
so strings need no escaping), binding only the variables the expression names; an expression
that is only a path through objects (``$states.input.approver``) is read directly.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import random
import re
import threading
import uuid
from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jsonata import Jsonata
from jsonata.jexception import JException
from jsonata.utils import Utils
from moto.stepfunctions.parser.api import EvaluationFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.eval import states as states_module
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["NOT_A_PATH", "JSONataUndefined", "evaluate_jsonata", "json_copy", "jsonata_evaluator", "read_path",
           "states_copied_as_json"]


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


def _query_evaluation_error(env: Environment, cause: str) -> FailureEventException:
    error_name = StatesErrorName(typ=StatesErrorNameType.StatesQueryEvaluationError)
    details = EventDetails(evaluationFailedEventDetails=EvaluationFailedEventDetails(
        error=error_name.error_name, cause=cause, state=env.next_state_name or ""))
    env.event_manager.add_event(context=env.event_history_context, event_type=HistoryEventType.EvaluationFailed,
                                event_details=details)
    return FailureEventException(FailureEvent(env=env, error_name=error_name,
                                              event_type=HistoryEventType.EvaluationFailed, event_details=details))


_STATES_KEYS = ("input", "context", "result", "errorOutput")
# $states followed by anything but one of the keys that are not the context (the context is serialised to JSON
# for each expression that may read it: its datetimes become strings).
_CONTEXT_MAYBE = re.compile(r"\$states(?!\.(?:input|result|errorOutput)\b)")


@functools.lru_cache(maxsize=4096)
def _may_read_context(expression: str) -> bool:
    """Whether ``expression`` may read ``$states.context``: every ``$states`` not followed by ``.input``,
    ``.result`` or ``.errorOutput`` counts."""
    return _CONTEXT_MAYBE.search(expression) is not None


@functools.lru_cache(maxsize=4096)
def _roots(expression: str) -> frozenset[str]:
    """The variables ``expression`` reads, by name (``$states.input.x`` reads ``states``)."""
    return frozenset(ref[1:].split(".", 1)[0] for ref in moto_jsonata.extract_jsonata_variable_references(expression))


def _bindings(env: Environment, expression: str, with_states: bool) -> dict[str, Any]:
    references = _roots(expression)
    store = env.variable_store
    scopes = (store._inner_scope, store._outer_scope)  # noqa: SLF001 - the workflow variables
    bindings = {name: json_copy(scope[name]) for name in references for scope in scopes[::-1] if name in scope}
    if with_states and "states" in references:
        data = env.states._states_data  # noqa: SLF001 - the interpreter keeps $states here
        wanted = {key: data.get(key) for key in _STATES_KEYS
                  if key in data and (key != "context" or _may_read_context(expression))}
        # The context holds datetimes: AWS exposes them as ISO-8601 strings.
        states = {key: json_copy(value) for key, value in wanted.items() if key != "context"}
        if "context" in wanted:
            states["context"] = json.loads(to_json_str(wanted["context"]))
        bindings["states"] = states
    return bindings


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


def _evaluate_in_env(env: Environment, expression: str, with_states: bool) -> Any:
    store = env.variable_store
    states = {"states": env.states._states_data} if with_states else {}  # noqa: SLF001
    value = read_path(expression, ChainMap(states, store._inner_scope, store._outer_scope))  # noqa: SLF001
    if value is not NOT_A_PATH:
        return value
    try:
        return evaluate_jsonata(expression, _bindings(env, expression, with_states))
    except JSONataUndefined:
        raise _query_evaluation_error(
            env, f"The JSONata expression '{expression}' returned nothing (undefined).") from None
    except TypeError:
        raise _query_evaluation_error(
            env, f"The JSONata expression '{expression}' returned an unsupported result type.") from None
    except JException as error:
        raise _query_evaluation_error(
            env, f"An error occurred while evaluating the JSONata expression '{expression}': {error}") from None


def jsonata_evaluator(p: Patcher) -> None:
    """JSONata expressions (``{% ... %}``, Assign, Output, Arguments, Conditions) evaluate as on AWS, with
    ``$states`` and the workflow variables bound and AWS's own functions available (``$partition``,
    ``$range``, ``$hash``, ``$random`` with an optional seed, ``$uuid``, ``$parse``; ``$eval``, which AWS
    does not support, is an error); an undefined result or an error fails the state with
    States.QueryEvaluationError.

    https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
    """
    def jsonata_eval_body(self: string_expression.StringJSONata, env: Environment) -> None:
        env.stack.append(_evaluate_in_env(env, self.expression, with_states=True))

    def variable_eval_body(self: string_expression.StringVariableSample, env: Environment) -> None:
        with_states = self.query_language_mode == string_expression.QueryLanguageMode.JSONata
        env.stack.append(_evaluate_in_env(env, self.expression, with_states=with_states))

    def eval_text(expression: str) -> Any:
        try:
            return evaluate_jsonata(expression)
        except JSONataUndefined:
            return None

    p.replace(string_expression.StringJSONata, "_eval_body", jsonata_eval_body)
    p.replace(string_expression.StringVariableSample, "_eval_body", variable_eval_body)
    p.replace(moto_jsonata, "_eval_jsonata", eval_text)


class _JSONCopy:
    """``copy`` as moto's $states store sees it: its deep copies are copies of JSON data."""

    deepcopy = staticmethod(json_copy)


def states_copied_as_json(p: Patcher) -> None:
    """$states (input, result, errorOutput, context) is JSON data; moto deep-copied it with ``copy.deepcopy``
    on every read and write, a large share of the interpreter's time. Copies stay copies (no state sees
    another's changes). Performance only.

    https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html
    """
    p.replace(states_module, "copy", _JSONCopy)
