"""Static checks of both SAM stacks and their ASL definitions: nothing is deployed or executed.

Each test states one property of a template or a state machine definition. Expected values
come from the contract (docs/ and the README) or are derived from the files themselves
(e.g. the IAM actions the role must grant are read off the ASL's Task states).
"""

from __future__ import annotations

import copy
import json

import cfnlint.api
import pytest
from jsonata import Jsonata
from jsonata.jexception import JException
from templates import (
    BARE_DOLLAR,
    CONTRACT_OUTPUTS,
    CONTRACT_PARAMETERS,
    IF_NOT_EXISTS,
    PHYSICAL_NAME_PROPERTIES,
    PLACEHOLDER,
    PREDEFINED_ERRORS,
    QUOTED,
    STACKS,
    actions_called,
    actions_granted,
    actions_of,
    allow_statements,
    as_list,
    asl_path,
    bracket_problem,
    error_names_mentioned,
    flow_ends,
    flow_states,
    iam_action,
    is_arn_of,
    jsonata_body,
    jsonata_expressions,
    load_asl,
    only,
    parallel_branches,
    reachable,
    refers_to,
    rendered_asl,
    resources_of_type,
    run_cfn_lint,
    run_sam_validate,
    sam_state_machine,
    sam_template,
    state_machine_role,
    strings_in,
    substitutions,
    task_states,
    thrown_errors,
    transitions,
    translated,
    walk_scopes,
    walk_states,
)

from earlyexit import states

# --- fixtures (pattern, cfn and role come from conftest.py) ------------------------------


@pytest.fixture
def template(pattern: str) -> dict:
    return sam_template(pattern)


@pytest.fixture
def asl(pattern: str) -> dict:
    return load_asl(pattern)


@pytest.fixture
def state_machine(cfn: dict) -> dict:
    return only(resources_of_type(cfn, "AWS::StepFunctions::StateMachine"))[1]["Properties"]


@pytest.fixture
def tally_table() -> tuple[str, dict]:
    """(logical id, Properties) of the quorum stack's DynamoDB table."""
    table_id, table = only(resources_of_type(sam_template("quorum"), "AWS::DynamoDB::Table"))
    return table_id, table["Properties"]


@pytest.fixture
def tally_tasks() -> dict[str, dict]:
    """The quorum ASL's DynamoDB Task states by name."""
    tasks = {n: s for _, n, s in task_states(load_asl("quorum")) if iam_action(s["Resource"]).startswith("dynamodb:")}
    assert tasks, "the quorum ASL has no DynamoDB Task state"
    return tasks


# --- the tools AWS users run ---------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_cfn_lint_reports_nothing(stack: str) -> None:
    result = run_cfn_lint(stack)
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout + result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_sam_validate_lint_accepts_the_template(stack: str) -> None:
    result = run_sam_validate(stack)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output


# --- the translated (deployed) CloudFormation ---------------------------------------------


def test_translation_leaves_plain_cloudformation(cfn: dict) -> None:
    serverless = {rid: r["Type"] for rid, r in cfn["Resources"].items() if r["Type"].startswith("AWS::Serverless::")}
    assert not serverless
    assert len(resources_of_type(cfn, "AWS::StepFunctions::StateMachine")) == 1


def test_state_machine_is_a_standard_workflow(state_machine: dict) -> None:
    assert state_machine.get("StateMachineType") == "STANDARD"


def test_state_machine_logs_to_a_log_group_of_the_stack(cfn: dict, state_machine: dict) -> None:
    # The level and the destinations' form are CT.STEPFUNCTIONS.PR.1 (tests/test_security.py).
    logging = state_machine.get("LoggingConfiguration", {})
    log_groups = resources_of_type(cfn, "AWS::Logs::LogGroup")
    destinations = [d.get("CloudWatchLogsLogGroup", {}).get("LogGroupArn") for d in logging.get("Destinations", [])]
    assert destinations, "no log destination"
    for arn in destinations:
        assert any(is_arn_of(arn, log_group_id) for log_group_id in log_groups), arn


