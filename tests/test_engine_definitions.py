"""Definitions validated as AWS validates them: CreateStateMachine, UpdateStateMachine and
ValidateStateMachineDefinition give one verdict, on the embedded engine and on `earlyexit serve`.

The result's shape and the diagnostic codes are the API reference's
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html,
https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html);
each check cites the Developer Guide page that states the rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from endpoint import client
from templates import translated

from earlyexit.engine.runtime.definitions import diagnostics, validation_result

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]


def jsonpath(states: dict[str, Any], start_at: str, **extra: Any) -> dict[str, Any]:
    return {"StartAt": start_at, "States": states, **extra}


def jsonata(states: dict[str, Any], start_at: str) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", "StartAt": start_at, "States": states}


DONE = {"Type": "Succeed"}

# Valid definitions of every query language: JSONPath (Parameters, ResultPath, a Choice with Not), JSONata,
# and a JSONPath machine with one JSONata state (statemachine-structure.html: "individual states can override
# the query language by setting QueryLanguage to JSONata").
VALID = {
    "JSONPath": jsonpath({
        "Shape": {"Type": "Pass", "Parameters": {"x.$": "$.y"}, "ResultPath": "$.r", "Next": "Pick"},
        "Pick": {"Type": "Choice", "Choices": [{"Not": {"Variable": "$.r.x", "IsPresent": True}, "Next": "Done"}],
                 "Default": "Done"},
        "Done": DONE}, "Shape"),
    "JSONata": jsonata({
        "Shape": {"Type": "Pass", "Output": "{% $states.input %}", "Assign": {"seen": "{% 1 %}"}, "Next": "Pick"},
        "Pick": {"Type": "Choice", "Choices": [{"Condition": "{% $seen = 1 %}", "Next": "Done"}], "Default": "Done"},
        "Done": DONE}, "Shape"),
    "mixed": jsonpath({
        "Shape": {"Type": "Pass", "Parameters": {"x.$": "$.y"}, "Next": "Modern"},
        "Modern": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input %}", "Next": "Done"},
        "Done": DONE}, "Shape"),
}

# Refused by moto's own parser, in the middle of a JSONata scope (a JSONPath Choice rule in a JSONata state):
# the definition that used to leave that scope open for every later definition.
REFUSED_BY_THE_PARSER = jsonata({
    "Pick": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Done"}],
             "Default": "Done"},
    "Done": DONE}, "Pick")


def name() -> str:
    return f"definitions-{uuid.uuid4().hex[:10]}"


def codes(found: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(d["code"], d.get("location")) for d in found["diagnostics"]]


def refused(sfn: Any, role_arn: str, definition: dict[str, Any] | str) -> str:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    with pytest.raises(ClientError) as raised:
        sfn.create_state_machine(name=name(), roleArn=role_arn, definition=text)
    assert raised.value.response["Error"]["Code"] == "InvalidDefinition"
    return str(raised.value.response["Error"]["Message"])


# -- the verdicts (each also through CreateStateMachine: the same verdict) --------------------------------

INVALID = {
    # statemachine-structure.html: StartAt "must exactly match (is case sensitive) the name of one of the
    # state objects"; the Next of a state names the next state.
    "StartAt naming no state": (jsonpath({"A": DONE}, "Nowhere"), [("MISSING_TRANSITION_TARGET", "/StartAt")]),
    "Next naming no state": (jsonpath({"A": {"Type": "Pass", "Next": "Nowhere"}}, "A"),
                             [("MISSING_TRANSITION_TARGET", "/States/A/Next")]),
    "Default naming no state": (
        jsonpath({"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "B"}],
                        "Default": "Nowhere"}, "B": DONE}, "A"),
        [("MISSING_TRANSITION_TARGET", "/States/A/Default")]),
    "Catch naming no state": (
        jsonpath({"A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": True,
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nowhere"}]}}, "A"),
        [("MISSING_TRANSITION_TARGET", "/States/A/Catch[0]/Next")]),
    # amazon-states-language-parallel-state.html: "States within a branch can transition only to each other":
    # a branch is a scope of its own.
    "a Parallel branch pointing outside itself": (
        jsonpath({"P": {"Type": "Parallel", "End": True, "Branches": [
            jsonpath({"In": {"Type": "Pass", "Next": "Out"}}, "In")]}, "Out": DONE}, "P"),
        [("MISSING_TRANSITION_TARGET", "/States/P/Branches[0]/States/In/Next"),
         ("MISSING_TRANSITION_TARGET", "/States/Out")]),
    "a Map ItemProcessor pointing outside itself": (
        jsonpath({"M": {"Type": "Map", "End": True, "ItemProcessor": jsonpath(
            {"In": {"Type": "Pass", "Next": "Out"}}, "In")}, "Out": DONE}, "M"),
        [("MISSING_TRANSITION_TARGET", "/States/M/ItemProcessor/States/In/Next"),
         ("MISSING_TRANSITION_TARGET", "/States/Out")]),
    # amazon-states-language-choice-state.html: And, Or and Not hold choice rules that "must not contain
    # Next fields".
    "Next inside an And member": (
        jsonpath({"C": {"Type": "Choice", "Choices": [{"And": [
            {"Variable": "$.x", "IsPresent": True, "Next": "D"}], "Next": "D"}]}, "D": DONE}, "C"),
        [("SCHEMA_VALIDATION_FAILED", "/States/C/Choices[0]/And[0]/Next")]),
    "Next inside a Not member": (
        jsonpath({"C": {"Type": "Choice", "Choices": [{"Not": {"Variable": "$.x", "IsPresent": True, "Next": "D"},
                                                        "Next": "D"}]}, "D": DONE}, "C"),
        [("SCHEMA_VALIDATION_FAILED", "/States/C/Choices[0]/Not/Next")]),
    # transforming-data.html: JSONata states have Arguments and Output instead of the five JSONPath fields.
    "Output in a JSONPath state": (jsonpath({"A": {"Type": "Pass", "Output": {"x": 1}, "End": True}}, "A"),
                                   [("SCHEMA_VALIDATION_FAILED", "/States/A/Output")]),
    "Arguments in a JSONPath state": (
        jsonpath({"A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "Arguments": {},
                        "End": True}}, "A"),
        [("SCHEMA_VALIDATION_FAILED", "/States/A/Arguments")]),
    "Parameters in a JSONata state": (jsonata({"A": {"Type": "Pass", "Parameters": {"x": 1}, "End": True}}, "A"),
                                      [("SCHEMA_VALIDATION_FAILED", "/States/A/Parameters")]),
    "ResultPath in a JSONata state": (jsonata({"A": {"Type": "Pass", "ResultPath": "$.r", "End": True}}, "A"),
                                      [("SCHEMA_VALIDATION_FAILED", "/States/A/ResultPath")]),
    # statemachine-structure.html: a JSONata top level cannot go back to JSONPath states.
    "a JSONPath state in a JSONata machine": (
        jsonata({"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}}, "A"),
        [("SCHEMA_VALIDATION_FAILED", "/States/A/QueryLanguage")]),
    # workflow-variables.html: $states is reserved; a variable is read as $name, assigned as name.
    "Assign of the reserved name states": (
        jsonata({"A": {"Type": "Pass", "Assign": {"states": 1}, "End": True}}, "A"),
        [("SCHEMA_VALIDATION_FAILED", "/States/A/Assign/states")]),
    "Assign of a name starting with $": (
        jsonpath({"A": {"Type": "Pass", "Assign": {"$x": 1}, "End": True}}, "A"),
        [("SCHEMA_VALIDATION_FAILED", "/States/A/Assign/$x")]),
    "Assign in a Succeed state": (jsonata({"A": {"Type": "Succeed", "Assign": {"x": 1}}}, "A"),
                                  [("SCHEMA_VALIDATION_FAILED", "/States/A/Assign")]),
    # amazon-states-language-states.html: the state types.
    "an unknown state Type": (jsonpath({"A": {"Type": "Sleep", "End": True}}, "A"),
                              [("SCHEMA_VALIDATION_FAILED", "/States/A/Type")]),
    "a state with neither Next nor End": (jsonpath({"A": {"Type": "Pass"}}, "A"),
                                          [("SCHEMA_VALIDATION_FAILED", "/States/A")]),
    # Unreachable states are refused (AWS: MISSING_TRANSITION_TARGET 'State "B" is not reachable.').
    "an unreachable state": (jsonpath({"A": DONE, "B": DONE}, "A"), [("MISSING_TRANSITION_TARGET", "/States/B")]),
    # State names are unique in the whole state machine (Amazon States Language specification).
    "a state name used in two branches": (
        jsonpath({"P": {"Type": "Parallel", "End": True, "Branches": [jsonpath({"Same": DONE}, "Same"),
                                                                       jsonpath({"Same": DONE}, "Same")]}}, "P"),
        [("DUPLICATE_STATE_NAME", "/States/P/Branches[1]/States/Same")]),
    "JSON that does not parse": ('{"StartAt": "A", "States": {', [("INVALID_JSON_DESCRIPTION", "/")]),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_definition_fails_validation_with_aws_s_code_and_location(sfn: Any, role_arn: str,
                                                                            case: str) -> None:
    definition, expected = INVALID[case]
    text = definition if isinstance(definition, str) else json.dumps(definition)
    found = sfn.validate_state_machine_definition(definition=text)
    assert found["result"] == "FAIL"
    assert codes(found) == expected
    assert found["truncated"] is False
    assert all(d["severity"] == "ERROR" and d["message"] for d in found["diagnostics"])
    message = refused(sfn, role_arn, text)
    assert message.startswith("Invalid State Machine Definition: '")
    assert all(code in message for code, _ in expected)


def test_the_refusal_names_the_problem_as_aws_words_it(sfn: Any, role_arn: str) -> None:
    message = refused(sfn, role_arn, INVALID["Next naming no state"][0])
    assert message == ("Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: "
                       "Nowhere at /States/A/Next'")
    message = refused(sfn, role_arn, INVALID["an unreachable state"][0])
    assert 'State "B" is not reachable. at /States/B' in message


@pytest.mark.parametrize("language", list(VALID))
def test_a_valid_definition_of_each_query_language_is_ok_and_created(sfn: Any, role_arn: str,
                                                                     language: str) -> None:
    text = json.dumps(VALID[language])
    assert sfn.validate_state_machine_definition(definition=text)["result"] == "OK"
    assert sfn.create_state_machine(name=name(), roleArn=role_arn, definition=text)["stateMachineArn"]


def test_update_state_machine_gives_the_same_verdict(sfn: Any, role_arn: str) -> None:
    arn = sfn.create_state_machine(name=name(), roleArn=role_arn, definition=json.dumps(VALID["JSONPath"]))[
        "stateMachineArn"]
    with pytest.raises(ClientError) as raised:
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(INVALID["Output in a JSONPath state"][0]))
    assert raised.value.response["Error"]["Code"] == "InvalidDefinition"
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(VALID["JSONata"]))
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == VALID["JSONata"]


@pytest.mark.parametrize("pattern", ["either-or", "quorum"])
def test_the_project_s_state_machines_validate_ok(sfn: Any, pattern: str) -> None:
    """The ASL files as the local deploy sends them (DefinitionSubstitutions applied)."""
    template = translated(pattern)
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    text = (ROOT / pattern / "statemachine" / f"{pattern}.asl.json").read_text()
    for key in machine["Properties"].get("DefinitionSubstitutions", {}):
        text = text.replace("${" + key + "}", "60")  # each one a number or inside a string
    found = sfn.validate_state_machine_definition(definition=text)
    assert (found["result"], found["diagnostics"]) == ("OK", [])


def test_the_deployed_state_machines_validate_ok(sfn: Any, either_or: Any, quorum: Any) -> None:
    for stack in (either_or, quorum):
        definition = sfn.describe_state_machine(stateMachineArn=stack.outputs["StateMachineArn"])["definition"]
        assert sfn.validate_state_machine_definition(definition=definition)["result"] == "OK"


# -- the request's own constraints (API reference: definition 1 to 1,048,576 characters, severity ERROR or
#    WARNING, maxResults 0 to 100) ------------------------------------------------------------------------


def test_max_results_bounds_the_diagnostics_and_says_they_were_truncated(sfn: Any) -> None:
    states = {f"S{i}": {"Type": "Pass", "Next": f"Nowhere{i}"} for i in range(3)}
    found = sfn.validate_state_machine_definition(definition=json.dumps(jsonpath(states, "S0")), maxResults=2)
    assert (found["result"], len(found["diagnostics"]), found["truncated"]) == ("FAIL", 2, True)
    every = sfn.validate_state_machine_definition(definition=json.dumps(jsonpath(states, "S0")), maxResults=0)
    assert every["truncated"] is False and len(every["diagnostics"]) == 5  # 3 targets, 2 unreachable


def test_a_request_outside_the_api_s_constraints_is_a_validation_exception(served: dict[str, Any]) -> None:
    """botocore checks these before sending; the AWS CLI with parameter validation off sends them as they are."""
    raw = boto3.client("stepfunctions", endpoint_url=served["endpoint"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(parameter_validation=False))
    for request in ({"definition": ""}, {"definition": "{}", "severity": "NOPE"},
                    {"definition": "{}", "maxResults": 101}):
        with pytest.raises(ClientError) as raised:
            raw.validate_state_machine_definition(**request)
        assert raised.value.response["Error"]["Code"] == "ValidationException", request


def test_the_module_verdict_is_the_operation_s() -> None:
    assert validation_result(json.dumps(VALID["mixed"])) == {"result": "OK", "diagnostics": [], "truncated": False}
    assert [d.code for d in diagnostics(None)] == ["MISSING_DESCRIPTION"]


# -- `earlyexit serve` answers the operation as AWS does -------------------------------------------------


def test_validate_state_machine_definition_through_the_local_endpoint(served: dict[str, Any]) -> None:
    sfn = client(served["endpoint"], "stepfunctions")
    assert sfn.validate_state_machine_definition(definition=json.dumps(VALID["JSONata"]))["result"] == "OK"
    found = sfn.validate_state_machine_definition(definition=json.dumps(INVALID["Next naming no state"][0]))
    assert codes(found) == [("MISSING_TRANSITION_TARGET", "/States/A/Next")]
    for pattern in ("either-or", "quorum"):
        arn = served["stacks"][pattern]["StateMachineArn"]
        definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        assert sfn.validate_state_machine_definition(definition=definition)["result"] == "OK"


# -- no state leaks from one definition to the next --------------------------------------------------------


def test_after_a_refused_jsonata_definition_valid_ones_of_every_query_language_are_created(sfn: Any,
                                                                                          role_arn: str) -> None:
    """moto's parser kept its query-language scopes in a list shared by every parse: one JSONata definition
    refused mid-scope made every later JSONPath definition read as JSONata (statemachine-structure.html: a
    definition without QueryLanguage is JSONPath)."""
    for _ in range(2):
        message = refused(sfn, role_arn, REFUSED_BY_THE_PARSER)
        assert "SCHEMA_VALIDATION_FAILED" in message
        for language, definition in VALID.items():
            text = json.dumps(definition)
            assert sfn.validate_state_machine_definition(definition=text)["result"] == "OK", language
            sfn.create_state_machine(name=name(), roleArn=role_arn, definition=text)


def test_no_state_leaks_between_embedded_clouds_in_a_fresh_process() -> None:
    """In a process of its own (nothing installed before): refuse, create every language, in two embedded
    clouds one after the other."""
    script = textwrap.dedent(f"""
        import json
        from botocore.exceptions import ClientError
        from earlyexit.local import embedded_cloud
        REFUSED = {json.dumps(REFUSED_BY_THE_PARSER)!r}
        VALID = {json.dumps(VALID)!r}
        for round in range(2):
            with embedded_cloud() as cloud:
                sfn = cloud.client("stepfunctions")
                role = "arn:aws:iam::123456789012:role/definitions"
                try:
                    sfn.create_state_machine(name=f"refused{{round}}", roleArn=role, definition=REFUSED)
                    raise SystemExit("the invalid definition was created")
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "InvalidDefinition", error
                for language, definition in json.loads(VALID).items():
                    sfn.create_state_machine(name=f"{{language}}{{round}}", roleArn=role,
                                             definition=json.dumps(definition))
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
