"""The engine against an independent set of AWS-documented cases: the Step Functions Developer Guide's and API
reference's examples, written as the documentation states them (input, definition, expected output or error).

Each case's id or docstring names the page it comes from. Where the documentation leaves a point open, the
case says so and checks what the documentation implies. This set is independent of
``test_engine_aws_documented.py`` (the differences issue 16 named): it samples every kind of behaviour the
guide documents, to find kinds of difference, not instances.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import described_end, waits_at
from test_engine import events

pytestmark = pytest.mark.engine

DG = "https://docs.aws.amazon.com/step-functions/latest/dg/"
API = "https://docs.aws.amazon.com/step-functions/latest/apireference/"
INTRINSICS = DG + "intrinsic-functions.html"
INPUT_PATH_PARAMETERS = DG + "input-output-inputpath-params.html"
RESULT_PATH = DG + "input-output-resultpath.html"
CONTEXT = DG + "input-output-contextobject.html"
CHOICE = DG + "state-choice.html"
PASS = DG + "state-pass.html"
WAIT = DG + "state-wait.html"
FAIL = DG + "state-fail.html"
MAP = DG + "state-map-inline.html"
DISTRIBUTED_MAP = DG + "state-map-distributed.html"
PARALLEL = DG + "state-parallel.html"
ERRORS = DG + "concepts-error-handling.html"
VARIABLES = DG + "workflow-variables.html"
JSONATA = DG + "transforming-data.html"
NUMBERS = list(range(1, 10))


def create(sfn: Any, role_arn: str, definition: dict[str, Any]) -> str:
    return str(sfn.create_state_machine(name=f"aws-reference-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                                        definition=json.dumps(definition))["stateMachineArn"])


def run(sfn: Any, role_arn: str, definition: dict[str, Any], execution_input: Any) -> dict[str, Any]:
    """Run ``definition`` on ``execution_input`` (any JSON value); DescribeExecution once it has ended."""
    arn = create(sfn, role_arn, definition)
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    return described_end(sfn, execution)


def assert_documented_result(described: dict[str, Any], case: Case) -> None:
    """The execution ended as the documentation says: its output, or FAILED with the documented error."""
    if case.error is None:
        assert described["status"] == "SUCCEEDED", described.get("cause")
        assert json.loads(described["output"]) == case.output
    else:
        assert (described["status"], described.get("error")) == ("FAILED", case.error)


def one(state: dict[str, Any], *, language: str = "JSONPath") -> dict[str, Any]:
    """A machine of the one state ``state`` (made terminal)."""
    return {"QueryLanguage": language, "StartAt": "S", "States": {"S": {**state, "End": True}}}


def pass_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    return one({"Type": "Pass", "Parameters": parameters})


@dataclass(frozen=True)
class Case:
    """One documented example: the machine, its input, and the output (or the error) the page states."""

    definition: dict[str, Any]
    given: Any
    output: Any = None
    error: str | None = None
    cause: str | None = None


# -- intrinsic functions (intrinsic-functions.html), each example as the page gives it --------------------

INTRINSIC_CASES = {
    "States.Format-literal": Case(pass_parameters({"greeting.$": "States.Format('Hello, my name is {}.', $.name)"}),
                                  {"name": "Arnav"}, {"greeting": "Hello, my name is Arnav."}),
    "States.Format-template-path": Case(pass_parameters({"greeting.$": "States.Format($.template, $.name)"}),
                                        {"name": "Arnav", "template": "Hello, my name is {}."},
                                        {"greeting": "Hello, my name is Arnav."}),
    "States.Format-escaped-reserved-characters": Case(
        pass_parameters({"v.$": "States.Format('it\\'s {} \\{not a placeholder\\} \\\\ done', $.x)"}),
        {"x": "x"}, {"v": "it's x {not a placeholder} \\ done"}),
    "States.Format-other-braces-are-text": Case(pass_parameters({"v.$": "States.Format($.template, $.x)"}),
                                                {"template": "{name} is {}", "x": 1}, {"v": "{name} is 1"}),
    "States.StringToJson": Case(pass_parameters({"v.$": "States.StringToJson($.escapedJsonString)"}),
                                {"escapedJsonString": "{\"foo\": \"bar\"}"}, {"v": {"foo": "bar"}}),
    "States.JsonToString": Case(pass_parameters({"v.$": "States.JsonToString($.unescapedJson)"}),
                                {"unescapedJson": {"foo": "bar"}}, {"v": "{\"foo\":\"bar\"}"}),
    "States.Array": Case(pass_parameters({"BuildId.$": "States.Array($.Id)"}), {"Id": 123456},
                         {"BuildId": [123456]}),
    "States.ArrayPartition": Case(pass_parameters({"inputArray.$": "States.ArrayPartition($.inputArray,4)"}),
                                  {"inputArray": NUMBERS}, {"inputArray": [[1, 2, 3, 4], [5, 6, 7, 8], [9]]}),
    "States.ArrayContains": Case(pass_parameters({"contains.$": "States.ArrayContains($.inputArray, $.lookingFor)"}),
                                 {"inputArray": NUMBERS, "lookingFor": 5}, {"contains": True}),
    "States.ArrayRange": Case(pass_parameters({"array.$": "States.ArrayRange(1, 9, 2)"}), {},
                              {"array": [1, 3, 5, 7, 9]}),
    "States.ArrayGetItem": Case(pass_parameters({"item.$": "States.ArrayGetItem($.inputArray, $.index)"}),
                                {"inputArray": NUMBERS, "index": 5}, {"item": 6}),
    "States.ArrayLength": Case(pass_parameters({"length.$": "States.ArrayLength($.inputArray)"}),
                               {"inputArray": NUMBERS}, {"length": 9}),
    "States.ArrayUnique": Case(pass_parameters({"array.$": "States.ArrayUnique($.inputArray)"}),
                               {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}, {"array": [1, 2, 3, 4]}),
    "States.Base64Encode": Case(pass_parameters({"base64.$": "States.Base64Encode($.input)"}),
                                {"input": "Data to encode"}, {"base64": "RGF0YSB0byBlbmNvZGU="}),
    "States.Base64Decode": Case(pass_parameters({"data.$": "States.Base64Decode($.base64)"}),
                                {"base64": "RGF0YSB0byBlbmNvZGU="}, {"data": "Data to encode"}),
    "States.Hash": Case(pass_parameters({"output.$": "States.Hash($.Data, $.Algorithm)"}),
                        {"Data": "input data", "Algorithm": "SHA-1"},
                        {"output": hashlib.sha1(b"input data").hexdigest()}),
    "States.JsonMerge-shallow": Case(pass_parameters({"output.$": "States.JsonMerge($.json1, $.json2, false)"}),
                                     {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
                                      "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
                                     {"output": {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}}),
    "States.MathAdd": Case(pass_parameters({"value1.$": "States.MathAdd($.value1, $.step)"}),
                           {"value1": 111, "step": -1}, {"value1": 110}),
    "States.StringSplit": Case(pass_parameters({"array.$": "States.StringSplit($.inputString, $.splitter)"}),
                               {"inputString": "1,2,3,4,5", "splitter": ","},
                               {"array": ["1", "2", "3", "4", "5"]}),
    "States.StringSplit-several-delimiters": Case(
        pass_parameters({"array.$": "States.StringSplit($.inputString, $.splitter)"}),
        {"inputString": "This.is+a,test=string", "splitter": ".+,="},
        {"array": ["This", "is", "a", "test", "string"]}),
}


# -- input and output processing (input-output-inputpath-params.html, input-output-resultpath.html,
#    state-pass.html, input-output-contextobject.html) ---------------------------------------------------

PRODUCT = {"comment": "Example for Parameters.",
           "product": {"details": {"color": "blue", "size": "small", "material": "cotton"},
                       "availability": "in stock", "sku": "2317", "cost": "$23"}}
LAMBDA_INPUT = {"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
                "lambda": {"who": "AWS Step Functions"}}
HELLO = "Hello, AWS Step Functions!"
EMR_RESULT = {"resourceType": "elasticmapreduce", "resource": "createCluster.sync",
              "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "ClusterId": "AKIAIOSFODNN7EXAMPLE"}}

PROCESSING_CASES = {
    "InputPath": Case(one({"Type": "Pass", "InputPath": "$.dataset2"}),
                      {"comment": "Example for InputPath", "dataset1": {"val1": 1, "val2": 2, "val3": 3},
                       "dataset2": {"val1": "a", "val2": "b", "val3": "c"}}, {"val1": "a", "val2": "b", "val3": "c"}),
    "Parameters": Case(pass_parameters({"comment": "Selecting what I care about.",
                                        "MyDetails": {"size.$": "$.product.details.size",
                                                      "exists.$": "$.product.availability", "StaticValue": "foo"}}),
                       PRODUCT, {"comment": "Selecting what I care about.",
                                 "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}}),
    "Parameters-context-object": Case(pass_parameters({"state.$": "$$.State.Name", "input.$": "$$.Execution.Input"}),
                                      {"a": 1}, {"state": "S", "input": {"a": 1}}),
    "Pass-Result-ResultPath": Case(one({"Type": "Pass", "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
                                        "ResultPath": "$.coords"}), {"georefOf": "Home"},
                                   {"georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}}),
    "Pass-without-Result-passes-its-input": Case(one({"Type": "Pass"}), {"a": [1, {"b": None}]},
                                                 {"a": [1, {"b": None}]}),
    "ResultPath-result-only": Case(one({"Type": "Pass", "Result": HELLO, "ResultPath": "$"}), LAMBDA_INPUT, HELLO),
    "ResultPath-null-keeps-the-input": Case(one({"Type": "Pass", "Result": HELLO, "ResultPath": None}),
                                            LAMBDA_INPUT, LAMBDA_INPUT),
    "ResultPath-into-the-input": Case(one({"Type": "Pass", "Result": HELLO, "ResultPath": "$.taskresult"}),
                                      {"comment": "c", "who": "AWS Step Functions"},
                                      {"comment": "c", "who": "AWS Step Functions", "taskresult": HELLO}),
    "InputPath-ResultPath-OutputPath": Case(one({"Type": "Pass", "InputPath": "$.lambda", "Result": HELLO,
                                                 "ResultPath": "$.data.lambdaresult", "OutputPath": "$.data"}),
                                            LAMBDA_INPUT, {"val1": 23, "val2": 17, "lambdaresult": HELLO}),
    "ResultSelector": Case(one({"Type": "Parallel", "Branches": [
        {"StartAt": "Emr", "States": {"Emr": {"Type": "Pass", "Result": EMR_RESULT, "End": True}}}],
        "ResultSelector": {"ClusterId.$": "$[0].output.ClusterId", "ResourceType.$": "$[0].resourceType"},
        "ResultPath": "$.EMROutput"}), {"a": 1},
        {"a": 1, "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}}),
    "ResultPath-on-a-non-object-input-fails": Case(one({"Type": "Pass", "Result": 1, "ResultPath": "$.x"}), "text",
                                                   error="States.ResultPathMatchFailure"),
    "InputPath-to-nothing-fails-states-runtime": Case(one({"Type": "Pass", "InputPath": "$.missing"}), {"a": 1},
                                                      error="States.Runtime"),
}


def _param(case: Case, name: str, url: str) -> Any:
    return pytest.param(case, id=f"{name} ({url})")


def _cases(cases: dict[str, Case], url: str) -> list[Any]:
    return [_param(case, name, url) for name, case in cases.items()]


def _processing_url(name: str) -> str:
    if name.startswith("Pass"):
        return PASS
    if name.startswith("Parameters-context"):
        return CONTEXT
    return RESULT_PATH if "ResultPath" in name else INPUT_PATH_PARAMETERS


@pytest.mark.parametrize("case", _cases(INTRINSIC_CASES, INTRINSICS) + [
    _param(case, name, _processing_url(name)) for name, case in PROCESSING_CASES.items()])
def test_documented_jsonpath_example_gives_the_documented_result(sfn: Any, role_arn: str, case: Case) -> None:
    assert_documented_result(run(sfn, role_arn, case.definition, case.given), case)


@pytest.mark.parametrize("expression", ["States.MathRandom($.start, $.end)", "States.MathRandom($.start, $.end, 42)"])
def test_math_random_is_an_integer_from_start_up_to_end(sfn: Any, role_arn: str, expression: str) -> None:
    """intrinsic-functions.html, States.MathRandom: a random integer between the start number (inclusive) and the
    end number (exclusive), an optional seed."""
    described = run(sfn, role_arn, pass_parameters({"random.$": expression}), {"start": 1, "end": 999})
    value = json.loads(described["output"])["random"]
    assert isinstance(value, int) and 1 <= value < 999


def test_math_random_with_a_seed_repeats_its_number(sfn: Any, role_arn: str) -> None:
    """intrinsic-functions.html, States.MathRandom: the seed makes the number repeatable."""
    machine = pass_parameters({"a.$": "States.MathRandom(1, 1000000, 7)", "b.$": "States.MathRandom(1, 1000000, 7)"})
    output = json.loads(run(sfn, role_arn, machine, {})["output"])
    assert output["a"] == output["b"]


def test_states_uuid_is_a_version_4_uuid(sfn: Any, role_arn: str) -> None:
    """intrinsic-functions.html, States.UUID: "returns a version 4 universally unique identifier (v4 UUID)"."""
    output = json.loads(run(sfn, role_arn, pass_parameters({"uuid.$": "States.UUID()"}), {})["output"])
    assert uuid.UUID(output["uuid"]).version == 4


def test_states_hash_every_documented_algorithm(sfn: Any, role_arn: str) -> None:
    """intrinsic-functions.html, States.Hash: MD5, SHA-1, SHA-256, SHA-384, SHA-512, hex digests."""
    algorithms = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    machine = pass_parameters({f"{name}.$": f"States.Hash($.data, '{name}')" for name in algorithms})
    output = json.loads(run(sfn, role_arn, machine, {"data": "input data"})["output"])
    assert output == {name: hashlib.new(python, b"input data").hexdigest() for name, python in algorithms.items()}


# -- Choice (state-choice.html) ---------------------------------------------------------------------------

def choice_machine(choices: list[dict[str, Any]]) -> dict[str, Any]:
    """A Choice of ``choices`` (each naming its target in Next) and Default "DefaultState"; every target is a
    Pass state that outputs its own name."""
    targets = {rule["Next"] for rule in choices} | {"DefaultState"}
    return {"StartAt": "Pick", "States": {"Pick": {"Type": "Choice", "Choices": choices, "Default": "DefaultState"},
                                          **{name: {"Type": "Pass", "Result": name, "End": True} for name in targets}}}


DOCUMENTED_CHOICES = [
    {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
    {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
    {"And": [{"Variable": "$.value", "NumericGreaterThanEquals": 20}, {"Variable": "$.value", "NumericLessThan": 30}],
     "Next": "ValueInTwenties"},
]


@pytest.mark.parametrize(("given", "chosen"), [
    ({"type": "Private", "value": 22}, "ValueInTwenties"),
    ({"type": "Public", "value": 22}, "Public"),
    ({"type": "Private", "value": 0}, "ValueIsZero"),
    ({"type": "Private", "value": 35}, "DefaultState"),
])
def test_the_documented_choice_rules_pick_the_documented_state(sfn: Any, role_arn: str, given: dict[str, Any],
                                                                chosen: str) -> None:
    """state-choice.html, the Choice state example (Not, NumericEquals, And of two comparisons, Default)."""
    assert json.loads(run(sfn, role_arn, choice_machine(DOCUMENTED_CHOICES), given)["output"]) == chosen


@pytest.mark.parametrize(("rule", "given", "matches"), [
    ({"Variable": "$.foo", "StringMatches": "log-*.txt"}, {"foo": "log-2023-01-01.txt"}, True),
    ({"Variable": "$.foo", "StringMatches": "log-*.txt"}, {"foo": "log.txt"}, False),
    ({"Variable": "$.foo", "StringMatches": "*"}, {"foo": ""}, True),
    ({"Variable": "$.foo", "StringMatches": "log-\\*.txt"}, {"foo": "log-*.txt"}, True),
    ({"Variable": "$.foo", "StringMatches": "log-\\*.txt"}, {"foo": "log-1.txt"}, False),
    ({"Variable": "$.foo", "StringMatches": "a\\\\b"}, {"foo": "a\\b"}, True),
    ({"Variable": "$.foo", "StringMatches": "log-?.txt"}, {"foo": "log-1.txt"}, False),
    ({"Variable": "$.foo", "StringMatches": "[ab]*"}, {"foo": "[ab]c"}, True),
    ({"Variable": "$.bar", "IsPresent": False}, {"foo": 1}, True),
    ({"Variable": "$.foo", "IsPresent": True}, {"foo": None}, True),
    ({"Variable": "$.foo", "IsNull": True}, {"foo": None}, True),
    ({"Variable": "$.foo", "IsNumeric": True}, {"foo": "1"}, False),
    ({"Variable": "$.foo", "IsString": True}, {"foo": "1"}, True),
    ({"Variable": "$.foo", "IsBoolean": True}, {"foo": False}, True),
    ({"Variable": "$.foo", "IsTimestamp": True}, {"foo": "2001-01-01T12:00:00Z"}, True),
    ({"Variable": "$.foo", "IsTimestamp": True}, {"foo": "yesterday"}, False),
    ({"Variable": "$.foo", "TimestampEquals": "2001-01-01T12:00:00Z"}, {"foo": "2001-01-01T12:00:00Z"}, True),
    ({"Variable": "$.foo", "TimestampLessThan": "2001-01-01T12:00:00Z"}, {"foo": "2000-12-31T23:59:59Z"}, True),
    ({"Variable": "$.foo", "TimestampGreaterThanEqualsPath": "$.bar"},
     {"foo": "2001-01-01T12:00:00Z", "bar": "2001-01-01T12:00:00Z"}, True),
    ({"Variable": "$.foo", "NumericEqualsPath": "$.bar"}, {"foo": 2, "bar": 2.0}, True),
    ({"Variable": "$.foo", "StringLessThan": "b"}, {"foo": "a"}, True),
    ({"Variable": "$.foo", "BooleanEquals": True}, {"foo": True}, True),
    ({"Variable": "$.foo", "NumericEquals": 1}, {"foo": "1"}, False),
    ({"Or": [{"Variable": "$.foo", "StringEquals": "x"}, {"Variable": "$.foo", "StringEquals": "y"}]}, {"foo": "y"},
     True),
], ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value))
def test_choice_operators_as_documented(sfn: Any, role_arn: str, rule: dict[str, Any], given: dict[str, Any],
                                        matches: bool) -> None:
    """state-choice.html, "Choice Rules": the comparison operators, StringMatches with * as its only wildcard
    (escaped as \\\\* and \\\\\\\\), IsPresent, IsNull and the type tests, the Timestamp and Path comparisons, And,
    Or and Not; a comparison of a value of another type than the operator's does not match."""
    output = run(sfn, role_arn, choice_machine([{**rule, "Next": "Matched"}]), given)["output"]
    assert json.loads(output) == ("Matched" if matches else "DefaultState")


