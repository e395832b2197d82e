"""Reading the stacks as files: templates, ASL definitions, their translation, and walks over them.

Shared by the static suites (test_templates.py, test_security.py, test_inbox_template.py); nothing here
deploys or runs.
"""


import copy
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from earlyexit.patterns import PATTERNS, STACKS, stack_folder

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INBOX = next(stack for stack in STACKS if stack not in PATTERNS)  # the approval inbox: the one stack not a pattern

# The contract, "Stack parameters and outputs": name -> (Type, Default).
CONTRACT_PARAMETERS = {
    "either-or": {"ApprovalTimeoutSeconds": ("Number", 86400), "EventBusName": ("String", "default")},
    "quorum": {
        "ApprovalTimeoutSeconds": ("Number", 86400),
        "EventBusName": ("String", "default"),
        "DefaultQuorum": ("Number", 2),
    },
}
CONTRACT_OUTPUTS = {
    "either-or": {"StateMachineArn", "StateMachineName"},
    "quorum": {"StateMachineArn", "StateMachineName", "TableName"},
}

# Error names Step Functions itself defines; any other name starting with "States." is reserved.
PREDEFINED_ERRORS = frozenset(
    {
        "States.ALL",
        "States.Runtime",
        "States.Timeout",
        "States.HeartbeatTimeout",
        "States.TaskFailed",
        "States.Permissions",
        "States.ResultPathMatchFailure",
        "States.ParameterPathFailure",
        "States.BranchFailed",
        "States.NoChoiceMatched",
        "States.IntrinsicFailure",
        "States.ExceedToleratedFailureThreshold",
        "States.ItemReaderFailed",
        "States.ResultWriterFailed",
        "States.QueryEvaluationError",
        "States.DataLimitExceeded",
    }
)

# CloudWatch Logs delivery needs these on Resource "*" (SAM does not add them).
LOG_DELIVERY_ACTIONS = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)

PHYSICAL_NAME_PROPERTIES = ("TableName", "StateMachineName", "RoleName")

SERVICE_INTEGRATION = re.compile(
    r"^arn:aws:states:::(?:aws-sdk:)?(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9]+)"
    r"(?:\.(?:sync(?::2)?|waitForTaskToken))?$"
)
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
JSONATA = re.compile(r"^\{%(?P<body>.*)%\}$", re.DOTALL)
STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
QUOTED = re.compile(STRING_LITERAL.pattern + r"|`[^`]*`")  # string literals and `quoted names`
BARE_DOLLAR = re.compile(r"(?<![\w$])\${1,2}(?![\w$])")
IF_NOT_EXISTS = re.compile(r"(?P<attr>\w+)\s*=\s*if_not_exists\(\s*(?P=attr)\s*,")


# --- reading the files ---------------------------------------------------------------------


@functools.lru_cache
def sam_template(stack: str) -> dict:
    """The template.yaml of a pattern or of the inbox as written (read-only: callers must not mutate it)."""
    return yaml_parse((stack_folder(stack).path / "template.yaml").read_text())


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {rid: r for rid, r in template.get("Resources", {}).items() if r.get("Type") == resource_type}


def only(items: dict[str, dict]) -> tuple[str, dict]:
    assert len(items) == 1, f"expected exactly one, found {sorted(items)}"
    return next(iter(items.items()))


def sam_state_machine(pattern: str) -> tuple[str, dict]:
    return only(resources_of_type(sam_template(pattern), "AWS::Serverless::StateMachine"))


def asl_path(pattern: str) -> Path:
    """The ASL file the template's DefinitionUri points to."""
    _, state_machine = sam_state_machine(pattern)
    return stack_folder(pattern).path / state_machine["Properties"]["DefinitionUri"]


def substitutions(pattern: str) -> dict:
    return sam_state_machine(pattern)[1]["Properties"].get("DefinitionSubstitutions", {})


