"""JSONata expressions in states, evaluated as Step Functions evaluates them.

An undefined result or an evaluation error fails the state with ``States.QueryEvaluationError``
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html). moto's evaluator
is a stub (it expects a JVM bridge that is not shipped); here :mod:`earlyexit.engine.runtime.jsonata`
evaluates, binding only the variables the expression names.
"""

from __future__ import annotations

import functools
import json
import re
from collections import ChainMap
from typing import TYPE_CHECKING, Any

from jsonata import functions as jsonata_functions
from jsonata.jexception import JException
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
from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison import ConditionStringJSONata
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from earlyexit.engine.runtime.jsonata import NOT_A_PATH, JSONataUndefined, evaluate_jsonata, json_copy, read_path

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["jsonata_evaluated_as_aws", "non_boolean_conditions_fail_query_evaluation",
           "string_keeps_characters_as_javascript_does"]


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


def jsonata_evaluated_as_aws(p: Patcher) -> None:
    """JSONata expressions (``{% ... %}``, Assign, Output, Arguments, Conditions) evaluate as on AWS, with
    ``$states`` and the workflow variables bound and AWS's own functions available (``$partition``,
    ``$range``, ``$hash``, ``$random`` with an optional seed, ``$uuid``, ``$parse``; ``$eval``, which AWS
    does not support, is an error); an undefined result or an error fails the state with
    States.QueryEvaluationError.

    Tests: tests/test_engine.py::test_undefined_jsonata_result_fails_with_query_evaluation_error,
    tests/test_engine_aws_documented.py::test_aws_functions_run_in_a_state_machine
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


def string_keeps_characters_as_javascript_does(p: Patcher) -> None:
    """``$string`` of an array or object writes it as JavaScript's ``JSON.stringify`` does, which JSONata
    uses and so Step Functions: characters beyond ASCII as they are (``$string(["é"])`` is ``["é"]``), only
    quotes, backslashes and control characters escaped. jsonata-python wrote them as ``\\u`` escapes, so
    lengths measured on it differed from AWS's (the quorum's comment budget measures them).

    Test: tests/test_engine_aws_documented.py::test_string_of_an_array_keeps_characters_beyond_ascii
    https://docs.jsonata.org/string-functions#string
    https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
    """
    encoder = jsonata_functions.Functions.Encoder
    original = p.original(jsonata_functions.Functions, "_string")

    def as_javascript(arg: Any, prettify: bool) -> str:
        if isinstance(arg, dict | list):
            if prettify:
                return json.dumps(arg, cls=encoder, indent="  ", ensure_ascii=False)
            return json.dumps(arg, cls=encoder, separators=(",", ":"), ensure_ascii=False)
        return str(original(arg, prettify))

    p.replace(jsonata_functions.Functions, "_string", staticmethod(as_javascript))


def non_boolean_conditions_fail_query_evaluation(p: Patcher) -> None:
    """A Choice rule's ``Condition`` that evaluates to anything but a boolean fails the state with
    ``States.QueryEvaluationError``, the error the guide names for a JSONata expression whose evaluation
    fails; moto raised a Python RuntimeError, reported as States.Runtime. The guide requires the Condition to
    be a boolean without naming the error of one that is not: this follows its JSONata error.

    Test: tests/test_engine_aws_reference.py::test_a_condition_that_is_not_a_boolean_fails_query_evaluation_error
    https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
    """
    p.original(ConditionStringJSONata, "_eval_body")

    def eval_body(self: ConditionStringJSONata, env: Environment) -> None:
        self.string_jsonata.eval(env=env)
        result = env.stack[-1]
        if not isinstance(result, bool):
            raise _query_evaluation_error(env, f"The JSONata expression '{self.string_jsonata.expression}' of a "
                                               f"Condition returned {to_json_str(result)}, not a boolean.")

    p.replace(ConditionStringJSONata, "_eval_body", eval_body)