# -- Map, Parallel (state-map-inline.html, state-parallel.html) --------------------------------------------

SHIPPING = {"ship-date": "2016-03-14T01:59:00Z",
            "detail": {"delivery-partner": "UQS", "shipped": [
                {"prod": "R31", "dest-code": 9511, "quantity": 1344},
                {"prod": "S39", "dest-code": 9511, "quantity": 40},
                {"prod": "R31", "dest-code": 9833, "quantity": 12}]}}


def test_map_item_selector_as_documented(sfn: Any, role_arn: str) -> None:
    """state-map-inline.html (and input-output-itemselector.html): ItemsPath selects the array, ItemSelector builds
    each iteration's input from the context object's Map.Item.Value and Index and the state's input."""
    machine = one({"Type": "Map", "ItemsPath": "$.detail.shipped", "MaxConcurrency": 1, "ItemSelector": {
        "parcel.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "courier.$": "$.detail.delivery-partner"},
        "ItemProcessor": {"StartAt": "Ship", "States": {"Ship": {"Type": "Pass", "End": True}}}})
    output = json.loads(run(sfn, role_arn, machine, SHIPPING)["output"])
    assert output == [{"parcel": parcel, "index": index, "courier": "UQS"}
                      for index, parcel in enumerate(SHIPPING["detail"]["shipped"])]


def test_a_failed_iteration_fails_the_map_with_its_error(sfn: Any, role_arn: str) -> None:
    """state-map-inline.html: "If any iteration fails, the entire Map state fails"; a Catch on the Map catches
    the iteration's error by name, its ResultPath placing the error output in the input."""
    machine = {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "Check", "States": {"Check": {
            "Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 2, "Next": "TooBig"}],
            "Default": "Fine"}, "TooBig": {"Type": "Fail", "Error": "TooBig", "Cause": "over 2"},
            "Fine": {"Type": "Succeed"}}},
            "ItemsPath": "$.items", "Catch": [{"ErrorEquals": ["TooBig"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True},
        "Caught": {"Type": "Pass", "End": True}}}
    output = json.loads(run(sfn, role_arn, machine, {"items": [1, 2, 3]})["output"])
    assert output == {"items": [1, 2, 3], "error": {"Error": "TooBig", "Cause": "over 2"}}


def test_parallel_outputs_each_branch_output_in_order(sfn: Any, role_arn: str) -> None:
    """state-parallel.html: the Parallel state's output is an array of its branches' outputs, in branch order."""
    branches = [{"StartAt": f"B{index}", "States": {f"B{index}": {
        "Type": "Pass", "Parameters": {"branch": index, "in.$": "$.x"}, "End": True}}} for index in range(3)]
    output = json.loads(run(sfn, role_arn, one({"Type": "Parallel", "Branches": branches}), {"x": 1})["output"])
    assert output == [{"branch": index, "in": 1} for index in range(3)]


def test_a_failed_branch_fails_the_parallel_state_caught_with_result_path(sfn: Any, role_arn: str) -> None:
    """state-parallel.html ("If any branch fails ... the entire Parallel state fails") and concepts-error-handling
    .html (a Catch's ResultPath adds the error output to the state's input)."""
    machine = {"StartAt": "Both", "States": {
        "Both": {"Type": "Parallel", "Branches": [
            {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "End": True}}},
            {"StartAt": "Bad", "States": {"Bad": {"Type": "Fail", "Error": "BranchBroke", "Cause": "because"}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Notify"}], "End": True},
        "Notify": {"Type": "Pass", "End": True}}}
    output = json.loads(run(sfn, role_arn, machine, {"order": 7})["output"])
    assert output == {"order": 7, "error": {"Error": "BranchBroke", "Cause": "because"}}


# -- Fail, Wait (state-fail.html, state-wait.html) ---------------------------------------------------------

@pytest.mark.parametrize(("fail", "given", "error", "cause"), [
    ({"Error": "ErrorA", "Cause": "Kaiju attack"}, {}, "ErrorA", "Kaiju attack"),
    ({"ErrorPath": "$.someError", "CausePath": "$.someCause"}, {"someError": "E1", "someCause": "C1"}, "E1", "C1"),
    ({"ErrorPath": "$$.State.Name", "CausePath": "States.Format('this is the error: {}, and this is the cause: {}', "
                                                 "$.Error, $.Cause)"},
     {"Error": "Oops", "Cause": "bug"}, "S", "this is the error: Oops, and this is the cause: bug"),
], ids=["literal", "paths", "context-and-intrinsic"])
def test_fail_state_error_and_cause_as_documented(sfn: Any, role_arn: str, fail: dict[str, Any], given: Any,
                                                  error: str, cause: str) -> None:
    """state-fail.html: Error and Cause, or ErrorPath and CausePath (reference paths, the context object, or an
    intrinsic that returns a string) name the execution's error and cause."""
    machine = {"StartAt": "S", "States": {"S": {"Type": "Fail", **fail}}}
    described = run(sfn, role_arn, machine, given)
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", error, cause)


@pytest.mark.parametrize("wait", [{"SecondsPath": "$.seconds"}, {"TimestampPath": "$.ship-date"},
                                  {"Timestamp": "2016-03-14T01:59:00Z"}, {"Seconds": 0}])
def test_wait_with_a_path_or_a_past_timestamp_passes_its_input(sfn: Any, role_arn: str, wait: dict[str, Any]) -> None:
    """state-wait.html: SecondsPath and TimestampPath read the wait from the input; a timestamp in the past
    waits not at all; a Wait state's output is its input."""
    given = {"seconds": 0, "ship-date": "2016-03-14T01:59:00Z"}
    described = run(sfn, role_arn, one({"Type": "Wait", **wait}), given)
    assert (described["status"], json.loads(described["output"])) == ("SUCCEEDED", given)


# -- Retry and Catch (concepts-error-handling.html) ----------------------------------------------------------

def failing_parallel(retry: dict[str, Any], catch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Parallel state whose one branch fails with ``Boom``, retried by ``retry``."""
    state = {"Type": "Parallel", "Branches": [{"StartAt": "Boom", "States": {
        "Boom": {"Type": "Fail", "Error": "Boom", "Cause": "always"}}}], "Retry": [{"ErrorEquals": ["Boom"], **retry}]}
    if catch is None:
        return one(state)
    return {"StartAt": "S", "States": {"S": {**state, "Catch": catch, "End": True},
                                       "Handled": {"Type": "Pass", "End": True}}}


def attempts(sfn: Any, execution_arn: str) -> int:
    return sum(event["type"] == "FailStateEntered" for event in events(sfn, execution_arn))


@pytest.fixture
def tenth_waits() -> Iterator[None]:
    """Retry intervals at 1/10 of their length."""
    with waits_at(0.1):
        yield


@pytest.mark.parametrize(("max_attempts", "expected"), [(0, 1), (1, 2), (3, 4)])
def test_max_attempts_retries_then_fails(sfn: Any, role_arn: str, scaled_waits: None, max_attempts: int,
                                         expected: int) -> None:
    """concepts-error-handling.html, MaxAttempts: "the maximum number of retry attempts ... a value of 0 causes the
    error to never be retried"; once they are spent the state fails with the error."""
    described = run(sfn, role_arn, failing_parallel({"IntervalSeconds": 1, "MaxAttempts": max_attempts}), {})
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "Boom", "always")
    assert attempts(sfn, described["executionArn"]) == expected


def test_retry_first_then_catch(sfn: Any, role_arn: str, scaled_waits: None) -> None:
    """concepts-error-handling.html: "When a state has both Retry and Catch fields, Step Functions uses any
    appropriate Retriers first. If the retry policy fails to resolve the error, Step Functions applies the
    matching Catcher transition"."""
    machine = failing_parallel({"IntervalSeconds": 1, "MaxAttempts": 2},
                               [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Handled"}])
    described = run(sfn, role_arn, machine, {"a": 1})
    assert json.loads(described["output"]) == {"a": 1, "failure": {"Error": "Boom", "Cause": "always"}}
    assert attempts(sfn, described["executionArn"]) == 3


def test_max_delay_seconds_caps_the_backoff(sfn: Any, role_arn: str, tenth_waits: None) -> None:
    """concepts-error-handling.html, MaxDelaySeconds: "the maximum value, in seconds, up to which a retry interval
    can increase"; without it IntervalSeconds 1, BackoffRate 10 and 3 attempts wait 1 + 10 + 100 s."""
    machine = failing_parallel({"IntervalSeconds": 1, "BackoffRate": 10, "MaxAttempts": 3, "MaxDelaySeconds": 1})
    started = time.monotonic()
    described = run(sfn, role_arn, machine, {})
    assert attempts(sfn, described["executionArn"]) == 4
    assert time.monotonic() - started < 5  # 3 waits of 1 s at 1/10: 0.3 s; uncapped 11.1 s


def test_full_jitter_waits_at_most_the_interval(sfn: Any, role_arn: str, tenth_waits: None) -> None:
    """concepts-error-handling.html, JitterStrategy FULL: each retry waits a random time up to the interval
    (here 2 s, 4 s, 8 s: at most 1.4 s in all at 1/10)."""
    machine = failing_parallel({"IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 3, "JitterStrategy": "FULL"})
    started = time.monotonic()
    described = run(sfn, role_arn, machine, {})
    assert (described["error"], attempts(sfn, described["executionArn"])) == ("Boom", 4)
    assert time.monotonic() - started < 5


# -- task errors: States.Timeout, States.HeartbeatTimeout, States.TaskFailed (concepts-error-handling.html) -

@pytest.fixture
def queue_url(cloud: Any) -> Iterator[str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName=f"aws-reference-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


def callback_task(queue: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, **fields}


def test_a_task_past_its_timeout_fails_states_timeout(sfn: Any, role_arn: str, queue_url: str) -> None:
    """concepts-error-handling.html, States.Timeout: "A Task state either ran longer than the TimeoutSeconds
    value"; and States.TaskFailed "matches any known error name except for States.Timeout"."""
    machine = {"StartAt": "Ask", "States": {
        "Ask": {**callback_task(queue_url, TimeoutSeconds=1), "End": True,
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    described = run(sfn, role_arn, machine, {})
    assert (described["status"], described["error"]) == ("FAILED", "States.Timeout")


@pytest.mark.parametrize("name", ["States.HeartbeatTimeout", "States.Timeout"])
def test_a_task_without_heartbeat_is_caught_as_a_heartbeat_timeout(sfn: Any, role_arn: str, queue_url: str,
                                                                    name: str) -> None:
    """concepts-error-handling.html: States.HeartbeatTimeout, "A Task state failed to send a heartbeat for a period
    longer than the HeartbeatSeconds value ... only available inside the Catch and Retry fields"; States.Timeout,
    "ran longer than the TimeoutSeconds value, or failed to send a heartbeat for a period longer than the
    HeartbeatSeconds value". Either name catches it."""
    machine = {"StartAt": "Ask", "States": {
        "Ask": {**callback_task(queue_url, TimeoutSeconds=30, HeartbeatSeconds=1), "End": True,
                "Catch": [{"ErrorEquals": [name], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    described = run(sfn, role_arn, machine, {})
    assert described["status"] == "SUCCEEDED"


def test_a_heartbeat_timeout_uncaught_fails_states_timeout(sfn: Any, role_arn: str, queue_url: str) -> None:
    """concepts-error-handling.html, States.Timeout: a task that "failed to send a heartbeat for a period longer
    than the HeartbeatSeconds value"; a Catch of another States error leaves it."""
    machine = {"StartAt": "Ask", "States": {
        "Ask": {**callback_task(queue_url, TimeoutSeconds=30, HeartbeatSeconds=1), "End": True,
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    described = run(sfn, role_arn, machine, {})
    assert (described["status"], described["error"]) == ("FAILED", "States.Timeout")


def _token(cloud: Any, queue: str) -> str:
    sqs = cloud.client("sqs")
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return str(json.loads(messages[0]["Body"])["token"])
    raise AssertionError("no task token arrived")


def test_states_task_failed_catches_an_error_a_task_reports(sfn: Any, role_arn: str, cloud: Any,
                                                             queue_url: str) -> None:
    """concepts-error-handling.html, States.TaskFailed: in a Catch it matches an error a task reports
    (SendTaskFailure's error), whose error output keeps the reported name and cause."""
    machine = {"StartAt": "Ask", "States": {
        "Ask": {**callback_task(queue_url), "End": True,
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    execution = sfn.start_execution(stateMachineArn=create(sfn, role_arn, machine), input="{}")["executionArn"]
    sfn.send_task_failure(taskToken=_token(cloud, queue_url), error="Declined", cause="not now")
    described = described_end(sfn, execution)
    assert json.loads(described["output"]) == {"Error": "Declined", "Cause": "not now"}


# -- JSONata and variables (transforming-data.html, workflow-variables.html) -----------------------------------

def jsonata(states: dict[str, Any], start_at: str) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", "StartAt": start_at, "States": states}


JSONATA_CASES = {
    "states-input-and-functions": Case(one({"Type": "Pass", "Output": {
        "total": "{% $sum($states.input.items.price) %}", "names": "{% $states.input.items.name %}",
        "upper": "{% $uppercase($states.input.customer) %}", "literal": 5}}, language="JSONata"),
        {"customer": "ann", "items": [{"name": "a", "price": 2}, {"name": "b", "price": 3.5}]},
        {"total": 5.5, "names": ["a", "b"], "upper": "ANN", "literal": 5}),
    "context-execution-input": Case(one({"Type": "Pass", "Output": "{% $states.context.Execution.Input.x %}"},
                                        language="JSONata"), {"x": [1]}, [1]),
    "aws-functions": Case(one({"Type": "Pass", "Output": {
        "partition": "{% $partition([1, 2, 3, 4], 3) %}", "range": "{% $range(1, 9, 4) %}",
        "hash": "{% $hash('input data', 'SHA-1') %}", "parse": "{% $parse($states.input.text) %}"}},
        language="JSONata"), {"text": "{\"foo\": [1, true]}"},
        {"partition": [[1, 2, 3], [4]], "range": [1, 5, 9], "hash": hashlib.sha1(b"input data").hexdigest(),
         "parse": {"foo": [1, True]}}),
    "states-result-of-a-parallel": Case(one({"Type": "Parallel", "Branches": [
        jsonata({"A": {"Type": "Pass", "Output": 1, "End": True}}, "A"),
        jsonata({"B": {"Type": "Pass", "Output": 2, "End": True}}, "B")],
        "Output": "{% $sum($states.result) %}"}, language="JSONata"), {}, 3),
    "fail-error-and-cause-expressions": Case(jsonata({"F": {"Type": "Fail", "Error": "{% $states.input.code %}",
                                                            "Cause": "{% 'because ' & $states.input.why %}"}}, "F"),
                                             {"code": "E42", "why": "reasons"}, error="E42", cause="because reasons"),
    "undefined-output-fails-query-evaluation-error": Case(
        one({"Type": "Pass", "Output": "{% $states.input.nope %}"}, language="JSONata"), {},
        error="States.QueryEvaluationError"),
    "type-error-fails-query-evaluation-error": Case(one({"Type": "Pass", "Output": "{% $states.input.s + 1 %}"},
                                                        language="JSONata"), {"s": "text"},
                                                    error="States.QueryEvaluationError"),
    "variables-assigned-for-the-next-state": Case(jsonata({
        "First": {"Type": "Pass", "Assign": {"x": 1, "items": "{% $states.input.items %}"}, "Next": "Second"},
        "Second": {"Type": "Pass", "Output": {"x": "{% $x %}", "count": "{% $count($items) %}"}, "End": True}},
        "First"), {"items": [1, 2, 3]}, {"x": 1, "count": 3}),
    "assign-reads-the-values-on-entry": Case(jsonata({
        "First": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Second"},
        "Second": {"Type": "Pass", "Assign": {"x": 2, "y": "{% $x %}"}, "Next": "Third"},
        "Third": {"Type": "Pass", "Output": {"x": "{% $x %}", "y": "{% $y %}"}, "End": True}}, "First"), {},
        {"x": 2, "y": 1}),
    "map-iterations-read-outer-variables": Case(jsonata({
        "Set": {"Type": "Pass", "Assign": {"factor": 10}, "Next": "Each"},
        "Each": {"Type": "Map", "Items": "{% $states.input.values %}", "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Scale", "States": {
                "Scale": {"Type": "Pass", "Output": "{% $states.input * $factor %}", "End": True}}}, "End": True}},
        "Set"), {"values": [1, 2]}, [10, 20]),
    "catch-assigns-the-error-output": Case(jsonata({
        "Both": {"Type": "Parallel",
                 "Branches": [jsonata({"Bad": {"Type": "Fail", "Error": "Bad", "Cause": "c"}}, "Bad")],
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"failure": "{% $states.errorOutput %}"},
                            "Output": "{% $states.input %}", "Next": "Report"}], "End": True},
        "Report": {"Type": "Pass", "Output": {"failure": "{% $failure %}", "input": "{% $states.input %}"},
                   "End": True}}, "Both"), {"k": 1}, {"failure": {"Error": "Bad", "Cause": "c"}, "input": {"k": 1}}),
    "choice-condition": Case(jsonata({
        "Pick": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 2 %}", "Next": "Big",
                                                "Assign": {"kind": "big"}}], "Default": "Small"},
        "Big": {"Type": "Pass", "Output": "{% $kind %}", "End": True},
        "Small": {"Type": "Pass", "Output": "small", "End": True}}, "Pick"), {"n": 3}, "big"),
}


@pytest.mark.parametrize("case", [
    pytest.param(case, id=f"{name} ({VARIABLES if 'variable' in name or 'assign' in name else JSONATA})")
    for name, case in JSONATA_CASES.items()])
def test_documented_jsonata_example_gives_the_documented_result(sfn: Any, role_arn: str, case: Case) -> None:
    described = run(sfn, role_arn, case.definition, case.given)
    assert_documented_result(described, case)
    if case.error is not None and case.cause is not None:
        assert described["cause"] == case.cause


# -- Distributed Map (state-map-distributed.html): tolerated failures and the item reader ----------------------

def distributed_map(tolerated: dict[str, Any]) -> dict[str, Any]:
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "Check",
                 "States": {"Check": {"Type": "Choice", "Choices": [
                     {"Variable": "$", "NumericGreaterThan": 2, "Next": "TooBig"}], "Default": "Fine"},
                     "TooBig": {"Type": "Fail", "Error": "TooBig"}, "Fine": {"Type": "Succeed"}}}
    return one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": processor, **tolerated})


@pytest.mark.parametrize(("tolerated", "status", "error"), [
    ({"ToleratedFailureCount": 1}, "SUCCEEDED", None),
    ({"ToleratedFailurePercentage": 50.0}, "SUCCEEDED", None),
    ({"ToleratedFailurePercentage": 50}, "SUCCEEDED", None),
    ({"ToleratedFailurePercentage": 0}, "FAILED", "States.ExceedToleratedFailureThreshold"),
    ({"ToleratedFailureCount": 0}, "FAILED", "States.ExceedToleratedFailureThreshold"),
    ({}, "FAILED", "States.ExceedToleratedFailureThreshold"),
    ({"ToleratedFailurePercentage": 10.0}, "FAILED", "States.ExceedToleratedFailureThreshold"),
])
def test_tolerated_failures_of_a_distributed_map(sfn: Any, role_arn: str, tolerated: dict[str, Any], status: str,
                                                 error: str | None) -> None:
    """state-map-distributed.html, "Setting failure thresholds": the Map fails with
    States.ExceedToleratedFailureThreshold once more items fail than ToleratedFailureCount or
    ToleratedFailurePercentage allow (here 1 of 3 fails; both are 0 unless set)."""
    described = run(sfn, role_arn, distributed_map(tolerated), {"items": [1, 2, 3]})
    assert (described["status"], described.get("error")) == (status, error)


def test_an_item_reader_that_cannot_read_fails_item_reader_failed(sfn: Any, role_arn: str, cloud: Any) -> None:
    """concepts-error-handling.html, States.ItemReaderFailed: "A Map state failed because it couldn't read from
    the item source specified in the ItemReader field" (here a missing S3 object)."""
    bucket = f"aws-reference-{uuid.uuid4().hex[:10]}"
    cloud.client("s3").create_bucket(Bucket=bucket)
    machine = one({"Type": "Map", "ItemReader": {
        "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": bucket, "Key": "missing.json"}}, "ItemProcessor": {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}}}})
    described = run(sfn, role_arn, machine, {})
    assert (described["status"], described.get("error")) == ("FAILED", "States.ItemReaderFailed")


# -- API errors (API_StartExecution.html, API_DescribeExecution.html, API_SendTaskSuccess.html, ...) ------------

def error_of(call: Any, **arguments: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**arguments)
    return str(raised.value.response["Error"]["Code"])


@pytest.fixture
def waiting_machine(sfn: Any, role_arn: str) -> str:
    return create(sfn, role_arn, one({"Type": "Wait", "Seconds": 600}))


@pytest.mark.parametrize(("name", "error"), [("has space", "InvalidName"), ("question?", "InvalidName"),
                                             ("brace{", "InvalidName"), ("slash/", "InvalidName"),
                                             ("a" * 81, "ValidationException")])
def test_start_execution_refuses_an_invalid_name(sfn: Any, waiting_machine: str, name: str, error: str) -> None:
    """API_StartExecution.html, name: no whitespace, brackets, wildcards or special characters (InvalidName, "The
    provided name is not valid"), and a length of 1 to 80, a constraint of the request (CommonErrors.html,
    ValidationException: "The input fails to satisfy the constraints specified by an AWS service")."""
    assert error_of(sfn.start_execution, stateMachineArn=waiting_machine, name=name) == error


def test_start_execution_refuses_input_that_is_not_json(sfn: Any, waiting_machine: str) -> None:
    """API_StartExecution.html, InvalidExecutionInput: "The provided JSON input data is not valid"."""
    assert error_of(sfn.start_execution, stateMachineArn=waiting_machine, input="{not json") == "InvalidExecutionInput"


def test_start_execution_is_idempotent_for_the_same_name_and_input(sfn: Any, waiting_machine: str) -> None:
    """API_StartExecution.html: for a Standard workflow, the same name and input as a running execution returns
    that execution; the same name with a different input is ExecutionAlreadyExists, and so is the same name and
    input once the execution has closed."""
    first = sfn.start_execution(stateMachineArn=waiting_machine, name="once", input='{"a": 1}')
    again = sfn.start_execution(stateMachineArn=waiting_machine, name="once", input='{"a": 1}')
    assert again["executionArn"] == first["executionArn"]
    assert error_of(sfn.start_execution, stateMachineArn=waiting_machine, name="once",
                    input='{"a": 2}') == "ExecutionAlreadyExists"
    sfn.stop_execution(executionArn=first["executionArn"])
    described_end(sfn, first["executionArn"])
    assert error_of(sfn.start_execution, stateMachineArn=waiting_machine, name="once",
                    input='{"a": 1}') == "ExecutionAlreadyExists"


def test_start_and_describe_refuse_what_does_not_exist(sfn: Any, waiting_machine: str) -> None:
    """API_StartExecution.html (StateMachineDoesNotExist, InvalidArn) and API_DescribeExecution.html
    (ExecutionDoesNotExist, InvalidArn)."""
    missing_machine = waiting_machine.rsplit(":", 1)[0] + ":nothing-here"
    missing_execution = waiting_machine.replace(":stateMachine:", ":execution:") + ":nothing-here"
    assert error_of(sfn.start_execution, stateMachineArn=missing_machine) == "StateMachineDoesNotExist"
    assert error_of(sfn.start_execution, stateMachineArn="not-an-arn") == "InvalidArn"
    assert error_of(sfn.describe_execution, executionArn=missing_execution) == "ExecutionDoesNotExist"
    assert error_of(sfn.describe_execution, executionArn="not-an-arn") == "InvalidArn"


@pytest.mark.parametrize("operation", ["send_task_success", "send_task_failure", "send_task_heartbeat"])
def test_send_task_refuses_a_token_that_is_not_one(sfn: Any, operation: str) -> None:
    """API_SendTaskSuccess.html, API_SendTaskFailure.html, API_SendTaskHeartbeat.html: InvalidToken, "The provided
    token is not valid"."""
    arguments: dict[str, Any] = {"taskToken": "not-a-task-token"}
    if operation == "send_task_success":
        arguments["output"] = "{}"
    assert error_of(getattr(sfn, operation), **arguments) == "InvalidToken"


def test_send_task_success_refuses_output_that_is_not_json(sfn: Any, role_arn: str, cloud: Any,
                                                           queue_url: str) -> None:
    """API_SendTaskSuccess.html, InvalidOutput: "The provided JSON output data is not valid"; the task still waits
    for a valid answer."""
    execution = sfn.start_execution(stateMachineArn=create(sfn, role_arn, one(callback_task(queue_url))),
                                    input="{}")["executionArn"]
    token = _token(cloud, queue_url)
    assert error_of(sfn.send_task_success, taskToken=token, output="{not json") == "InvalidOutput"
    sfn.send_task_success(taskToken=token, output='{"ok": true}')
    assert json.loads(described_end(sfn, execution)["output"]) == {"ok": True}


# -- more of input and output processing, the context object, Retry and Catch defaults -----------------------

NULL_PATHS = DG + "input-output-inputpath-params.html"
MORE_PROCESSING_CASES = {
    "InputPath-null-gives-an-empty-object": Case(one({"Type": "Pass", "InputPath": None}), {"a": 1}, {}),
    "OutputPath-null-gives-an-empty-object": Case(one({"Type": "Pass", "OutputPath": None}), {"a": 1}, {}),
    "Parameters-then-ResultPath": Case(one({"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"},
                                            "ResultPath": "$.calc"}), {"n": 2}, {"n": 2, "calc": {"doubled": 4}}),
    "Parallel-Parameters-feed-each-branch": Case(one({"Type": "Parallel", "Parameters": {"v.$": "$.x"}, "Branches": [
        {"StartAt": "P1", "States": {"P1": {"Type": "Pass", "End": True}}},
        {"StartAt": "P2", "States": {"P2": {"Type": "Pass", "OutputPath": "$.v", "End": True}}}]}),
        {"x": 5, "other": 1}, [{"v": 5}, 5]),
    "Map-ResultSelector-and-ResultPath": Case(one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {
        "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
        "ResultSelector": {"count.$": "States.ArrayLength($)"}, "ResultPath": "$.summary"}),
        {"items": ["a", "b"]}, {"items": ["a", "b"], "summary": {"count": 2}}),
    "Map-Parameters-legacy-item-value": Case(one({"Type": "Map", "ItemsPath": "$.items", "Parameters": {
        "item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"}, "Iterator": {
        "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}), {"items": ["a", "b"]},
        [{"item": "a", "index": 0}, {"item": "b", "index": 1}]),
    "Succeed-OutputPath": Case({"StartAt": "S", "States": {"S": {"Type": "Succeed", "OutputPath": "$.keep"}}},
                               {"keep": [1], "drop": 2}, [1]),
}


@pytest.mark.parametrize("case", [pytest.param(case, id=f"{name} ({NULL_PATHS})")
                                  for name, case in MORE_PROCESSING_CASES.items()])
def test_more_documented_processing(sfn: Any, role_arn: str, case: Case) -> None:
    """input-output-inputpath-params.html ("If InputPath is null ... {}", "If OutputPath is null ... {}",
    Parameters, ResultSelector on Map and Parallel), state-parallel.html, state-map-inline.html (legacy
    Parameters and Iterator), state-succeed.html."""
    described = run(sfn, role_arn, case.definition, case.given)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"]) == case.output


def test_the_context_object_names_the_state_machine_execution_and_state(sfn: Any, role_arn: str) -> None:
    """input-output-contextobject.html: Execution.Name, StateMachine.Name, State.Name, State.RetryCount (0 on the
    first attempt) and State.EnteredTime."""
    arn = create(sfn, role_arn, pass_parameters({
        "state.$": "$$.State.Name", "machine.$": "$$.StateMachine.Name", "name.$": "$$.Execution.Name",
        "machineArn.$": "$$.StateMachine.Id", "retries.$": "$$.State.RetryCount", "entered.$": "$$.State.EnteredTime",
        "role.$": "$$.Execution.RoleArn"}))
    execution = sfn.start_execution(stateMachineArn=arn, name="named-run", input="{}")["executionArn"]
    output = json.loads(described_end(sfn, execution)["output"])
    assert {key: output[key] for key in ("state", "machine", "name", "machineArn", "retries", "role")} == {
        "state": "S", "machine": arn.rsplit(":", 1)[1], "name": "named-run", "machineArn": arn, "retries": 0,
        "role": role_arn}
    assert output["entered"].endswith("Z") and "T" in output["entered"]


def test_retry_defaults_three_attempts(sfn: Any, role_arn: str, scaled_waits: None) -> None:
    """concepts-error-handling.html: MaxAttempts defaults to 3 (IntervalSeconds to 1, BackoffRate to 2.0)."""
    described = run(sfn, role_arn, failing_parallel({}), {})
    assert (described["error"], attempts(sfn, described["executionArn"])) == ("Boom", 4)


def test_the_first_matching_retrier_and_catcher_apply(sfn: Any, role_arn: str, scaled_waits: None) -> None:
    """concepts-error-handling.html: retriers and catchers are scanned in the order listed; the first whose
    ErrorEquals matches applies (a retrier's attempts count for that retrier only)."""
    machine = {"StartAt": "S", "States": {
        "S": {"Type": "Parallel", "Branches": [{"StartAt": "Boom", "States": {
            "Boom": {"Type": "Fail", "Error": "Boom", "Cause": "always"}}}],
            "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 1, "IntervalSeconds": 1},
                      {"ErrorEquals": ["States.ALL"], "MaxAttempts": 3, "IntervalSeconds": 1}],
            "Catch": [{"ErrorEquals": ["Boom"], "Next": "First"}, {"ErrorEquals": ["States.ALL"], "Next": "Second"}],
            "End": True},
        "First": {"Type": "Pass", "Result": "first", "End": True},
        "Second": {"Type": "Pass", "Result": "second", "End": True}}}
    described = run(sfn, role_arn, machine, {})
    assert json.loads(described["output"]) == "first"
    assert attempts(sfn, described["executionArn"]) == 2


@pytest.mark.parametrize("error_equals", [["States.ALL", "Boom"], ["Boom", "States.ALL"]])
def test_states_all_must_appear_alone(sfn: Any, role_arn: str, error_equals: list[str]) -> None:
    """concepts-error-handling.html: "States.ALL must appear alone in its ErrorEquals array" (CreateStateMachine
    answers InvalidDefinition)."""
    machine = failing_parallel({"IntervalSeconds": 1})
    machine["States"]["S"]["Retry"][0]["ErrorEquals"] = error_equals
    assert error_of(sfn.create_state_machine, name=f"aws-reference-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                    definition=json.dumps(machine)) == "InvalidDefinition"


@pytest.mark.parametrize("field", ["Catch", "Retry"])
def test_states_all_must_be_the_last_catcher(sfn: Any, role_arn: str, field: str) -> None:
    """concepts-error-handling.html: a catcher or retrier with States.ALL "must be the last one" in its array."""
    entries = [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["Boom"]}]
    if field == "Catch":
        entries = [{**entry, "Next": "H"} for entry in entries]
    machine = {"StartAt": "S", "States": {
        "S": {"Type": "Parallel", "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}],
              field: entries, "End": True},
        "H": {"Type": "Pass", "End": True}}}
    assert error_of(sfn.create_state_machine, name=f"aws-reference-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                    definition=json.dumps(machine)) == "InvalidDefinition"


def test_timeout_seconds_path_reads_the_timeout_from_the_input(sfn: Any, role_arn: str, queue_url: str) -> None:
    """state-task.html, TimeoutSecondsPath: the timeout taken from the state input; past it, States.Timeout."""
    described = run(sfn, role_arn, one(callback_task(queue_url, TimeoutSecondsPath="$.timeout")), {"timeout": 1})
    assert (described["status"], described["error"]) == ("FAILED", "States.Timeout")


# -- more JSONata (transforming-data.html, workflow-variables.html, state-map-inline.html) ---------------------

MORE_JSONATA_CASES = {
    "map-item-selector-with-context": Case(one({"Type": "Map", "Items": "{% $states.input.values %}",
                                                "ItemSelector": {"value": "{% $states.context.Map.Item.Value %}",
                                                                 "index": "{% $states.context.Map.Item.Index %}"},
                                                "ItemProcessor": {"StartAt": "I", "States": {
                                                    "I": {"Type": "Pass", "End": True}}}}, language="JSONata"),
                                           {"values": ["a", "b"]}, [{"value": "a", "index": 0},
                                                                    {"value": "b", "index": 1}]),
    "wait-seconds-expression": Case(one({"Type": "Wait", "Seconds": "{% $states.input.s %}",
                                         "Output": "{% $states.input.s + 1 %}"}, language="JSONata"), {"s": 0}, 1),
    "choice-output-and-default": Case(jsonata({
        "Pick": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 2 %}", "Next": "Done"}],
                 "Default": "Done", "Output": {"seen": "{% $states.input.n %}"}},
        "Done": {"Type": "Succeed"}}, "Pick"), {"n": 1}, {"seen": 1}),
    "catch-output-reads-the-state-input": Case(jsonata({
        "Both": {"Type": "Parallel", "Arguments": {"x": "{% $states.input.x %}"},
                 "Branches": [jsonata({"Bad": {"Type": "Fail", "Error": "Bad"}}, "Bad")],
                 "Catch": [{"ErrorEquals": ["Bad"], "Output": {"input": "{% $states.input %}",
                                                               "error": "{% $states.errorOutput.Error %}"},
                            "Next": "Done"}], "End": True},
        "Done": {"Type": "Succeed"}}, "Both"), {"x": 1, "y": 2}, {"input": {"x": 1, "y": 2}, "error": "Bad"}),
    "parallel-arguments-feed-each-branch": Case(one({"Type": "Parallel", "Arguments": {"x": "{% $states.input.x %}"},
                                                     "Branches": [jsonata({"A": {"Type": "Pass", "End": True}}, "A")]},
                                                    language="JSONata"), {"x": 3, "y": 4}, [{"x": 3}]),
    "state-name-and-execution-name": Case(one({"Type": "Pass", "Output": {
        "state": "{% $states.context.State.Name %}", "retries": "{% $states.context.State.RetryCount %}"}},
        language="JSONata"), {}, {"state": "S", "retries": 0}),
    "variables-from-a-parallel-branch-stay-in-it": Case(jsonata({
        "Set": {"Type": "Pass", "Assign": {"who": "outer"}, "Next": "Both"},
        "Both": {"Type": "Parallel", "Branches": [jsonata({
            "Inner": {"Type": "Pass", "Assign": {"inner": "{% $who & '-inner' %}"}, "Next": "Use"},
            "Use": {"Type": "Pass", "Output": "{% $inner %}", "End": True}}, "Inner")], "Next": "After"},
        "After": {"Type": "Pass", "Output": {"who": "{% $who %}", "branches": "{% $states.input %}"}, "End": True}},
        "Set"), {}, {"who": "outer", "branches": ["outer-inner"]}),
}


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in MORE_JSONATA_CASES.items()])
def test_more_documented_jsonata(sfn: Any, role_arn: str, case: Case) -> None:
    """transforming-data.html ($states.input, $states.errorOutput in a Catch, $states.context, Arguments of a
    Parallel state, JSONata in Wait's Seconds and a Choice's Output), state-map-inline.html (ItemSelector with
    $states.context.Map.Item), workflow-variables.html (a Parallel branch reads outer variables; its own stay
    in it)."""
    described = run(sfn, role_arn, case.definition, case.given)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"]) == case.output


# -- more API behaviour (API_StopExecution.html, API_DescribeExecution.html, API_ListExecutions.html) ---------

def test_stop_execution_records_its_error_and_cause(sfn: Any, waiting_machine: str) -> None:
    """API_StopExecution.html (error, cause) and API_DescribeExecution.html: the stopped execution is ABORTED
    with that error and cause and a stopDate."""
    execution = sfn.start_execution(stateMachineArn=waiting_machine, input='{"a": 1}')["executionArn"]
    stopped = sfn.stop_execution(executionArn=execution, error="Halted", cause="by the test")
    described = sfn.describe_execution(executionArn=execution)
    assert (described["status"], described["error"], described["cause"]) == ("ABORTED", "Halted", "by the test")
    assert described["stopDate"] == stopped["stopDate"]
    assert json.loads(described["input"]) == {"a": 1}


def test_list_executions_filters_by_status(sfn: Any, waiting_machine: str) -> None:
    """API_ListExecutions.html, statusFilter: only executions of that status are listed."""
    running = sfn.start_execution(stateMachineArn=waiting_machine)["executionArn"]
    stopped = sfn.start_execution(stateMachineArn=waiting_machine)["executionArn"]
    sfn.stop_execution(executionArn=stopped)
    listed = {status: {e["executionArn"] for e in sfn.list_executions(stateMachineArn=waiting_machine,
                                                                      statusFilter=status)["executions"]}
              for status in ("RUNNING", "ABORTED")}
    assert running in listed["RUNNING"] and stopped not in listed["RUNNING"]
    assert stopped in listed["ABORTED"] and running not in listed["ABORTED"]
    sfn.stop_execution(executionArn=running)


# -- definitions AWS refuses (the field rules of state-wait.html, state-fail.html, state-task.html,
#    concepts-error-handling.html, state-choice.html) -----------------------------------------------------------

INVALID_STATES = {
    "wait-with-seconds-and-timestamp": ({"Type": "Wait", "Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z",
                                         "End": True}, WAIT),
    "fail-with-cause-and-cause-path": ({"Type": "Fail", "Error": "E", "Cause": "c", "CausePath": "$.c"}, FAIL),
    "fail-with-error-and-error-path": ({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}, FAIL),
    "heartbeat-not-below-timeout": ({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                                     "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}},
                                     "TimeoutSeconds": 5, "HeartbeatSeconds": 5, "End": True}, DG + "state-task.html"),
    "backoff-rate-below-one": ({"Type": "Parallel", "Branches": [{"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}}], "Retry": [{"ErrorEquals": ["E"], "BackoffRate": 0.5}], "End": True},
        ERRORS),
    "negative-max-attempts": ({"Type": "Parallel", "Branches": [{"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}}], "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": -1}], "End": True},
        ERRORS),
    "choice-without-choices": ({"Type": "Choice", "Default": "S"}, CHOICE),
    "choice-rule-without-next": ({"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1}],
                                  "Default": "S"}, CHOICE),
}


@pytest.mark.parametrize(("state", "url"), [pytest.param(state, url, id=f"{name} ({url})")
                                            for name, (state, url) in INVALID_STATES.items()])
def test_a_definition_breaking_a_documented_field_rule_is_refused(sfn: Any, role_arn: str, state: dict[str, Any],
                                                                  url: str) -> None:
    """Each page's field rules: exactly one of Seconds, Timestamp, SecondsPath, TimestampPath; Cause or CausePath,
    Error or ErrorPath, not both; HeartbeatSeconds smaller than TimeoutSeconds; BackoffRate at least 1.0 and
    MaxAttempts not negative; a Choice state's Choices, non-empty, each rule with a Next. CreateStateMachine
    answers InvalidDefinition."""
    machine = {"StartAt": "S", "States": {"S": state}}
    assert error_of(sfn.create_state_machine, name=f"aws-reference-{uuid.uuid4().hex[:10]}", roleArn=role_arn,
                    definition=json.dumps(machine)) == "InvalidDefinition"


# -- JSONata rules (transforming-data.html) -------------------------------------------------------------------

def test_a_condition_that_is_not_a_boolean_fails_query_evaluation_error(sfn: Any, role_arn: str) -> None:
    """transforming-data.html: a Choice rule's Condition must evaluate to a boolean; otherwise the state fails
    with States.QueryEvaluationError."""
    machine = jsonata({"Pick": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "Done"}],
                                "Default": "Done"}, "Done": {"Type": "Succeed"}}, "Pick")
    described = run(sfn, role_arn, machine, {"n": 3})
    assert (described["status"], described["error"]) == ("FAILED", "States.QueryEvaluationError")


def test_only_a_whole_string_in_jsonata_delimiters_is_an_expression(sfn: Any, role_arn: str) -> None:
    """transforming-data.html: a string is a JSONata expression when it starts with {% and ends with %};
    any other string, braces included, is a literal."""
    machine = one({"Type": "Pass", "Output": {"literal": "total: {% 1 + 1 %}", "expression": "{% 1 + 1 %}",
                                              "plain": "{ not json }"}}, language="JSONata")
    output = json.loads(run(sfn, role_arn, machine, {})["output"])
    assert output == {"literal": "total: {% 1 + 1 %}", "expression": 2, "plain": "{ not json }"}


def test_map_items_path_that_is_not_an_array_fails(sfn: Any, role_arn: str) -> None:
    """state-map-inline.html, ItemsPath: "The value of ItemsPath must be a reference path to a JSON array"; the
    Map fails. The guide names no error for it (moto's, kept, is States.QueryEvaluationError)."""
    machine = one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {"StartAt": "I", "States": {
        "I": {"Type": "Pass", "End": True}}}})
    described = run(sfn, role_arn, machine, {"items": {"not": "an array"}})
    assert described["status"] == "FAILED"


@pytest.mark.parametrize("expression", ["States.ArrayRange(1, 2000, 1)", "States.ArrayPartition($.a, 0)",
                                        "States.StringToJson($.text)", "States.ArrayGetItem($.a, 5)"])
def test_an_intrinsic_outside_its_documented_limits_fails_the_state(sfn: Any, role_arn: str, expression: str) -> None:
    """intrinsic-functions.html: States.ArrayRange builds at most 1,000 items, States.ArrayPartition's chunk size
    is positive, States.StringToJson reads JSON, States.ArrayGetItem an index of the array. The guide names no
    error for a breach: the state fails, as States.Runtime in the engine."""
    described = run(sfn, role_arn, pass_parameters({"v.$": expression}), {"a": [1, 2], "text": "{not json"})
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
