"""The Amazon States Language as AWS reads and runs it: error names, error outputs, intrinsics, the context
object and the definition's strings.

Each fix here restores a behaviour the Step Functions Developer Guide documents
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html,
https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html,
https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html) and that moto 5.2.5's
interpreter gets wrong; ``tests/test_engine_aws_documented.py`` shows each one on the engine.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import TYPE_CHECKING, Any

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.intrinsic.argument.argument import ArgumentLiteral
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.states import StateData
from moto.stepfunctions.parser.asl.parse import preprocessor as asl_preprocessor
from moto.stepfunctions.parser.asl.parse.intrinsic import intrinsic_parser
from moto.stepfunctions.parser.asl.parse.intrinsic.preprocessor import Preprocessor as IntrinsicPreprocessor

from earlyexit.engine.runtime.execution import EngineWorker

if TYPE_CHECKING:
    from antlr4.ParserRuleContext import ParserRuleContext
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    from earlyexit.engine.registry import Patcher

__all__ = ["aws_timestamp", "choice_without_match_fails_no_choice_matched", "context_times_as_aws_strings",
           "definition_strings_read_as_json", "error_output_cause_only_when_there_is_one",
           "intrinsic_null_arguments_kept", "state_context_as_aws", "states_all_leaves_terminal_errors"]


# -- States.NoChoiceMatched -------------------------------------------------------------------


def choice_without_match_fails_no_choice_matched(p: Patcher) -> None:
    """A Choice state whose rules all fail to match and that has no Default fails with
    ``States.NoChoiceMatched`` ("A Choice state failed to find a match for the condition field extracted
    from its input"); moto raised a Python RuntimeError, reported as States.Runtime. The Developer Guide
    names the error but not its cause text: the cause here names the state.

    Test: tests/test_engine_aws_documented.py::test_a_choice_without_match_and_default_fails_with_no_choice_matched
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    p.original(StateChoice, "_eval_state")

    def eval_state(self: StateChoice, env: Environment) -> None:
        for rule in self.choices_decl.rules:
            rule.eval(env)
            if env.stack.pop() is True:
                if not rule.next_stmt:
                    raise RuntimeError(f"Missing Next definition for state_choice rule '{rule}' in choices '{self}'.")
                env.stack.append(rule.next_stmt.name)
                return
        if self.default_state is None:
            error = StatesErrorName(typ=StatesErrorNameType.StatesNoChoiceMatched)
            raise FailureEventException(FailureEvent(
                env=env, error_name=error, event_type=HistoryEventType.ExecutionFailed,
                event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(
                    error=error.error_name,
                    cause=f"No Choice rule of the state '{self.name}' matched its input and it has no Default."))))
        env.stack.append(self.default_state.state_name)

    p.replace(StateChoice, "_eval_state", eval_state)


# -- States.ALL -------------------------------------------------------------------------------

_TERMINAL = frozenset({StatesErrorNameType.StatesRuntime.to_name(),
                       StatesErrorNameType.StatesStatesDataLimitExceeded.to_name()})
_ALL = StatesErrorName(typ=StatesErrorNameType.StatesALL)
_TASK_FAILED = StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)


