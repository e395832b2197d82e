"""Static checks of the inbox stack (inbox/template.yaml): nothing is deployed or executed.

Each test states one property of the template as written or of its translation to plain
CloudFormation (what CloudFormation deploys). The IAM actions each function's role must grant are
not restated: they are derived from the boto3 calls its handler module makes, read with `ast`
(tests/test_templates.py does the same for the state machines, from the ASL's Task states).
The security gates (cfn-lint with the serverless rules, checkov) run on the inbox in test_security.py.
"""

from __future__ import annotations

import ast
import functools
import importlib.resources
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from templates import (
    INBOX,
    PATTERNS,
    actions_of,
    allow_statements,
    as_list,
    iam_action,
    is_arn_of,
    is_wildcard,
    load_asl,
    only,
    refers_to,
    resources_of_type,
    sam_template,
    task_states,
    translated,
    trust,
)

from earlyexit.patterns import stack_folder

FUNCTION = "AWS::Lambda::Function"
SAM_FUNCTION = "AWS::Serverless::Function"
ROLE = "AWS::IAM::Role"
TABLE = "AWS::DynamoDB::Table"
LOG_GROUP = "AWS::Logs::LogGroup"
QUEUE = "AWS::SQS::Queue"
HTTP_API = "AWS::ApiGatewayV2::Api"

# What the inbox promises (README, docs): parameters name -> (Type, Default), outputs, routes, events.
PARAMETERS = {"EventBusName": ("String", "default"), "NotificationTopicArn": ("String", "")}
OUTPUTS = {"InboxUrl", "NotificationTopicArn", "RequestsTableName"}
ROUTES = {("GET", "/requests/{id}"), ("POST", "/requests/{id}")}
EVENT_SOURCE = "earlyexit"
DETAIL_TYPES = {"ApprovalRequested", "ApprovalReminder"}
# The topic the stack publishes to: its own, or the one NotificationTopicArn names.
TOPIC = {"Fn::If": ["CreateTopic", {"Ref": "NotificationTopic"}, {"Ref": "NotificationTopicArn"}]}
RUNTIME = re.compile(r"^python3\.1\d$")
# The actions whose Resource the scope tests below check (a prefix covers a whole service).
SCOPE_CHECKED = ("dynamodb:", "sns:", "states:DescribeExecution", "states:SendTaskSuccess", "sqs:")
EXECUTIONS_OF_THIS_ACCOUNT_AND_REGION = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
MANAGED_POLICIES = {  # what SAM attaches to a function's role, and why
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # the function's own log streams
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # Tracing: Active (X-Ray has no resource-level permissions)
}

# The property that gives a resource of each type its physical name; None: the type has no name of its own
# (or one scoped to its parent, as a stage to its API). A type missing here fails the naming test.
NAME_PROPERTY = {
    TABLE: "TableName",
    "AWS::SNS::Topic": "TopicName",
    QUEUE: "QueueName",
    "AWS::SQS::QueuePolicy": None,
    LOG_GROUP: "LogGroupName",  # allowed when scoped to the stack or to one of its functions
    FUNCTION: "FunctionName",
    "AWS::Lambda::EventInvokeConfig": None,  # its FunctionName refers to the function it configures
    "AWS::Lambda::Permission": None,
    ROLE: "RoleName",
    "AWS::Events::Rule": "Name",
    HTTP_API: "Name",
    "AWS::ApiGatewayV2::Stage": None,
}

# --- deriving the IAM actions from the handlers' boto3 calls --------------------------------