def test_every_log_group_has_a_retention(cfn: dict) -> None:
    log_groups = resources_of_type(cfn, "AWS::Logs::LogGroup")
    assert log_groups
    without_retention = [rid for rid, lg in log_groups.items() if not lg.get("Properties", {}).get("RetentionInDays")]
    assert without_retention == []


# --- parameters, outputs and names ---------------------------------------------------------


def test_parameters_follow_the_contract(pattern: str, template: dict) -> None:
    parameters = {
        name: (p.get("Type"), str(p.get("Default"))) for name, p in template.get("Parameters", {}).items()
    }
    expected = {name: (type_, str(default)) for name, (type_, default) in CONTRACT_PARAMETERS[pattern].items()}
    assert parameters == expected


def test_outputs_follow_the_contract(pattern: str, template: dict) -> None:
    assert set(template.get("Outputs", {})) == CONTRACT_OUTPUTS[pattern]


def test_outputs_refer_to_the_stacks_resources(template: dict) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    state_machine_id = only(resources_of_type(template, "AWS::Serverless::StateMachine"))[0]
    assert outputs["StateMachineArn"] == {"Ref": state_machine_id}
    assert as_list(outputs["StateMachineName"].get("Fn::GetAtt")) in (
        [state_machine_id, "Name"],
        [f"{state_machine_id}.Name"],
    )
    if "TableName" in outputs:
        table_id = only(resources_of_type(template, "AWS::DynamoDB::Table"))[0]
        assert outputs["TableName"] == {"Ref": table_id}


def test_no_resource_has_a_hard_coded_physical_name(cfn: dict) -> None:
    named = {
        (rid, prop)
        for rid, resource in cfn["Resources"].items()
        for prop in PHYSICAL_NAME_PROPERTIES
        if prop in resource.get("Properties", {})
    }
    assert named == set()


def test_log_group_names_are_scoped_to_the_stack(cfn: dict) -> None:
    log_groups = resources_of_type(cfn, "AWS::Logs::LogGroup")
    names = {rid: lg["Properties"].get("LogGroupName") for rid, lg in log_groups.items()}
    fixed = {rid: name for rid, name in names.items() if name is not None and not refers_to(name, "AWS::StackName")}
    assert fixed == {}


# --- DefinitionSubstitutions ---------------------------------------------------------------


def test_every_asl_placeholder_has_a_substitution(pattern: str) -> None:
    used = set(PLACEHOLDER.findall(asl_path(pattern).read_text()))
    assert used, "the ASL uses no placeholder at all"
    assert used - set(substitutions(pattern)) == set()


def test_every_substitution_is_used_by_the_asl(pattern: str) -> None:
    used = set(PLACEHOLDER.findall(asl_path(pattern).read_text()))
    assert set(substitutions(pattern)) - used == set()


# --- IAM: the role allows exactly what the ASL calls --------------------------------------


def test_role_grants_exactly_the_actions_the_asl_calls(asl: dict, role: dict) -> None:
    assert actions_granted(role) == actions_called(asl)


def test_put_events_is_limited_to_the_event_bus_parameter(role: dict) -> None:
    statements = [s for s in allow_statements(role) if "events:PutEvents" in actions_of(s)]
    assert statements, "no statement allows events:PutEvents"
    for statement in statements:
        resources = as_list(statement["Resource"])
        assert resources and all(refers_to(r, "EventBusName") for r in resources), resources


def test_tally_actions_are_limited_to_the_tally_table(tally_table: tuple[str, dict]) -> None:
    table_id, _ = tally_table
    statements = [
        s for s in allow_statements(state_machine_role(translated("quorum")))
        if any(a.startswith("dynamodb:") for a in actions_of(s))
    ]
    assert statements, "no statement allows a DynamoDB action"
    for statement in statements:
        resources = as_list(statement["Resource"])
        assert len(resources) == 1 and is_arn_of(resources[0], table_id), resources


# --- error names ---------------------------------------------------------------------------


def test_no_custom_error_uses_the_reserved_states_prefix(asl: dict) -> None:
    names = set()
    for _, _, state in walk_states(asl):
        if state.get("Type") == "Fail":
            names |= error_names_mentioned(state)
        for handler in state.get("Catch", []) + state.get("Retry", []):
            names |= set(handler["ErrorEquals"])
    reserved = {name for name in names if name.startswith("States.") and name not in PREDEFINED_ERRORS}
    assert reserved == set()