def states_all_leaves_terminal_errors(p: Patcher) -> None:
    """``States.ALL`` matches every error name except ``States.Runtime`` and ``States.DataLimitExceeded``
    ("The States.ALL error type can't catch the States.DataLimitExceeded terminal error and runtime error
    types"), in a Catch and in a Retry alike; a Catch or a Retry that names one of them explicitly still
    matches it. moto's States.ALL matched them too, so it caught and retried them.

    Tests: tests/test_engine_aws_documented.py::test_states_all_does_not_catch_states_runtime,
    tests/test_engine_aws_documented.py::test_states_all_does_not_retry_states_runtime
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    p.original(ErrorEqualsDecl, "_eval_body")

    def eval_body(self: ErrorEqualsDecl, env: Environment) -> None:
        error_name = env.stack.pop()
        if getattr(error_name, "error_name", None) in _TERMINAL:
            matches = error_name in self.error_names
        elif _ALL in self.error_names:
            matches = True
        elif _TASK_FAILED in self.error_names and not isinstance(error_name, StatesErrorName):
            matches = True  # moto's rule: States.TaskFailed matches the errors a task reports
        else:
            matches = error_name in self.error_names
        env.stack.append(matches)

    p.replace(ErrorEqualsDecl, "_eval_body", eval_body)


# -- error output -----------------------------------------------------------------------------


def error_output_cause_only_when_there_is_one(p: Patcher) -> None:
    """A caught error's output (``$states.errorOutput``, and the Catch's result) is ``{"Error": ...,
    "Cause": ...}`` with ``Cause`` only when the error has a cause: a Fail state without Cause gives
    ``{"Error": "Name"}``. moto always added ``"Cause": ""``. The Developer Guide says the error output
    "usually contains the field Cause" and the States Language specification that it SHOULD have one:
    neither says what an error without a cause gives, so absent is chosen (what "usually" implies).
    Note: moto's source carries LocalStack's remark that AWS binds an empty string; this could not be
    checked against AWS's documentation.

    Test: tests/test_engine_aws_documented.py::test_a_caught_error_without_cause_has_no_cause_field
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    """
    p.original(ExecutionState, "_construct_error_output_value")

    def construct_error_output_value(failure_event: FailureEvent) -> dict[str, Any]:
        details = next(iter(failure_event.event_details.values()), None) or {}
        output = {"Error": details.get("error", "")}
        if details.get("cause") is not None:
            output["Cause"] = details["cause"]
        return output

    p.replace(ExecutionState, "_construct_error_output_value", staticmethod(construct_error_output_value))


# -- intrinsic functions ----------------------------------------------------------------------

# A string literal no definition holds: a null argument while moto's grammar (which has no null) parses.
_NULL_SENTINEL = "earlyexit-null-7c1e9b0d4f"
# ``null`` as a whole argument (after "(" or ","), outside quoted strings (those are matched first, kept).
_NULL_ARGUMENT = re.compile(r"('(?:\\.|[^'\\])*')|(?<=[(,])(\s*)null(?=\s*[,)])")


def _nulls_as_sentinels(src: str) -> str:
    return _NULL_ARGUMENT.sub(lambda m: m[1] if m[1] is not None else f"{m[2]}'{_NULL_SENTINEL}'", src)


def intrinsic_null_arguments_kept(p: Patcher) -> None:
    """A ``null`` argument of an intrinsic function is the JSON null: ``States.Array(1, null)`` is
    ``[1, null]`` ("The interpreter returns a JSON array containing the values of the arguments in the order
    provided"). moto's intrinsic grammar has no null: it dropped the argument (and printed a syntax error).
    The Developer Guide does not list the literals an argument may be; a null is taken as JSON's.

    Test: tests/test_engine_aws_documented.py::test_intrinsic_arguments_keep_null
    https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html#asl-intrsc-func-arrays
    """
    original_parse = p.original(intrinsic_parser.IntrinsicParser, "parse")
    original_string = p.original(IntrinsicPreprocessor, "visitFunc_arg_string")

    def parse(src: str) -> Any:
        return original_parse(_nulls_as_sentinels(src))

    def visit_func_arg_string(self: IntrinsicPreprocessor, ctx: Any) -> ArgumentLiteral:
        argument = original_string(self, ctx)
        return ArgumentLiteral(definition_value=None) if argument.definition_value == _NULL_SENTINEL else argument

    p.replace(intrinsic_parser.IntrinsicParser, "parse", staticmethod(parse))
    p.replace(IntrinsicPreprocessor, "visitFunc_arg_string", visit_func_arg_string)


# -- the context object -----------------------------------------------------------------------


def aws_timestamp(moment: datetime.datetime) -> str:
    """``moment`` as the context object writes times: ISO 8601 in UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(datetime.UTC) if moment.tzinfo else moment
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def context_times_as_aws_strings(p: Patcher) -> None:
    """The context object's ``Execution.StartTime`` is a string, ISO 8601 as AWS writes it
    (``"2019-03-26T20:14:13.192Z"``), wherever it is read (``$$.Execution.StartTime`` in JSONPath,
    ``$states.context`` in JSONata). moto kept a Python datetime: a JSONPath Parameters that read it put
    the datetime in the state's output, and DescribeExecution then raised TypeError.

    Tests: tests/test_engine_aws_documented.py::test_the_start_time_read_by_jsonpath_is_an_iso_8601_string,
    tests/test_engine_aws_documented.py::test_the_start_time_read_by_jsonata_is_the_same_string
    https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
    """
    original = p.original(EngineWorker, "_get_evaluation_environment")

    def get_evaluation_environment(self: EngineWorker) -> Any:
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime.datetime):
            execution["StartTime"] = aws_timestamp(execution["StartTime"])
        return env

    p.replace(EngineWorker, "_get_evaluation_environment", get_evaluation_environment)


