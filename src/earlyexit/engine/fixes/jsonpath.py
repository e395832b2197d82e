"""JSONPath states as AWS runs them: reference paths, ResultPath, States.Format and StringMatches.

Each fix here restores a behaviour the Step Functions Developer Guide documents and that moto 5.2.5's
interpreter gets wrong; ``tests/test_engine_aws_reference.py`` shows each one on the engine.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import jsonpath_ng.ext
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.path.result_path import ResultPath
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.intrinsic.argument import argument
from moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.generic.string_format import (
    StringFormat,
)
from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations import (
    boolean_equals,
    numeric,
    string_operators,
    timestamp_operators,
)
from moto.stepfunctions.parser.asl.eval import states as eval_states
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

if TYPE_CHECKING:
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    from earlyexit.engine.registry import Patcher

__all__ = ["definite_paths_select_one_value", "result_path_match_failure", "string_format_placeholders_only",
           "string_matches_as_aws"]

JSONPATH_EXAMPLES = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html"
# A path is indefinite if it has a wildcard, a deep scan, a filter, a slice or a union.
_INDEFINITE = re.compile(r"\*|\.\.|\[\?|\[[^\]]*[:,][^\]]*\]")
_READERS = (json_path, string_expression, argument, boolean_equals, numeric, string_operators,
            timestamp_operators, eval_states)


def definite_paths_select_one_value(p: Patcher) -> None:
    """A reference path with no wildcard, deep scan, filter, slice or union selects one value, which it gives
    as it is, an array index anywhere in it (``$[0].resourceType`` is ``"elasticmapreduce"``); moto gave a
    one-item list when the selected node sat under an index. Paths that may select several values are left
    as moto reads them. The Developer Guide's reference paths "can only identify a single node"; an
    indefinite path's result is not documented beyond its examples.

    Test: tests/test_engine_aws_reference.py::test_documented_jsonpath_example_gives_the_documented_result
    https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html
    """
    original = p.original(json_path, "extract_json")

    def extract_json(path: str, data: Any) -> Any:
        if _INDEFINITE.search(path) is None:
            matches = jsonpath_ng.ext.parse(path).find(data)
            if len(matches) == 1:
                return matches[0].value
        return original(path, data)

    for module in _READERS:
        p.replace(module, "extract_json", extract_json)


def result_path_match_failure(p: Patcher) -> None:
    """A ResultPath that cannot be applied to the state's input (a field of an input that is not an object)
    fails the state with ``States.ResultPathMatchFailure`` ("Step Functions failed to apply a state's
    ResultPath field to the input the state received"), which a Catch can name; moto raised a Python
    TypeError, reported as States.Runtime. The cause's wording is not documented: it names the path and the
    input.

    Test: tests/test_engine_aws_reference.py::test_documented_jsonpath_example_gives_the_documented_result
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    original = p.original(ResultPath, "_eval_body")

    def eval_body(self: ResultPath, env: Environment) -> None:
        try:
            original(self, env)
        except (TypeError, AttributeError, IndexError) as unappliable:
            error = StatesErrorName(typ=StatesErrorNameType.StatesResultPathMatchFailure)
            cause = (f"Unable to apply ResultPath \"{self.result_path_src}\" to input "
                     f"\"{to_json_str(env.states.get_input())}\".")
            raise FailureEventException(FailureEvent(
                env=env, error_name=error, event_type=HistoryEventType.ExecutionFailed,
                event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(
                    error=error.error_name, cause=cause)))) from unappliable

    p.replace(ResultPath, "_eval_body", eval_body)


# ``{}`` is a placeholder; ``\{`` and ``\}`` (kept as written by the intrinsic preprocessor) are braces.
_FORMAT_PIECE = re.compile(r"\\([{}])|\{\}")


def string_format_placeholders_only(p: Patcher) -> None:
    """``States.Format`` replaces each ``{}`` of its template with the next argument and nothing else: ``\\{``
    and ``\\}`` are literal braces, and other braces are text. moto formatted with Python's ``str.format``, so
    an escaped or a named brace raised KeyError (States.Runtime). The Developer Guide reserves ``'``, ``{``,
    ``}`` and ``\\`` in intrinsic strings, escaped with a backslash; since ``\\\\`` is already one backslash
    when the template is read, a backslash right before a placeholder reads as an escaped brace.

    Test: tests/test_engine_aws_reference.py::test_documented_jsonpath_example_gives_the_documented_result
    https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
    """
    p.original(StringFormat, "_eval_body")

    def eval_body(self: StringFormat, env: Environment) -> None:
        self.argument_list.eval(env=env)
        template, *values = env.stack.pop()
        pieces = iter([self._to_str_repr(value) for value in values])

        def piece(match: re.Match[str]) -> str:
            if match[1] is not None:
                return match[1]
            placeholder = next(pieces, None)
            if placeholder is None:
                raise ValueError(f"States.Format: more placeholders than arguments in '{template}'.")
            return placeholder

        env.stack.append(_FORMAT_PIECE.sub(piece, template))

    p.replace(StringFormat, "_eval_body", eval_body)


_WILDCARD_PIECE = re.compile(r"\\([*\\])|\*|.", re.DOTALL)


def _string_matches(variable: Any, pattern: Any) -> bool:
    if not isinstance(variable, str) or not isinstance(pattern, str):
        return False
    regex = "".join(re.escape(m[1]) if m[1] is not None else ".*" if m[0] == "*" else re.escape(m[0])
                    for m in _WILDCARD_PIECE.finditer(pattern))
    return re.fullmatch(regex, variable, re.DOTALL) is not None


def string_matches_as_aws(p: Patcher) -> None:
    """``StringMatches`` has one wildcard, ``*`` (any run of characters, none included); ``\\*`` is a literal
    asterisk and ``\\\\`` a literal backslash, and every other character matches itself. moto used fnmatch, so
    ``?`` and ``[...]`` were wildcards and no escape worked.

    Test: tests/test_engine_aws_reference.py::test_choice_operators_as_documented
    https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html
    """
    p.original(string_operators.StringMatches, "_compare")
    p.replace(string_operators.StringMatches, "_compare", staticmethod(_string_matches))