@functools.lru_cache
def load_asl(pattern: str) -> dict:
    """The state machine definition as written, placeholders included (read-only)."""
    return json.loads(asl_path(pattern).read_text())


@functools.lru_cache
def rendered_asl(pattern: str) -> dict:
    """The definition with each ${Name} filled as CloudFormation would with default parameters.

    A Ref to a parameter becomes its Default, a Ref to a resource its logical id, anything
    else (or an unknown placeholder) "0".
    """
    parameters = sam_template(pattern).get("Parameters", {})

    def sample(name: str) -> str:
        value = substitutions(pattern).get(name)
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            return str(parameters[ref].get("Default", "0")) if ref in parameters else ref
        return str(value) if isinstance(value, (str, int, float)) else "0"

    text = PLACEHOLDER.sub(lambda m: json.dumps(sample(m.group(1)))[1:-1], asl_path(pattern).read_text())
    return json.loads(text)


# Local paths `sam package` uploads to S3 before the transform: (resource type, property).
PACKAGED_PROPERTIES = (("AWS::Serverless::StateMachine", "DefinitionUri"), ("AWS::Serverless::Function", "CodeUri"))


def _packaged(stack: str, properties: dict, name: str) -> None:
    """Replace a local path in properties[name] with an s3:// location, as `sam package` does."""
    value = properties.get(name)
    if isinstance(value, str) and not value.startswith("s3://"):
        properties[name] = f"s3://bucket/{stack}/{value}"


@functools.lru_cache
def translated(stack: str) -> dict:
    """The template of a pattern or of the inbox as plain CloudFormation, translated by aws-sam-translator
    after `sam package` (every local DefinitionUri and CodeUri, Globals included, made an s3:// location)."""
    template = copy.deepcopy(sam_template(stack))
    for resource_type, name in PACKAGED_PROPERTIES:
        for resource in resources_of_type(template, resource_type).values():
            _packaged(stack, resource.setdefault("Properties", {}), name)
    _packaged(stack, template.get("Globals", {}).get("Function", {}), "CodeUri")
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    return translator.translate(template, {}, get_managed_policy_map=lambda: {})


# --- the tools AWS users run -------------------------------------------------------------


@functools.lru_cache
def run_cfn_lint(stack: str) -> subprocess.CompletedProcess:
    """cfn-lint on the stack's template.yaml, as a user runs it in the stack's folder (once per session)."""
    return subprocess.run(
        [str(BIN / "cfn-lint"), "template.yaml"], cwd=stack_folder(stack).path, capture_output=True, text=True,
        timeout=300,
    )


