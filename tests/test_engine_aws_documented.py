"""The engine on cases AWS's Step Functions documentation settles, beyond what the patterns use.

Each test states the AWS behaviour and cites the page of the Developer Guide (or the API reference) that
documents it; where the documentation leaves a point open, the test says so and checks what the fix chose
(the fix's docstring in ``earlyexit.engine`` says the same).
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import described_end
from test_engine import events

from earlyexit.engine import evaluate_jsonata
from earlyexit.engine.fixes.asl import aws_timestamp
from earlyexit.engine.runtime.jsonata import JSONataUndefined

pytestmark = pytest.mark.engine

ERROR_HANDLING = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html"


def run(sfn: Any, role_arn: str, definition: dict[str, Any] | str, execution_input: Any = None) -> dict[str, Any]:
    """Create a state machine of ``definition`` (a dict, or JSON text sent as it is), run it, and return
    DescribeExecution once it has ended."""
    text = definition if isinstance(definition, str) else json.dumps(definition)
    arn = sfn.create_state_machine(name=f"aws-documented-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                                   definition=text)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input or {}))["executionArn"]
    return described_end(sfn, execution)


def jsonpath(states: dict[str, Any], start_at: str) -> dict[str, Any]:
    return {"StartAt": start_at, "States": states}


def jsonata(states: dict[str, Any], start_at: str) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", "StartAt": start_at, "States": states}


NO_MATCH = {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Done"}]}
DONE = {"Type": "Succeed"}


# -- States.NoChoiceMatched (concepts-error-handling.html: "A Choice state failed to find a match for the
#    condition field extracted from its input") ------------------------------------------------------------


def test_a_choice_without_match_and_default_fails_with_no_choice_matched(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonpath({"Pick": NO_MATCH, "Done": DONE}, "Pick"), {"x": 2})
    assert (described["status"], described["error"]) == ("FAILED", "States.NoChoiceMatched")


def test_a_jsonata_choice_without_match_fails_with_no_choice_matched(sfn: Any, role_arn: str) -> None:
    pick = {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.x = 1 %}", "Next": "Done"}]}
    described = run(sfn, role_arn, jsonata({"Pick": pick, "Done": DONE}, "Pick"), {"x": 2})
    assert (described["status"], described["error"]) == ("FAILED", "States.NoChoiceMatched")


def test_no_choice_matched_in_a_branch_is_caught_by_name(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonpath({
        "Both": {"Type": "Parallel", "Branches": [jsonpath({"Pick": NO_MATCH, "Done": DONE}, "Pick")],
                 "Catch": [{"ErrorEquals": ["States.NoChoiceMatched"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}, "Both"), {"x": 2})
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["Error"] == "States.NoChoiceMatched"


# -- States.ALL leaves States.Runtime and States.DataLimitExceeded (concepts-error-handling.html: "The
#    States.ALL error type can't catch the States.DataLimitExceeded terminal error and runtime error types") -

# A branch that fails with States.Runtime: a JSONPath reference to a field its input lacks.
RUNTIME_BRANCH = jsonpath({"Read": {"Type": "Pass", "Parameters": {"v.$": "$.missing"}, "End": True}}, "Read")


def test_states_all_does_not_catch_states_runtime(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonpath({
        "Both": {"Type": "Parallel", "Branches": [RUNTIME_BRANCH],
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}, "Both"))
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")


def test_states_all_does_not_retry_states_runtime(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonpath({
        "Both": {"Type": "Parallel", "Branches": [RUNTIME_BRANCH],
                 "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                 "End": True}}, "Both"))
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert sum(e["type"] == "ParallelStateStarted" for e in events(sfn, described["executionArn"])) == 1


def test_a_catch_naming_states_runtime_catches_it(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonpath({
        "Both": {"Type": "Parallel", "Branches": [RUNTIME_BRANCH],
                 "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}, "Both"))
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["Error"] == "States.Runtime"


@pytest.mark.parametrize(("error", "error_equals", "matches"), [
    ("States.DataLimitExceeded", ["States.ALL"], False),
    ("States.Runtime", ["States.ALL"], False),
    ("States.DataLimitExceeded", ["States.DataLimitExceeded"], True),
    ("States.Runtime", ["States.Runtime"], True),
    ("States.Timeout", ["States.ALL"], True),
    ("Custom", ["States.ALL"], True),
    ("Custom", ["States.TaskFailed"], True),
])
def test_states_all_matches_every_name_but_the_terminal_ones(cloud: Any, error: str, error_equals: list[str],
                                                              matches: bool) -> None:
    """The engine never raises States.DataLimitExceeded itself (it has no payload quota): the rule is shown
    on the ErrorEquals of a Catch or Retry directly (``cloud``: with the engine's fixes installed)."""
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl

    from earlyexit.engine.runtime.services import reported_error_name

    env = SimpleNamespace(stack=[reported_error_name(error)])
    ErrorEqualsDecl([reported_error_name(name) for name in error_equals])._eval_body(env)
    assert env.stack == [matches]


def test_states_all_still_catches_other_states_errors(sfn: Any, role_arn: str) -> None:
    branch = jsonata({"Broken": {"Type": "Pass", "Output": "{% $states.input.nope %}", "End": True}}, "Broken")
    described = run(sfn, role_arn, jsonata({
        "Both": {"Type": "Parallel", "Branches": [branch],
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}, "Both"))
    assert described["status"] == "SUCCEEDED"


# -- the output is JSON text (API_DescribeExecution.html: "output: The JSON output data of the execution") --


@pytest.mark.parametrize("definition", [
    jsonata({"Say": {"Type": "Pass", "Output": "hello", "End": True}}, "Say"),
    jsonpath({"Say": {"Type": "Pass", "Result": "hello", "End": True}}, "Say"),
], ids=["jsonata-output", "jsonpath-result"])
def test_a_string_output_is_json_text(sfn: Any, role_arn: str, definition: dict[str, Any]) -> None:
    described = run(sfn, role_arn, definition)
    assert described["output"] == '"hello"'
    assert json.loads(described["output"]) == "hello"


def test_a_null_output_is_json_null(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonpath({"Say": {"Type": "Pass", "Result": None, "End": True}}, "Say"))
    assert described["output"] == "null"


# -- the error output (concepts-error-handling.html: the error output "usually contains the field Cause";
#    the docs do not say what an error without a cause gives: the engine leaves Cause out) ------------------


@pytest.mark.parametrize("language", [jsonpath, jsonata])
def test_a_caught_error_without_cause_has_no_cause_field(sfn: Any, role_arn: str, language: Any) -> None:
    described = run(sfn, role_arn, language({
        "Both": {"Type": "Parallel", "Branches": [language({"Fail": {"Type": "Fail", "Error": "Boom"}}, "Fail")],
                 "Catch": [{"ErrorEquals": ["Boom"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}, "Both"))
    assert json.loads(described["output"]) == {"Error": "Boom"}


def test_a_caught_error_with_a_cause_keeps_it(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonata({
        "Both": {"Type": "Parallel", "Branches": [jsonata({"Fail": {"Type": "Fail", "Error": "Boom",
                                                                    "Cause": "why"}}, "Fail")],
                 "Catch": [{"ErrorEquals": ["Boom"], "Next": "Caught", "Output": "{% $states.errorOutput %}"}],
                 "End": True},
        "Caught": {"Type": "Pass", "End": True}}, "Both"))
    assert json.loads(described["output"]) == {"Error": "Boom", "Cause": "why"}


# -- intrinsic functions (intrinsic-functions.html, States.Array: "a JSON array containing the values of the
#    arguments in the order provided") ------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "expected"), [
    ("States.Array(1, null)", [1, None]),
    ("States.Array(null)", [None]),
    ("States.Array('null', null, $.x)", ["null", None, "x"]),
    ("States.Format('{} and {}', 'a', 'b')", "a and b"),
])
def test_intrinsic_arguments_keep_null(sfn: Any, role_arn: str, expression: str, expected: Any) -> None:
    described = run(sfn, role_arn, jsonpath({"Build": {"Type": "Pass", "Parameters": {"v.$": expression},
                                                       "End": True}}, "Build"), {"x": "x"})
    assert json.loads(described["output"]) == {"v": expected}


# -- the context object (input-output-contextobject.html: "StartTime": "2019-03-26T20:14:13.192Z") ---------


def test_the_start_time_read_by_jsonpath_is_an_iso_8601_string(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonpath({"Read": {"Type": "Pass", "Parameters": {
        "started.$": "$$.Execution.StartTime"}, "End": True}}, "Read"))
    started = json.loads(described["output"])["started"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", started)
    assert started == aws_timestamp(described["startDate"])


def test_the_start_time_read_by_jsonata_is_the_same_string(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonata({"Read": {"Type": "Pass", "Output": {
        "started": "{% $states.context.Execution.StartTime %}",
        "millis": "{% $toMillis($states.context.Execution.StartTime) %}"}, "End": True}}, "Read"))
    output = json.loads(described["output"])
    assert output["started"] == aws_timestamp(described["startDate"])
    assert output["millis"] == int(described["startDate"].timestamp() * 1000)


def test_aws_timestamp_writes_milliseconds_and_z() -> None:
    moment = datetime.datetime(2019, 3, 26, 20, 14, 13, 192_999, tzinfo=datetime.UTC)
    assert aws_timestamp(moment) == "2019-03-26T20:14:13.192Z"


# -- definitions are JSON (concepts-amazon-states-language.html: a definition is JSON text; RFC 8259's
#    escapes) ---------------------------------------------------------------------------------------------


def test_unicode_escapes_in_a_definition_are_read_as_json(sfn: Any, role_arn: str) -> None:
    definition = jsonata({"Keep": {"Type": "Pass", "Assign": {"v": "é", "quoted": 'say "hi"'}, "Next": "Café"},
                          "Café": {"Type": "Pass", "Output": {
                              "v": "{% $v %}", "length": "{% $length($v) %}", "quoted": "{% $quoted %}",
                              "clé": "é", "expr": "{% 'é' %}"}, "End": True}}, "Keep")
    text = json.dumps(definition)  # ensure_ascii: "\u00e9"
    assert "\\u00e9" in text
    described = run(sfn, role_arn, text)
    assert json.loads(described["output"]) == {"v": "é", "length": 1, "quoted": 'say "hi"', "clé": "é",
                                               "expr": "é"}


def test_unicode_escapes_in_jsonpath_strings_and_intrinsics(sfn: Any, role_arn: str) -> None:
    definition = jsonpath({"Build": {"Type": "Pass", "Parameters": {
        "lit": "é", "clé": 1, "format.$": "States.Format('é{}', $.x)"}, "End": True}}, "Build")
    described = run(sfn, role_arn, json.dumps(definition), {"x": "ü"})
    assert json.loads(described["output"]) == {"lit": "é", "clé": 1, "format": "éü"}


def test_a_definition_without_escapes_reads_the_same(sfn: Any, role_arn: str) -> None:
    definition = jsonata({"Keep": {"Type": "Pass", "Assign": {"v": "é"}, "Output": "{% $v %}", "End": True}},
                         "Keep")
    assert json.loads(run(sfn, role_arn, json.dumps(definition, ensure_ascii=False))["output"]) == "é"


# -- JSONata functions AWS adds and removes (transforming-data.html, "JSONata functions provided by Step
#    Functions": $partition, $range, $hash, $random with an optional seed, $uuid, $parse; $eval is not
#    supported, $parse replaces it) ------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "expected"), [
    ("$partition([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)", [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
    ("$partition([1, 2, 3, 4, 5], 2)", [[1, 2], [3, 4], [5]]),
    ("$range(0, 10, 2)", [0, 2, 4, 6, 8, 10]),
    ("$range(5, 1, -2)", [5, 3, 1]),
    ("$hash('a', 'SHA-256')", "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"),
    ("$hash('a', 'MD5')", "0cc175b9c0f1b6a831c399e269772661"),
    ("$random(42) = $random(42)", True),
    ("($r := $random(); $r >= 0 and $r < 1)", True),
    ("($r := $random(7); $r >= 0 and $r < 1)", True),
    ("$parse('{\"a\": [1, null]}')", {"a": [1, None]}),
])
def test_aws_jsonata_functions(expression: str, expected: Any) -> None:
    assert evaluate_jsonata(expression) == expected


def test_random_with_the_same_seed_is_the_same_number_across_evaluations() -> None:
    assert evaluate_jsonata("$random(1234)") == evaluate_jsonata("$random(1234)")
    assert evaluate_jsonata("$random(1234)") != evaluate_jsonata("$random(4321)")


@pytest.mark.parametrize("expression", [
    "$eval('1 + 1')", "$partition([1, 2], 0)", "$range(0, 10, 0)", "$hash('a', 'SHA-3')", "$parse('{')",
    "$random('seed')",
])
def test_eval_and_bad_arguments_are_errors(expression: str) -> None:
    from jsonata.jexception import JException

    with pytest.raises(JException):
        evaluate_jsonata(expression)


def test_eval_fails_the_state_with_query_evaluation_error(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonata({"Eval": {"Type": "Pass", "Output": "{% $eval('1 + 1') %}",
                                                     "End": True}}, "Eval"))
    assert (described["status"], described["error"]) == ("FAILED", "States.QueryEvaluationError")


def test_aws_functions_run_in_a_state_machine(sfn: Any, role_arn: str) -> None:
    described = run(sfn, role_arn, jsonata({"Use": {"Type": "Pass", "Output": {
        "chunks": "{% $partition($states.input.items, 2) %}", "evens": "{% $range(0, 4, 2) %}",
        "id": "{% $uuid() %}"}, "End": True}}, "Use"), {"items": ["a", "b", "c"]})
    output = json.loads(described["output"])
    assert output["chunks"] == [["a", "b"], ["c"]] and output["evens"] == [0, 2, 4]
    assert uuid.UUID(output["id"]).version == 4


def test_undefined_is_still_undefined() -> None:
    with pytest.raises(JSONataUndefined):
        evaluate_jsonata("$nothing")


def test_create_state_machine_still_refuses_non_json(sfn: Any, role_arn: str) -> None:
    with pytest.raises(ClientError):
        sfn.create_state_machine(name=f"aws-documented-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                                 definition='{"StartAt": "A", "States": {')


def test_string_of_an_array_keeps_characters_beyond_ascii(sfn: Any, machine: Any) -> None:
    """JSONata's $string writes arrays and objects with JSON.stringify: only quotes, backslashes and control
    characters are escaped (https://docs.jsonata.org/string-functions#string)."""
    arn = machine({"Write": {"Type": "Pass", "Output": "{% $string(['é😀', '\"', 'a\\nb']) %}", "End": True}},
                  "Write")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"], timeout=30)
    assert json.loads(described["output"]) == '["é😀","\\"","a\\nb"]'