def test_every_flow_can_end_the_parallel_early_with_a_fail_state(asl: dict) -> None:
    branches = list(parallel_branches(asl))
    assert branches, "no Parallel state"
    silent = [
        (name, number) for name, _, number, branch in branches
        if not any(thrown_errors(s) for s in flow_states(branch).values() if s["Type"] == "Fail")
    ]
    assert silent == []


def test_parallel_catch_names_every_error_its_flows_throw(asl: dict) -> None:
    for name, parallel, number, branch in parallel_branches(asl):
        caught = {e for catcher in parallel.get("Catch", []) for e in catcher["ErrorEquals"]}
        assert "States.ALL" not in caught, f"{name} catches States.ALL"
        thrown = set().union(*(thrown_errors(s) for s in flow_states(branch).values() if s["Type"] == "Fail"))
        assert thrown - caught == set(), f"{name} / branch {number}"


# --- structure -----------------------------------------------------------------------------


def test_every_transition_names_a_state_of_its_scope(asl: dict) -> None:
    dangling = []
    for path, scope in walk_scopes(asl):
        names = set(scope["States"])
        if scope["StartAt"] not in names:
            dangling.append((path, "StartAt", scope["StartAt"]))
        dangling += [(path, n, t) for n, s in scope["States"].items() for t in transitions(s) if t not in names]
    assert dangling == []


def test_every_state_is_reachable_from_start_at(asl: dict) -> None:
    unreachable = {path: set(scope["States"]) - reachable(scope) for path, scope in walk_scopes(asl)}
    assert {path: names for path, names in unreachable.items() if names} == {}


def test_fail_states_in_flows_are_terminal(asl: dict) -> None:
    not_terminal = [
        (name, number, state_name)
        for name, _, number, branch in parallel_branches(asl)
        for state_name, state in flow_states(branch).items()
        if state["Type"] == "Fail" and ({"Next", "End", "Catch"} & set(state))
    ]
    assert not_terminal == []


def test_every_flow_ends_in_a_fail_or_succeed_state(asl: dict) -> None:
    wrong_ends = []
    for name, _, number, branch in parallel_branches(asl):
        ends = flow_ends(branch)
        assert ends, f"{name} / branch {number} has no end"
        wrong_ends += [(name, number, n) for n, s in ends.items() if s["Type"] not in ("Fail", "Succeed")]
    assert wrong_ends == []


# --- JSONata ------------------------------------------------------------------------------


def test_asl_declares_jsonata(asl: dict) -> None:
    assert asl.get("QueryLanguage") == "JSONata"
    languages = {name: state.get("QueryLanguage") for _, name, state in walk_states(asl)}
    overrides = {name: language for name, language in languages.items() if language not in (None, "JSONata")}
    assert overrides == {}


def test_jsonata_expressions_fill_their_whole_string(pattern: str) -> None:
    partial = [s for s in strings_in(rendered_asl(pattern)) if "{%" in s and jsonata_body(s) is None]
    assert partial == []


def test_jsonata_expressions_have_balanced_brackets(pattern: str) -> None:
    expressions = jsonata_expressions(rendered_asl(pattern))
    assert expressions, "no JSONata expression found"
    problems = {e: p for e in expressions if (p := bracket_problem(e))}
    assert problems == {}


def test_jsonata_expressions_use_no_bare_dollar(pattern: str) -> None:
    bare = [e for e in jsonata_expressions(rendered_asl(pattern)) if BARE_DOLLAR.search(QUOTED.sub("''", e))]
    assert bare == []


# --- Standard workflow ---------------------------------------------------------------------


def test_callback_flows_run_in_a_standard_workflow(pattern: str, asl: dict) -> None:
    """Express workflows cannot wait for task tokens, so the stack must be STANDARD."""
    callbacks = [n for _, n, s in task_states(asl) if s["Resource"].endswith(".waitForTaskToken")]
    assert callbacks, "the approval requests must wait for a task token (the contract)"
    _, state_machine = sam_state_machine(pattern)
    assert state_machine["Properties"].get("Type", "STANDARD") == "STANDARD"


# --- quorum: the tally table ---------------------------------------------------------------