@functools.lru_cache
def run_sam_validate(stack: str) -> subprocess.CompletedProcess:
    """`sam validate --lint` in the stack's folder (once per session)."""
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return subprocess.run(
        [str(BIN / "sam"), "validate", "--lint"],
        cwd=stack_folder(stack).path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# --- walking a state machine definition -----------------------------------------------------

Scope = tuple[str, ...]


def walk_scopes(definition: dict, path: Scope = ()) -> Iterator[tuple[Scope, dict]]:
    """Yield (scope_path, scope) for the top level and, depth first, every Parallel branch."""
    yield path, definition
    for name, state in definition.get("States", {}).items():
        for index, branch in enumerate(state.get("Branches", []), start=1):
            yield from walk_scopes(branch, (*path, f"{name} / branch {index}"))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from walk_scopes(state[key], (*path, f"{name} / {key}"))


def walk_states(definition: dict) -> Iterator[tuple[Scope, str, dict]]:
    """Yield (scope_path, name, state) for every state at every depth."""
    for path, scope in walk_scopes(definition):
        for name, state in scope.get("States", {}).items():
            yield path, name, state


def parallel_branches(definition: dict) -> Iterator[tuple[str, dict, int, dict]]:
    """Yield (parallel_name, parallel_state, branch_number, branch) for every Parallel branch."""
    for _, name, state in walk_states(definition):
        if state.get("Type") == "Parallel":
            for index, branch in enumerate(state["Branches"], start=1):
                yield name, state, index, branch


def flow_states(branch: dict) -> dict[str, dict]:
    """A Parallel branch's states and, depth first, those of every Map iteration inside it: a Fail
    state in an iteration fails the Map (no Catch on it), so it ends the flow too."""
    found = dict(branch["States"])
    for state in branch["States"].values():
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(flow_states(state[key]))
    return found


def flow_ends(branch: dict) -> dict[str, dict]:
    """The states a flow can end in: its terminal states, a Map's replaced by its iterations' ends."""
    ends: dict[str, dict] = {}
    for name, state in branch["States"].items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor is not None and state.get("End"):
            ends.update(flow_ends(processor))
        elif state["Type"] in ("Fail", "Succeed") or state.get("End"):
            ends[name] = state
    return ends


def transitions(state: dict) -> list[str]:
    """Every state name this state can move to within its scope."""
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [rule["Next"] for rule in state.get("Choices", []) if "Next" in rule]
    targets += [catcher["Next"] for catcher in state.get("Catch", []) if "Next" in catcher]
    return targets


def reachable(scope: dict) -> set[str]:
    seen, todo = set(), [scope["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen or name not in scope["States"]:
            continue
        seen.add(name)
        todo.extend(transitions(scope["States"][name]))
    return seen


def task_states(definition: dict) -> Iterator[tuple[Scope, str, dict]]:
    return ((p, n, s) for p, n, s in walk_states(definition) if s.get("Type") == "Task")


def iam_action(resource: str) -> str:
    """arn:aws:states:::dynamodb:updateItem -> dynamodb:UpdateItem (suffixes like .sync dropped)."""
    match = SERVICE_INTEGRATION.match(resource)
    assert match, f"not a Step Functions service integration: {resource}"
    action = match["action"]
    return f"{match['service']}:{action[0].upper()}{action[1:]}"


# --- JSONata ------------------------------------------------------------------------------


def jsonata_body(value: object) -> str | None:
    """The expression inside a "{% ... %}" string, or None for any other value."""
    match = JSONATA.match(value) if isinstance(value, str) else None
    return match["body"] if match else None


def strings_in(node: object) -> Iterator[str]:
    """Every string value (not key) in a JSON document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


def jsonata_expressions(definition: dict) -> list[str]:
    return [body for body in map(jsonata_body, strings_in(definition)) if body is not None]


def string_literals(expression: str) -> list[str]:
    return [literal[1:-1] for literal in STRING_LITERAL.findall(expression)]


def result_literals(expression: str) -> list[str]:
    """String literals the expression can evaluate to: the whole expression or a branch of `? :`.

    Operands of comparisons (`$x = 'approve' ? ...`), object keys and values are left out.
    """
    expression = expression.strip()
    values = []
    for match in STRING_LITERAL.finditer(expression):
        before = expression[: match.start()].rstrip()
        after = expression[match.end() :].lstrip()
        if (not before or before[-1] in "?:(") and (not after or after[0] in ":)"):
            values.append(match.group()[1:-1])
    return values


def bracket_problem(expression: str) -> str | None:
    """None if (), [] and {} are balanced outside string literals, else what is wrong."""
    code = QUOTED.sub("''", expression)
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in code.replace("''", ""):
        if char in "'\"`":
            return f"unterminated quote {char}"
        if char in "([{":
            stack.append(char)
        elif char in closing and (not stack or stack.pop() != closing[char]):
            return f"unexpected {char}"
    return f"unclosed {stack[-1]}" if stack else None


def thrown_errors(fail_state: dict) -> set[str]:
    """The error names a Fail state can end with.

    A literal Error, or each string literal a JSONata Error expression can evaluate to that
    looks like an error name (non-empty, no spaces).
    """
    error = fail_state.get("Error")
    if error is None:
        return set()
    body = jsonata_body(error)
    if body is None:
        return {error}
    return {value for value in result_literals(body) if value and " " not in value}


def error_names_mentioned(fail_state: dict) -> set[str]:
    """Every string a Fail state's Error could be made of (all literals of an expression)."""
    error = fail_state.get("Error")
    if error is None:
        return set()
    body = jsonata_body(error)
    return {error} if body is None else set(string_literals(body))


# --- CloudFormation helpers ---------------------------------------------------------------


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def refers_to(node: object, name: str) -> bool:
    """True if a CloudFormation value uses Ref/GetAtt/Sub on `name` anywhere inside it."""
    if isinstance(node, dict):
        if node.get("Ref") == name:
            return True
        get_att = node.get("Fn::GetAtt")
        if get_att is not None and (get_att[0] if isinstance(get_att, list) else str(get_att).split(".")[0]) == name:
            return True
        sub = node.get("Fn::Sub")
        template = sub[0] if isinstance(sub, list) else sub
        if isinstance(template, str) and re.search(r"\$\{" + re.escape(name) + r"[}.]", template):
            return True
        return any(refers_to(value, name) for value in node.values())
    if isinstance(node, list):
        return any(refers_to(value, name) for value in node)
    return False


def is_arn_of(node: object, logical_id: str) -> bool:
    """Fn::GetAtt <logical_id>.Arn in either spelling."""
    if not isinstance(node, dict) or set(node) != {"Fn::GetAtt"}:
        return False
    get_att = node["Fn::GetAtt"]
    parts = get_att if isinstance(get_att, list) else str(get_att).split(".", 1)
    return list(parts) == [logical_id, "Arn"]


def state_machine_role(cfn: dict) -> dict:
    _, state_machine = only(resources_of_type(cfn, "AWS::StepFunctions::StateMachine"))
    role_arn = state_machine["Properties"]["RoleArn"]
    assert isinstance(role_arn, dict) and "Fn::GetAtt" in role_arn, f"role is not in the stack: {role_arn}"
    role_id = as_list(role_arn["Fn::GetAtt"])[0].split(".")[0]
    return cfn["Resources"][role_id]


def allow_statements(role: dict) -> list[dict]:
    statements = []
    for policy in role["Properties"].get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    return [s for s in statements if s.get("Effect") == "Allow"]


def is_wildcard(statement: dict) -> bool:
    return as_list(statement.get("Resource")) == ["*"]


def actions_of(statement: dict) -> set[str]:
    return set(as_list(statement.get("Action", [])))


def actions_called(definition: dict) -> set[str]:
    """The IAM actions the definition's Task states call."""
    return {iam_action(state["Resource"]) for _, _, state in task_states(definition)}


def actions_granted(role: dict) -> set[str]:
    """The actions the role allows on specific resources (not Resource "*")."""
    return set().union(*(actions_of(s) for s in allow_statements(role) if not is_wildcard(s)))


def trust(role: dict) -> tuple[set[tuple[str, str]], set[str]]:
    """Who may assume ``role`` and with which actions: ((principal kind, name), ...), {action, ...}.

    Fails on a trust policy that inverts its scope (NotPrincipal, NotAction), allows nobody, or names a
    principal that is not a named service or account."""
    statements = as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert [s for s in statements if {"NotPrincipal", "NotAction"} & set(s)] == []
    allowed = [s for s in statements if s.get("Effect") == "Allow"]
    assert allowed, "nobody may assume the role"
    principals: set[tuple[str, str]] = set()
    actions: set[str] = set()
    for statement in allowed:
        principal = statement.get("Principal")
        assert isinstance(principal, dict), f"Principal {principal!r} is not a named service"
        principals |= {(kind, name) for kind, names in principal.items() for name in as_list(names)}
        actions |= set(as_list(statement.get("Action")))
    return principals, actions