# The IAM action(s) of each boto3 client method: (client service name, method) -> actions. A method missing
# here fails the derivation: add its row from the Service Authorization Reference
# (https://docs.aws.amazon.com/service-authorization/latest/reference/).
METHOD_ACTIONS = {
    ("dynamodb", "get_item"): {"dynamodb:GetItem"},
    ("dynamodb", "put_item"): {"dynamodb:PutItem"},
    ("dynamodb", "update_item"): {"dynamodb:UpdateItem"},
    ("dynamodb", "delete_item"): {"dynamodb:DeleteItem"},
    ("dynamodb", "query"): {"dynamodb:Query"},
    ("sns", "publish"): {"sns:Publish"},
    ("stepfunctions", "describe_execution"): {"states:DescribeExecution"},
    ("stepfunctions", "send_task_success"): {"states:SendTaskSuccess"},
    ("stepfunctions", "send_task_failure"): {"states:SendTaskFailure"},
}
# TransactWriteItems has no IAM action of its own: each item needs the action of the write it makes.
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def _clients(tree: ast.Module, where: str) -> dict[str, str]:
    """Client variable -> service, for every boto3 client the module creates; any other use of boto3 fails."""
    clients: dict[str, str] = {}
    followed: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if (
                isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
                and call.func.value.id == "boto3" and call.func.attr == "client"
                and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and len(call.args) == 1 and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
            ):
                clients[node.targets[0].id] = call.args[0].value
                followed.add(id(call.func.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "boto3":
            raise AssertionError(f"{where}:{node.lineno}: from boto3 import ...: the derivation cannot follow it")
        if isinstance(node, ast.Import) and any(a.name == "boto3" and a.asname for a in node.names):
            raise AssertionError(f"{where}:{node.lineno}: boto3 imported under another name")
        if isinstance(node, ast.Name) and node.id == "boto3" and id(node) not in followed:
            raise AssertionError(
                f"{where}:{node.lineno}: boto3 used other than as a module-level NAME = boto3.client('service')"
            )
    return clients


def _transact_actions(call: ast.Call, where: str) -> set[str]:
    items = next((k.value for k in call.keywords if k.arg == "TransactItems"), None)
    if not isinstance(items, ast.List) or not all(isinstance(i, ast.Dict) for i in items.elts):
        raise AssertionError(f"{where}:{call.lineno}: TransactItems is not a list of dict literals")
    actions = set()
    for item in items.elts:
        for key in item.keys:
            kind = key.value if isinstance(key, ast.Constant) else None
            if kind not in TRANSACT_ITEM_ACTIONS:
                raise AssertionError(f"{where}:{call.lineno}: transaction item {kind!r} has no known IAM action")
            actions.add(TRANSACT_ITEM_ACTIONS[kind])
    return actions


def client_calls(source: str, where: str) -> Iterator[tuple[str, str, ast.Call]]:
    """(service, method, call) for every call of a boto3 client method in a module's source.

    A client used in any other way than ``client.method(...)`` or ``client.exceptions`` fails: a call the
    derivation cannot see must not pass unnoticed.
    """
    tree = ast.parse(source)
    clients = _clients(tree, where)
    parents = {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id in clients and isinstance(node.ctx, ast.Load)):
            continue
        attribute = parents.get(id(node))
        if isinstance(attribute, ast.Attribute) and attribute.attr == "exceptions":
            continue
        call = parents.get(id(attribute)) if isinstance(attribute, ast.Attribute) else None
        if not (isinstance(call, ast.Call) and call.func is attribute):
            raise AssertionError(f"{where}:{node.lineno}: client {node.id} used other than as {node.id}.method(...)")
        yield clients[node.id], attribute.attr, call


def actions_of_calls(source: str, where: str) -> set[str]:
    """The IAM actions the boto3 calls in a module's source need; a method of no known action fails."""
    actions: set[str] = set()
    for service, method, call in client_calls(source, where):
        if (service, method) == ("dynamodb", "transact_write_items"):
            actions |= _transact_actions(call, where)
        elif (service, method) in METHOD_ACTIONS:
            actions |= METHOD_ACTIONS[service, method]
        else:
            raise AssertionError(f"{where}:{call.lineno}: no IAM action known for {service}.{method} (METHOD_ACTIONS)")
    return actions


def handler_modules(code_dir: Path, handler: str) -> list[Path]:
    """The handler's module and, transitively, every module of the code directory it imports."""
    todo, found = [handler.rsplit(".", 1)[0]], []
    while todo:
        path = code_dir / f"{todo.pop()}.py"
        if path in found or not path.is_file():
            continue
        found.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                todo.append(node.module)
    return found


def actions_called(code_dir: Path, handler: str) -> set[str]:
    """The IAM actions a handler's code calls (its module and the local modules it imports)."""
    modules = handler_modules(code_dir, handler)
    assert modules, f"no module {handler} in {code_dir}"
    return set().union(*(actions_of_calls(path.read_text(), path.name) for path in modules))


def code_dir(function_id: str) -> Path:
    """The function's code folder: its CodeUri, or the one of Globals.Function."""
    template = sam_template(INBOX)
    properties = template["Resources"][function_id]["Properties"]
    return stack_folder(INBOX).path / (properties.get("CodeUri") or template["Globals"]["Function"]["CodeUri"])


def handler_of(function_id: str) -> str:
    return translated(INBOX)["Resources"][function_id]["Properties"]["Handler"]


def on_failure_queues(cfn: dict, function_id: str) -> list[str]:
    """The queues the function's asynchronous invocations go to (EventInvokeConfig destinations); a destination
    of another kind fails, since SAM would grant other actions for it."""
    destinations = [
        outcome.get("Destination")
        for config in resources_of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"].get("FunctionName") == {"Ref": function_id}
        for outcome in config["Properties"].get("DestinationConfig", {}).values()
    ]
    queues = [q for d in destinations for q in resources_of_type(cfn, QUEUE) if is_arn_of(d, q)]
    assert len(queues) == len(destinations), f"{function_id}: a destination that is not a queue of the stack"
    return queues


def actions_needed(cfn: dict, function_id: str) -> set[str]:
    """What the function's role must allow: the actions its code calls, and sqs:SendMessage when its
    asynchronous invocations have an on-failure queue (Lambda sends there with the function's role)."""
    sends = {"sqs:SendMessage"} if on_failure_queues(cfn, function_id) else set()
    return actions_called(code_dir(function_id), handler_of(function_id)) | sends


def function_role(cfn: dict, function_id: str) -> tuple[str, dict]:
    role_arn = cfn["Resources"][function_id]["Properties"]["Role"]
    roles = [rid for rid in resources_of_type(cfn, ROLE) if is_arn_of(role_arn, rid)]
    assert len(roles) == 1, f"{function_id}: the role is not a role of the stack: {role_arn}"
    return roles[0], cfn["Resources"][roles[0]]


def granted(role: dict) -> set[str]:
    return set().union(*(actions_of(s) for s in allow_statements(role)))


def statements_allowing(role: dict, prefix: str) -> list[dict]:
    """The Allow statements with an action starting with ``prefix`` ("dynamodb:" or a whole action name)."""
    return [s for s in allow_statements(role) if any(a.startswith(prefix) for a in actions_of(s))]



@functools.lru_cache
def iam_reference() -> dict:
    """cfn-lint's copy of the Service Authorization Reference: service -> {"Actions": {action: {"Resources"}}}."""
    return json.loads((importlib.resources.files("cfnlint.data.AdditionalSpecs") / "Policies.json").read_text())


def resource_types_of(action: str) -> list[str] | None:
    """The resource types IAM defines for an action ([] for none), or None for an action IAM does not define."""
    service, name = action.split(":", 1)
    entry = iam_reference().get(service, {}).get("Actions", {}).get(name.lower())
    return None if entry is None else entry.get("Resources", [])


FUNCTIONS = sorted(resources_of_type(translated(INBOX), FUNCTION))


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def template() -> dict:
    """inbox/template.yaml as written."""
    return sam_template(INBOX)


@pytest.fixture
def cfn() -> dict:
    """The inbox translated to plain CloudFormation."""
    return translated(INBOX)


@pytest.fixture(params=FUNCTIONS)
def function_id(request: pytest.FixtureRequest) -> str:
    """Each function of the inbox in turn."""
    return str(request.param)


@pytest.fixture
def role(cfn: dict, function_id: str) -> dict:
    """The function's execution role."""
    return function_role(cfn, function_id)[1]


@pytest.fixture
def table_id(cfn: dict) -> str:
    return only(resources_of_type(cfn, TABLE))[0]


@pytest.fixture
def table(cfn: dict, table_id: str) -> dict:
    return cfn["Resources"][table_id]["Properties"]


# --- the tools AWS users run ------------------------------------------------------------------


def test_translation_leaves_plain_cloudformation(cfn: dict) -> None:
    serverless = {rid: r["Type"] for rid, r in cfn["Resources"].items() if r["Type"].startswith("AWS::Serverless::")}
    assert serverless == {}
    assert "Transform" not in cfn
    assert set(resources_of_type(cfn, FUNCTION)) == set(resources_of_type(sam_template(INBOX), SAM_FUNCTION))


# --- parameters, outputs and names -----------------------------------------------------------


def test_parameters_are_the_event_bus_and_an_optional_topic(template: dict) -> None:
    parameters = {name: (p.get("Type"), str(p.get("Default"))) for name, p in template.get("Parameters", {}).items()}
    assert parameters == PARAMETERS


def test_outputs_are_the_url_the_topic_and_the_table(template: dict) -> None:
    assert set(template.get("Outputs", {})) == OUTPUTS


def test_outputs_refer_to_the_stacks_resources(template: dict) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    api_id = only(resources_of_type(template, "AWS::Serverless::HttpApi"))[0]
    table_id = only(resources_of_type(template, TABLE))[0]
    assert outputs["InboxUrl"] == {"Fn::GetAtt": [api_id, "ApiEndpoint"]}
    assert outputs["RequestsTableName"] == {"Ref": table_id}
    assert outputs["NotificationTopicArn"] == TOPIC


def test_every_resource_type_has_a_known_naming_property(cfn: dict) -> None:
    """The naming test below knows every type the stack deploys (a new type must be added to NAME_PROPERTY)."""
    assert {r["Type"] for r in cfn["Resources"].values()} - set(NAME_PROPERTY) == set()


def test_no_resource_has_a_hard_coded_physical_name(cfn: dict) -> None:
    """CloudFormation names every resource after the stack, so the inbox can be deployed twice side by side."""
    named = {
        (rid, NAME_PROPERTY[r["Type"]])
        for rid, r in cfn["Resources"].items()
        if r["Type"] != LOG_GROUP and NAME_PROPERTY.get(r["Type"]) in r.get("Properties", {})
    }
    assert named == set()


def test_log_group_names_are_scoped_to_the_stack_or_one_of_its_functions(cfn: dict) -> None:
    functions = resources_of_type(cfn, FUNCTION)
    names = {rid: lg["Properties"].get("LogGroupName") for rid, lg in resources_of_type(cfn, LOG_GROUP).items()}
    fixed = {
        rid: name for rid, name in names.items()
        if name is not None and not any(refers_to(name, scope) for scope in ("AWS::StackName", *functions))
    }
    assert fixed == {}


def test_every_log_group_has_a_retention(cfn: dict) -> None:
    log_groups = resources_of_type(cfn, LOG_GROUP)
    assert log_groups
    without_retention = [rid for rid, lg in log_groups.items() if not lg["Properties"].get("RetentionInDays")]
    assert without_retention == []


def test_each_function_logs_to_a_log_group_of_the_stack(cfn: dict, function_id: str) -> None:
    """Lambda writes to /aws/lambda/<function name>: the stack declares that group (with its retention), else
    Lambda would create it on first use, kept forever."""
    names = [lg["Properties"].get("LogGroupName") for lg in resources_of_type(cfn, LOG_GROUP).values()]
    assert {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"} in names, names


# --- the functions ----------------------------------------------------------------------------


def test_each_function_runs_a_supported_python_3_runtime(cfn: dict, function_id: str) -> None:
    assert RUNTIME.match(cfn["Resources"][function_id]["Properties"].get("Runtime", ""))


def test_each_function_traces_with_xray(cfn: dict, function_id: str) -> None:
    assert cfn["Resources"][function_id]["Properties"].get("TracingConfig") == {"Mode": "Active"}


# --- the EventBridge rule ---------------------------------------------------------------------


def test_the_rule_matches_approval_requests_and_reminders_on_the_event_bus_parameter(cfn: dict) -> None:
    _, rule = only(resources_of_type(cfn, "AWS::Events::Rule"))
    pattern = rule["Properties"]["EventPattern"]
    assert set(pattern) == {"source", "detail-type"}
    assert pattern["source"] == [EVENT_SOURCE]
    assert sorted(pattern["detail-type"]) == sorted(DETAIL_TYPES)
    assert rule["Properties"].get("EventBusName") == {"Ref": "EventBusName"}


def test_the_rule_invokes_the_notify_function_only(cfn: dict) -> None:
    _, rule = only(resources_of_type(cfn, "AWS::Events::Rule"))
    targets = [t["Arn"] for t in rule["Properties"]["Targets"]]
    assert len(targets) == 1 and is_arn_of(targets[0], "NotifyFunction"), targets


def put_entries(entries: list[dict] | str) -> set[tuple[str, str]]:
    """(Source, DetailType) of a PutEvents task's entries: a list, or a JSONata expression that builds them (the
    reminders' entries, one per approver), read from the literals it writes them with."""
    if isinstance(entries, list):
        return {(entry["Source"], entry["DetailType"]) for entry in entries}
    pairs = set(zip(re.findall(r"'Source': '([^']+)'", entries), re.findall(r"'DetailType': '([^']+)'", entries),
                    strict=True))
    assert pairs, f"no Source and DetailType literals in {entries}"
    return pairs


def test_the_rule_matches_every_event_the_patterns_put_on_the_bus() -> None:
    """Read off the ASLs: every (Source, DetailType) of their events:PutEvents tasks reaches the inbox."""
    _, rule = only(resources_of_type(translated(INBOX), "AWS::Events::Rule"))
    pattern = rule["Properties"]["EventPattern"]
    sent = {
        pair
        for stack in PATTERNS
        for _, _, task in task_states(load_asl(stack))
        if iam_action(task["Resource"]) == "events:PutEvents"
        for pair in put_entries(task["Arguments"]["Entries"])
    }
    assert sent, "the patterns put no event on the bus"
    assert {(s, d) for s, d in sent if s not in pattern["source"] or d not in pattern["detail-type"]} == set()


# --- the HTTP API -----------------------------------------------------------------------------


def routes(cfn: dict) -> dict[tuple[str, str], dict]:
    """(METHOD, path) -> the integration of each route of the stack's only HTTP API (SAM writes them as OpenAPI)."""
    _, api = only(resources_of_type(cfn, HTTP_API))
    paths = api["Properties"]["Body"]["paths"]
    return {
        (method.upper(), path): operation["x-amazon-apigateway-integration"]
        for path, operations in paths.items()
        for method, operation in operations.items()
    }


def test_the_api_has_exactly_the_get_and_post_routes_of_a_request(cfn: dict) -> None:
    assert set(routes(cfn)) == ROUTES
    assert resources_of_type(cfn, "AWS::ApiGatewayV2::Route") == {}


def test_every_route_proxies_to_the_page_function(cfn: dict) -> None:
    others = {
        route: integration for route, integration in routes(cfn).items()
        if integration.get("type") != "aws_proxy" or not refers_to(integration.get("uri"), "PageFunction")
    }
    assert others == {}


def test_every_route_uses_payload_format_2_0(cfn: dict) -> None:
    versions = {route: integration.get("payloadFormatVersion") for route, integration in routes(cfn).items()}
    assert set(versions.values()) == {"2.0"}, versions


# --- the requests table -----------------------------------------------------------------------


def test_requests_expire_on_expires_at(table: dict) -> None:
    assert table.get("TimeToLiveSpecification") == {"AttributeName": "expiresAt", "Enabled": True}


def test_the_table_is_encrypted(table: dict) -> None:
    assert table.get("SSESpecification", {}).get("SSEEnabled") is True


def test_the_table_bills_on_demand(table: dict) -> None:
    assert table.get("BillingMode") == "PAY_PER_REQUEST"


def test_the_table_has_point_in_time_recovery(table: dict) -> None:
    assert table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True


def test_the_hash_key_is_the_string_key_the_handlers_address_items_by(table: dict) -> None:
    """Read off the code: the keys of every literal Key={...} the handlers pass to DynamoDB."""
    keys = set()
    for function_id in FUNCTIONS:
        for path in handler_modules(code_dir(function_id), handler_of(function_id)):
            for service, _, call in client_calls(path.read_text(), path.name):
                for keyword in call.keywords:
                    if service == "dynamodb" and keyword.arg == "Key" and isinstance(keyword.value, ast.Dict):
                        keys |= {k.value for k in keyword.value.keys if isinstance(k, ast.Constant)}
    assert keys, "no Key={...} literal found in the handlers"
    assert table["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"} for key in keys]
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert {key: types.get(key) for key in keys} == {key: "S" for key in keys}


# --- IAM: each role allows exactly what its handler calls, each action on its resource ---------


def test_each_function_has_a_role_of_its_own(cfn: dict) -> None:
    roles = {function_id: function_role(cfn, function_id)[0] for function_id in FUNCTIONS}
    assert len(set(roles.values())) == len(roles), roles
    assert set(roles.values()) == set(resources_of_type(cfn, ROLE))


def test_only_lambda_may_assume_each_role(role: dict) -> None:
    assert trust(role) == ({("Service", "lambda.amazonaws.com")}, {"sts:AssumeRole"})


def test_each_role_grants_exactly_the_actions_its_handler_calls(cfn: dict, function_id: str, role: dict) -> None:
    """The actions come from the code (the handler module's boto3 calls and those of the local modules it
    imports), plus sqs:SendMessage for an on-failure destination queue: no more, no less."""
    assert granted(role) == actions_needed(cfn, function_id)


def test_the_method_table_names_only_actions_iam_defines() -> None:
    actions = set().union(*METHOD_ACTIONS.values(), TRANSACT_ITEM_ACTIONS.values())
    assert {action for action in actions if resource_types_of(action) is None} == set()


def test_no_statement_inverts_its_scope_or_uses_an_action_pattern(role: dict) -> None:
    statements = [s for p in role["Properties"].get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]
    assert [s for s in statements if {"NotAction", "NotResource", "NotPrincipal"} & set(s)] == []
    assert [s for s in statements if s.get("Effect") != "Allow"] == []
    assert {a for s in statements for a in actions_of(s) if "*" in a or "?" in a} == set()


def test_dynamodb_actions_are_limited_to_the_requests_table(role: dict, table_id: str) -> None:
    statements = statements_allowing(role, "dynamodb:")
    assert statements, "no statement allows a DynamoDB action"
    for statement in statements:
        resources = as_list(statement["Resource"])
        assert len(resources) == 1 and is_arn_of(resources[0], table_id), resources


def test_publish_is_limited_to_the_topic_the_condition_selects(cfn: dict, function_id: str, role: dict) -> None:
    """The stack's own topic, or the one NotificationTopicArn names: the topic the function publishes to."""
    statements = statements_allowing(role, "sns:")
    if "sns:Publish" not in actions_needed(cfn, function_id):
        assert statements == []
        return
    environment = cfn["Resources"][function_id]["Properties"]["Environment"]["Variables"]
    assert environment.get("TOPIC_ARN") == TOPIC
    assert statements and all(as_list(s["Resource"]) == [TOPIC] for s in statements), statements


def test_describe_execution_is_limited_to_executions_of_this_account_and_region(role: dict) -> None:
    for statement in statements_allowing(role, "states:DescribeExecution"):
        resources = as_list(statement["Resource"])
        assert len(resources) == 1 and isinstance(resources[0], dict), resources
        arn = resources[0].get("Fn::Sub")
        assert isinstance(arn, str) and arn.startswith(EXECUTIONS_OF_THIS_ACCOUNT_AND_REGION), arn


def test_resource_star_is_only_for_send_task_success(role: dict) -> None:
    """states:SendTaskSuccess has no resource type in IAM, so a policy must grant it on "*":
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html
    (its row lists no resource type; cfn-lint's copy of that reference, read here, agrees). Every other action
    is scoped to a resource of the stack or of this account and region.
    """
    wildcard = set().union(*(actions_of(s) for s in allow_statements(role) if is_wildcard(s)))
    assert wildcard <= {"states:SendTaskSuccess"}, wildcard
    assert {action: resource_types_of(action) for action in wildcard} == {action: [] for action in wildcard}


def test_every_granted_action_is_one_whose_scope_these_tests_check(role: dict) -> None:
    """The tests above check the scope of these actions: a new one needs its own scope test."""
    assert {a for a in granted(role) if not a.startswith(SCOPE_CHECKED)} == set()


def test_sends_to_a_queue_only_to_the_functions_on_failure_destination(
    cfn: dict, function_id: str, role: dict
) -> None:
    queues = on_failure_queues(cfn, function_id)
    for statement in statements_allowing(role, "sqs:"):
        resources = as_list(statement["Resource"])
        assert actions_of(statement) == {"sqs:SendMessage"}
        assert len(resources) == 1 and any(is_arn_of(resources[0], q) for q in queues), resources


def test_the_only_managed_policies_are_basic_execution_and_xray_write(role: dict) -> None:
    """SAM attaches them: AWSLambdaBasicExecutionRole for the function's log streams, AWSXrayWriteOnlyAccess for
    Tracing: Active; both are AWS managed, and no other managed policy widens the role."""
    assert set(map(str, role["Properties"].get("ManagedPolicyArns", []))) == MANAGED_POLICIES


# --- the derivation can fail ------------------------------------------------------------------


@pytest.fixture
def code_copy(tmp_path: Path) -> Path:
    """A copy of the functions' code folder, to edit."""
    (directory,) = {code_dir(function_id) for function_id in FUNCTIONS}
    return Path(shutil.copytree(directory, tmp_path / "src"))


def add_code(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_a_new_boto3_call_in_a_copy_of_a_handler_fails_the_role_check(cfn: dict, code_copy: Path) -> None:
    """A DeleteItem call added to a copy of page.py is derived as dynamodb:DeleteItem, which the unchanged
    role does not grant (the unchanged copy still matches it)."""
    role = function_role(cfn, "PageFunction")[1]
    handler = handler_of("PageFunction")
    assert actions_called(code_copy, handler) == granted(role)
    add_code(code_copy / "page.py", 'def forget(item):\n    dynamodb.delete_item(TableName=TABLE, Key=item["id"])')
    assert "dynamodb:DeleteItem" in actions_called(code_copy, handler)
    assert actions_called(code_copy, handler) != granted(role)


def test_a_boto3_call_in_a_module_the_handler_imports_counts(code_copy: Path) -> None:
    add_code(code_copy / "pages.py", 'import boto3\nsfn = boto3.client("stepfunctions")\n'
             'def fail(token):\n    sfn.send_task_failure(taskToken=token)')
    assert "states:SendTaskFailure" in actions_called(code_copy, handler_of("PageFunction"))


def test_a_boto3_method_of_no_known_action_fails_the_derivation(code_copy: Path) -> None:
    add_code(code_copy / "notify.py", 'def make_topic():\n    sns.create_topic(Name="approvals")')
    with pytest.raises(AssertionError, match=r"no IAM action known for sns\.create_topic"):
        actions_called(code_copy, handler_of("NotifyFunction"))


@pytest.mark.parametrize(
    "code",
    [
        'def read():\n    boto3.client("s3").get_object(Bucket="b", Key="k")',
        "def call(name):\n    getattr(dynamodb, name)()",
        "def write(items):\n    dynamodb.transact_write_items(TransactItems=items)",
    ],
    ids=["inline client", "client passed on", "transaction items not literal"],
)
def test_a_call_the_derivation_cannot_read_fails_it(code_copy: Path, code: str) -> None:
    add_code(code_copy / "notify.py", code)
    with pytest.raises(AssertionError):
        actions_called(code_copy, handler_of("NotifyFunction"))


def test_a_transaction_needs_the_action_of_each_of_its_writes() -> None:
    source = (
        'import boto3\ndb = boto3.client("dynamodb")\n'
        'db.transact_write_items(TransactItems=[{"Put": {}}, {"ConditionCheck": {}}, {"Put": {}}])'
    )
    assert actions_of_calls(source, "example.py") == {"dynamodb:PutItem", "dynamodb:ConditionCheckItem"}