def test_tally_tasks_address_the_stacks_table(tally_table: tuple[str, dict], tally_tasks: dict[str, dict]) -> None:
    table_id, _ = tally_table
    table_names = {PLACEHOLDER.fullmatch(t["Arguments"]["TableName"]) for t in tally_tasks.values()}
    assert None not in table_names, "a TableName is not a single ${placeholder}"
    placeholders = {m.group(1) for m in table_names}
    assert all(substitutions("quorum").get(p) == {"Ref": table_id} for p in placeholders), placeholders


def test_tally_hash_key_is_the_string_key_the_asl_uses(
    tally_table: tuple[str, dict], tally_tasks: dict[str, dict]
) -> None:
    _, table = tally_table
    keys = {name: value for task in tally_tasks.values() for name, value in task["Arguments"]["Key"].items()}
    assert len(keys) == 1, f"the tasks use different keys: {sorted(keys)}"
    (key_name, key_value), = keys.items()
    assert list(key_value) == ["S"]
    hash_keys = [k["AttributeName"] for k in table["KeySchema"] if k["KeyType"] == "HASH"]
    assert hash_keys == [key_name]
    assert len(table["KeySchema"]) == 1, "the ASL addresses items by the hash key alone"
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert types.get(key_name) == "S"


def test_tally_table_bills_on_demand(tally_table: tuple[str, dict]) -> None:
    assert tally_table[1].get("BillingMode") == "PAY_PER_REQUEST"


def test_tally_items_expire_on_the_attribute_the_asl_sets_once(
    tally_table: tuple[str, dict], tally_tasks: dict[str, dict]
) -> None:
    expressions = [
        t["Arguments"]["UpdateExpression"] for t in tally_tasks.values() if t["Resource"].endswith(":updateItem")
    ]
    assert expressions, "no updateItem task"
    attributes = {m["attr"] for e in expressions for m in IF_NOT_EXISTS.finditer(e)}
    assert len(attributes) == 1, f"expected one if_not_exists TTL attribute, found {attributes}"
    ttl = tally_table[1].get("TimeToLiveSpecification", {})
    assert (ttl.get("AttributeName"), ttl.get("Enabled")) == (attributes.pop(), True)


# --- checks that need the definition inline or parsed ---------------------------------------


def inlined(pattern: str, definition: dict) -> dict:
    """The translated template with ``definition`` inline (cfn-lint validates only inline definitions)."""
    cfn = copy.deepcopy(translated(pattern))
    _, state_machine = only(resources_of_type(cfn, "AWS::StepFunctions::StateMachine"))
    del state_machine["Properties"]["DefinitionS3Location"]
    state_machine["Properties"]["Definition"] = definition
    return cfn


def lint_matches(template: dict) -> list[str]:
    matches = cfnlint.api.lint(json.dumps(template), config=cfnlint.api.ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message}" for m in matches]


def test_cfn_lint_validates_the_inlined_definition_without_a_finding(pattern: str) -> None:
    assert lint_matches(inlined(pattern, load_asl(pattern))) == []


def test_cfn_lint_of_the_inlined_definition_catches_an_unknown_field(pattern: str) -> None:
    broken = copy.deepcopy(load_asl(pattern))
    broken["States"]["Validate input"]["Defualt"] = "Decided"
    assert any(finding.startswith("E3601") for finding in lint_matches(inlined(pattern, broken)))


def test_every_jsonata_expression_parses_with_the_pinned_evaluator(pattern: str) -> None:
    unparsable = {}
    for expression in jsonata_expressions(rendered_asl(pattern)):
        try:
            Jsonata(expression)
        except JException as error:
            unparsable[expression] = str(error)
    assert unparsable == {}


def test_the_jsonata_parser_refuses_a_broken_expression() -> None:
    with pytest.raises(JException):
        Jsonata("$count($states.input.approvers")


@pytest.mark.parametrize(("pattern", "names"), [("either-or", states.EITHER_OR.all()), ("quorum", states.QUORUM.all())])
def test_state_names_the_package_reads_are_exactly_the_definitions(pattern: str, names: set[str]) -> None:
    assert {name for _, name, _ in walk_states(load_asl(pattern))} == names