def _state_data(*, EnteredTime: str, Name: str) -> StateData:  # noqa: N803 - moto's keyword names
    return StateData(EnteredTime=aws_timestamp(datetime.datetime.fromisoformat(EnteredTime)), Name=Name,
                     RetryCount=0)


def state_context_as_aws(p: Patcher) -> None:
    """The context object's ``State`` of every state holds ``EnteredTime`` written as AWS writes times
    (``"2019-03-26T20:14:13.192Z"``), ``Name`` and ``RetryCount`` (0 but for a retried Task, Parallel or Map
    state). moto wrote EnteredTime with microseconds and ``+00:00``, and gave RetryCount only to those three
    kinds of state, so ``$$.State.RetryCount`` in a Pass state failed the execution. The guide lists the three
    fields for the current state without naming kinds of state.

    Tests: tests/test_engine_aws_reference.py::test_the_context_object_names_the_state_machine_execution_and_state,
    tests/test_engine_aws_reference.py::test_more_documented_jsonata
    https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
    """
    p.replace(state_module, "StateData", _state_data)


# -- the definition's strings -----------------------------------------------------------------


def _json_string(text: str) -> str:
    """The value of a JSON string token (``"caf\\u00e9"`` is ``café``); text that is not one, unquoted."""
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            return text[1:-1]
        return value if isinstance(value, str) else text[1:-1]
    return text


def definition_strings_read_as_json(p: Patcher) -> None:
    """A definition is JSON: each string in it is read with JSON's escapes, whatever it is (a literal, an
    Assign value, an object key, a state name, a JSONata expression, an intrinsic function), so
    ``"\\u00e9"`` (as Python's ``json.dumps`` writes ``é``) is ``é`` and ``"say \\"hi\\""`` is
    ``say "hi"``. moto kept the escapes of most strings as text (``\\u00e9``) and read the others with
    Python's escapes. An intrinsic function's own escapes then apply to its decoded text: ``\\'`` is a quote
    and ``\\\\`` a backslash (``"States.Format('it\\\\'s')"`` in the JSON is ``it's``); moto read them from
    the JSON text (``it\\'s`` cut the string short). The Developer Guide states that definitions are JSON
    text and that intrinsic strings escape ``'``, ``{``, ``}`` and ``\\`` with a backslash; it says nothing
    more on escapes, so JSON's rules (RFC 8259) apply first.

    Tests: tests/test_engine_aws_documented.py::test_unicode_escapes_in_a_definition_are_read_as_json,
    tests/test_engine_aws_documented.py::test_unicode_escapes_in_jsonpath_strings_and_intrinsics
    https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-amazon-states-language.html
    """
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import (
        StringIntrinsicFunction,
    )

    p.original(asl_preprocessor.Preprocessor, "_inner_string_of")
    p.original(asl_preprocessor, "from_string_literal")
    p.original(asl_preprocessor.Preprocessor, "visitString_intrinsic_function")
    is_terminal = asl_preprocessor.is_terminal
    null = asl_preprocessor.ASLLexer.NULL

    def inner_string_of(parser_rule_context: ParserRuleContext) -> str | None:
        if is_terminal(parser_rule_context, null):
            return None
        return _json_string(parser_rule_context.getText())

    def from_string_literal(parser_rule_context: ParserRuleContext) -> str | None:
        return _json_string(parser_rule_context.getText())

    def visit_string_intrinsic_function(self: Any, ctx: Any) -> StringIntrinsicFunction:
        derivation = _json_string(ctx.STRINGINTRINSICFUNC().getText())
        function, _ = intrinsic_parser.IntrinsicParser.parse(derivation)
        return StringIntrinsicFunction(intrinsic_function_derivation=derivation, function=function)

    original_escape = p.original(IntrinsicPreprocessor, "_replace_escaped_characters")

    def replace_escaped_characters(match: re.Match[str]) -> str:
        return match[1] if match[1] in ("'", "\\") else original_escape(match)

    p.replace(IntrinsicPreprocessor, "_replace_escaped_characters", staticmethod(replace_escaped_characters))
    p.replace(asl_preprocessor.Preprocessor, "_inner_string_of", staticmethod(inner_string_of))
    p.replace(asl_preprocessor, "from_string_literal", from_string_literal)
    p.replace(asl_preprocessor.Preprocessor, "visitString_intrinsic_function", visit_string_intrinsic_function)
