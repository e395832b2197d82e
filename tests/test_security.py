"""Security and policy gates on the three stacks (both patterns and the inbox), run on what CloudFormation deploys.

Each SAM template is translated to plain CloudFormation with aws-sam-translator (the helper of
tests/test_templates.py) and checked by:

- cfn-lint with the serverless rules of cfn-lint-serverless (WS5000: state machines trace with X-Ray;
  WS1000: functions trace with X-Ray), on every stack;
- the AWS Control Tower proactive controls for Step Functions and DynamoDB, written as assertions that
  follow each control's CloudFormation Guard rule;
- checkov, from a venv of its own (.venv-checkov, made by `make test`): checkov pins an old boto3 and
  packaging that break aws-sam-cli and pytest when installed into .venv; on every stack, with the
  per-resource skips of a template's Metadata honoured (each one with its reason);
- the execution role: "*" only where AWS requires it, and only Step Functions may assume the role.

tests/test_templates.py already checks that the role grants exactly the actions the ASL calls, that
PutEvents is limited to the bus and the tally actions to the table, and that the only managed policy is
AWSXrayWriteOnlyAccess; those checks are not repeated here. This file checks that the action derivation
does fail when a Task integration is added to the ASL without its permission. The inbox's function roles
(actions derived from the handlers' boto3 calls) are checked in tests/test_inbox_template.py.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from templates import (
    BIN,
    INBOX,
    LOG_DELIVERY_ACTIONS,
    ROOT,
    STACKS,
    actions_called,
    actions_granted,
    as_list,
    iam_action,
    load_asl,
    parallel_branches,
    resources_of_type,
    sam_template,
    state_machine_role,
    task_states,
    translated,
    trust,
)

from earlyexit.patterns import stack_folder

FORMS = ("translated", "sam")  # the plain CloudFormation that is deployed, and the template.yaml as written
STATE_MACHINE = "AWS::StepFunctions::StateMachine"
TABLE = "AWS::DynamoDB::Table"
LOG_GROUP = "AWS::Logs::LogGroup"
FUNCTION = "AWS::Lambda::Function"
SAM_FUNCTION = "AWS::Serverless::Function"
# What checkov must be seen to evaluate in every template (not only the ones that exist in it).
EVALUATED_TYPES = ("AWS::IAM::Role", LOG_GROUP, TABLE, FUNCTION, SAM_FUNCTION)

SERVERLESS_RULES = "cfn_lint_serverless.rules"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

# checkov checks that fail on purpose: check id -> why. Keep it minimal: an entry that no longer fails
# anywhere must go (test_every_allow_listed_checkov_check_still_fails).
CHECKOV_ALLOWED = {
    # Wants a customer-managed KMS key on each log group. CloudWatch Logs encrypts every log group at rest
    # anyway. The state machines' groups hold ERROR events without execution data (IncludeExecutionData:
    # false); the inbox's functions log request ids and outcomes, never a task token; its access log holds
    # request metadata (caller IP, route, status), no body.
    "CKV_AWS_158": "log groups are encrypted at rest by default and carry no execution data or task token",
    # Wants a customer-managed KMS key on each table. SSEEnabled: true uses the AWS managed key
    # aws/dynamodb, which CT.DYNAMODB.PR.2 accepts. Every item expires (TTL): the quorum's tally items
    # (approver names) and the inbox's requests, whose task tokens only a caller allowed
    # states:SendTaskSuccess can use; reading either table takes IAM access to it in any case.
    "CKV_AWS_119": "the AWS managed KMS key is enough for items that expire (CT.DYNAMODB.PR.2 accepts it)",
}

# DynamoDB tables allowed to go without point-in-time recovery (CT.DYNAMODB.PR.1): "pattern/LogicalId" -> why.
POINT_IN_TIME_RECOVERY_NOT_NEEDED: dict[str, str] = {}

# Every DynamoDB table the stacks deploy, read off the translated templates: (stack, logical id).
TABLES = [(stack, table_id) for stack in STACKS for table_id in resources_of_type(translated(stack), TABLE)]

MISSING_CHECKOV = (
    f"checkov is not installed at {CHECKOV.relative_to(ROOT)}: run `make test`, which creates that venv "
    "(checkov cannot live in .venv: it pins an old boto3 and packaging that break aws-sam-cli and pytest)"
)


# --- fixtures: pattern, cfn and role come from conftest.py --------------------------------

@pytest.fixture(scope="session")
def template_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(stack, form) -> the file a tool reads: the translation as a JSON file, or template.yaml."""
    directory = tmp_path_factory.mktemp("translated")
    files = {}
    for stack in STACKS:
        path = directory / f"{stack}.json"
        path.write_text(json.dumps(translated(stack), indent=2))
        files[stack, "translated"] = path
        files[stack, "sam"] = stack_folder(stack).path / "template.yaml"
    return files


@pytest.fixture(scope="session")
def canary_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """stack -> its translation with X-Ray tracing removed (state machines and functions), which the
    serverless rules must report."""
    directory = tmp_path_factory.mktemp("untraced")
    files = {}
    for stack in STACKS:
        cfn = copy.deepcopy(translated(stack))
        for state_machine in resources_of_type(cfn, STATE_MACHINE).values():
            state_machine["Properties"].pop("TracingConfiguration", None)
        for function in resources_of_type(cfn, FUNCTION).values():
            function["Properties"].pop("TracingConfiguration", None)
            function["Properties"].pop("TracingConfig", None)
        files[stack] = directory / f"{stack}-untraced.json"
        files[stack].write_text(json.dumps(cfn, indent=2))
    return files


@pytest.fixture(scope="session")
def serverless_lint(template_files: dict, canary_files: dict) -> dict[Path, list[dict]]:
    """cfn-lint findings by file, with the serverless rules appended: one run over every file."""
    files = [*template_files.values(), *canary_files.values()]
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--format", "json", "--append-rules", SERVERLESS_RULES, "--", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        findings = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"cfn-lint did not report JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    by_file: dict[Path, list[dict]] = {path.resolve(): [] for path in files}
    for finding in findings:
        by_file[Path(finding["Filename"]).resolve()].append(finding)
    return by_file


@pytest.fixture(scope="session")
def checkov_results(template_files: dict) -> dict[Path, dict[str, list]] | None:
    """checkov's results by file ("passed", "failed", "skipped", "parsing_errors"), from one run over every
    template.

    None when the checkov venv is missing: each checkov test then fails (never skips).
    The SAM templates go through the `cloudformation` framework too: checkov's `serverless` framework is
    the Serverless Framework's serverless.yml, not SAM, and finds nothing to run on a SAM template.
    Passed checks are kept in the output (no --quiet) to show that every file was really evaluated.
    """
    if not CHECKOV.exists():
        return None
    files = sorted({path.resolve() for path in template_files.values()})
    # No network: no guidelines download from the vendor's platform, no check for a newer version.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE"}
    command = [str(CHECKOV), "--framework", "cloudformation", "--compact", "--skip-download", "--output", "json"]
    command += [arg for path in files for arg in ("--file", str(path))]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not report JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    outcomes = ("passed", "failed", "skipped")
    by_file: dict[Path, dict[str, list]] = {path: {key: [] for key in (*outcomes, "parsing_errors")} for path in files}
    for framework_report in as_list(report):
        results = framework_report.get("results", {})
        for outcome in outcomes:
            for check in results.get(f"{outcome}_checks", []):
                by_file[Path(check["file_abs_path"]).resolve()][outcome].append(check)
        for path in results.get("parsing_errors", []):
            by_file.setdefault(Path(path).resolve(), {key: [] for key in (*outcomes, "parsing_errors")})
            by_file[Path(path).resolve()]["parsing_errors"].append(path)
    return by_file


def require_checkov(results: dict[Path, dict[str, list]] | None) -> dict[Path, dict[str, list]]:
    if results is None:
        pytest.fail(MISSING_CHECKOV)
    return results


# --- cfn-lint with the serverless rules ----------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("stack", STACKS)
def test_cfn_lint_with_serverless_rules_reports_nothing(
    serverless_lint: dict, template_files: dict, stack: str, form: str
) -> None:
    """No finding from cfn-lint or the serverless rules, on each stack, patterns and inbox alike.

    The translated template is the one that counts: cfn-lint 1.x validates a SAM template against SAM's
    own schemas without translating it, so rules written for plain CloudFormation types (WS5000 looks
    for AWS::StepFunctions::StateMachine) see no state machine in template.yaml. A rule a resource's
    Metadata ignores (cfn-lint: config: ignore_checks) is not reported for that resource.
    """
    findings = serverless_lint[template_files[stack, form].resolve()]
    assert [f"{f['Rule']['Id']} {f['Message']}" for f in findings] == []


def test_serverless_rules_report_a_state_machine_without_tracing(
    serverless_lint: dict, canary_files: dict, pattern: str
) -> None:
    """The gate can fail: WS5000 fires on a copy without tracing, so the rules did load."""
    rules = {f["Rule"]["Id"] for f in serverless_lint[canary_files[pattern].resolve()]}
    assert "WS5000" in rules


def test_serverless_rules_report_an_inbox_function_without_tracing(serverless_lint: dict, canary_files: dict) -> None:
    """The gate can fail on the inbox too: WS1000 fires for each function of a copy without X-Ray tracing."""
    findings = serverless_lint[canary_files[INBOX].resolve()]
    untraced = {f["Location"]["Path"][1] for f in findings if f["Rule"]["Id"] == "WS1000"}
    assert untraced == set(resources_of_type(translated(INBOX), FUNCTION))


# --- AWS Control Tower proactive controls, on the translated template ------------------------
# Each test follows the control's CloudFormation Guard rule as AWS publishes it.


def state_machines(cfn: dict) -> dict[str, dict]:
    machines = resources_of_type(cfn, STATE_MACHINE)
    assert machines, "no state machine"
    return machines


def is_log_group_reference(cfn: dict, value: object) -> bool:
    """A non-empty ARN string, or a Ref/GetAtt to an AWS::Logs::LogGroup of the template (as the Guard rule)."""
    if isinstance(value, str):
        return bool(value.strip())
    if not isinstance(value, dict) or len(value) != 1:
        return False
    if "Ref" in value:
        target = value["Ref"]
    elif "Fn::GetAtt" in value:
        get_att = value["Fn::GetAtt"]
        target = get_att[0] if isinstance(get_att, list) else str(get_att).split(".")[0]
    else:
        return False
    return cfn["Resources"].get(target, {}).get("Type") == LOG_GROUP


def test_ct_stepfunctions_pr_1_state_machine_logs_at_error_or_all_level(cfn: dict) -> None:
    """CT.STEPFUNCTIONS.PR.1: LoggingConfiguration with Level ERROR or ALL and CloudWatch Logs destinations."""
    for machine_id, machine in state_machines(cfn).items():
        logging = machine["Properties"].get("LoggingConfiguration")
        assert isinstance(logging, dict), f"{machine_id}: no LoggingConfiguration"
        assert logging.get("Level") in ("ERROR", "ALL"), f"{machine_id}: Level {logging.get('Level')!r}"
        destinations = logging.get("Destinations")
        assert isinstance(destinations, list) and destinations, f"{machine_id}: no Destinations"
        for destination in destinations:
            log_group = destination.get("CloudWatchLogsLogGroup")
            assert isinstance(log_group, dict), f"{machine_id}: {destination}"
            assert is_log_group_reference(cfn, log_group.get("LogGroupArn")), f"{machine_id}: {log_group}"


def test_ct_stepfunctions_pr_2_state_machine_traces_with_xray(cfn: dict) -> None:
    """CT.STEPFUNCTIONS.PR.2: TracingConfiguration.Enabled is true."""
    for machine_id, machine in state_machines(cfn).items():
        tracing = machine["Properties"].get("TracingConfiguration")
        assert isinstance(tracing, dict) and tracing.get("Enabled") is True, f"{machine_id}: {tracing}"


@pytest.mark.parametrize(("stack", "table_id"), TABLES)
def test_ct_dynamodb_pr_1_table_has_point_in_time_recovery(stack: str, table_id: str) -> None:
    """CT.DYNAMODB.PR.1: PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled is true (or a stated reason)."""
    if POINT_IN_TIME_RECOVERY_NOT_NEEDED.get(f"{stack}/{table_id}", "").strip():
        return
    properties = translated(stack)["Resources"][table_id]["Properties"]
    recovery = properties.get("PointInTimeRecoverySpecification")
    assert isinstance(recovery, dict) and recovery.get("PointInTimeRecoveryEnabled") is True, recovery


@pytest.mark.parametrize(("stack", "table_id"), TABLES)
def test_ct_dynamodb_pr_2_table_is_encrypted_with_a_kms_key(stack: str, table_id: str) -> None:
    """CT.DYNAMODB.PR.2: SSESpecification.SSEEnabled is true.

    true encrypts with a KMS key (the AWS managed aws/dynamodb unless KMSMasterKeyId names another);
    false or absent means an AWS owned key, which the control does not accept.
    """
    properties = translated(stack)["Resources"][table_id]["Properties"]
    encryption = properties.get("SSESpecification")
    assert isinstance(encryption, dict) and encryption.get("SSEEnabled") is True, encryption
    assert encryption.get("SSEType", "KMS") == "KMS", encryption


# --- checkov -------------------------------------------------------------------------------


def test_checkov_allow_list_gives_a_reason_for_each_check() -> None:
    assert {check: reason for check, reason in CHECKOV_ALLOWED.items() if not reason.strip()} == {}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_beyond_the_allow_list(
    checkov_results: dict | None, template_files: dict, stack: str, form: str
) -> None:
    """checkov evaluated every role, log group, table and function and failed none beyond CHECKOV_ALLOWED.

    A check a resource's Metadata skips (checkov: skip: id, comment) is reported as skipped, not failed.
    """
    path = template_files[stack, form].resolve()
    results = require_checkov(checkov_results)[path]
    assert results["parsing_errors"] == []
    template = translated(stack) if form == "translated" else sam_template(stack)
    expected = {
        f"{resource['Type']}.{rid}"
        for rid, resource in template["Resources"].items()
        if resource["Type"] in EVALUATED_TYPES
    }
    evaluated = {check["resource"] for check in results["passed"] + results["failed"]}
    assert expected - evaluated == set(), "checkov did not evaluate these resources"
    failed = sorted(
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in results["failed"]
        if check["check_id"] not in CHECKOV_ALLOWED
    )
    assert failed == []


def test_every_allow_listed_checkov_check_still_fails(checkov_results: dict | None) -> None:
    """An allow-list entry that no template fails any more is stale and must be removed."""
    results = require_checkov(checkov_results)
    failing = {check["check_id"] for by_outcome in results.values() for check in by_outcome["failed"]}
    assert set(CHECKOV_ALLOWED) - failing == set()


def checkov_skips(template: dict) -> dict[str, list[dict]]:
    """logical id -> the checkov skips in the resource's Metadata (checkov: skip: [{id, comment}])."""
    skips = {rid: (r.get("Metadata") or {}).get("checkov", {}).get("skip") for rid, r in template["Resources"].items()}
    return {rid: as_list(entries) for rid, entries in skips.items() if entries}


def test_every_checkov_skip_in_the_inbox_template_has_a_reason() -> None:
    """A skip in a resource's Metadata is an allow-list entry of its own: it states why, in its comment."""
    skips = checkov_skips(sam_template(INBOX))
    assert skips, "the inbox template skips no checkov check: this test has nothing to read"
    without_reason = [
        (rid, skip.get("id")) for rid, entries in skips.items() for skip in entries
        if not isinstance(skip, dict) or not str(skip.get("comment") or "").strip()
    ]
    assert without_reason == []


@pytest.mark.parametrize("form", FORMS)
def test_every_checkov_skip_in_the_inbox_template_is_one_checkov_applies(
    checkov_results: dict | None, template_files: dict, form: str
) -> None:
    """checkov reports each Metadata skip as a skipped check of its resource, in both forms (SAM copies a
    function's Metadata onto the generated function): a skip with a misspelt id, or of a check that does not
    apply to the resource any more, is stale and must go."""
    results = require_checkov(checkov_results)[template_files[INBOX, form].resolve()]
    resources = (translated(INBOX) if form == "translated" else sam_template(INBOX))["Resources"]
    declared = {
        (f"{resources[rid]['Type']}.{rid}", skip["id"])
        for rid, entries in checkov_skips(sam_template(INBOX)).items() for skip in entries
    }
    assert declared, "the inbox template skips no checkov check: this test has nothing to read"
    skipped = {(check["resource"], check["check_id"]) for check in results["skipped"]}
    assert declared - skipped == set()


# --- the execution role --------------------------------------------------------------------


def wildcard_paths(node: object, path: tuple = ()) -> Iterator[tuple]:
    """The path of every string in a JSON document that contains "*"."""
    if isinstance(node, str):
        if "*" in node:
            yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from wildcard_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from wildcard_paths(value, (*path, index))


def inline_statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"].get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]


def test_wildcards_in_the_role_are_only_the_log_delivery_resource(role: dict) -> None:
    """"*" appears once: as the Resource of the statement that allows exactly the log-delivery actions.

    CloudWatch Logs delivery has no resource-level permissions, so AWS requires Resource "*" there.
    No action is a pattern, and no statement inverts its scope with NotAction or NotResource.
    """
    outside_policies = {k: v for k, v in role["Properties"].items() if k != "Policies"}
    assert list(wildcard_paths(outside_policies)) == []
    statements = inline_statements(role)
    inverted = [s.get("Sid") for s in statements if {"NotAction", "NotResource", "NotPrincipal"} & set(s)]
    assert inverted == []
    with_wildcards = [s for s in statements if any(wildcard_paths(s))]
    assert len(with_wildcards) == 1, f"expected only the log-delivery statement, found {with_wildcards}"
    (log_delivery,) = with_wildcards
    assert log_delivery.get("Effect") == "Allow"
    assert as_list(log_delivery["Resource"]) == ["*"]
    assert set(as_list(log_delivery["Action"])) == LOG_DELIVERY_ACTIONS


def test_the_only_managed_policy_is_the_xray_write_access_sam_attaches_for_tracing(cfn: dict, role: dict) -> None:
    """X-Ray's trace actions have no resource-level permissions either: SAM grants them with AWSXrayWriteOnlyAccess,
    and the role has no other managed policy."""
    def arn_text(arn: object) -> str:
        return arn if isinstance(arn, str) else str(as_list(arn.get("Fn::Sub"))[0])

    machines = state_machines(cfn).values()
    traced = [m for m in machines if m["Properties"].get("TracingConfiguration", {}).get("Enabled")]
    assert traced, "no state machine traces with X-Ray (CT.STEPFUNCTIONS.PR.2)"
    managed = [arn_text(arn) for arn in role["Properties"].get("ManagedPolicyArns", [])]
    assert len(managed) == 1 and managed[0].endswith(":policy/AWSXrayWriteOnlyAccess"), managed


def test_only_step_functions_may_assume_the_role(role: dict) -> None:
    assert trust(role) == ({("Service", "states.amazonaws.com")}, {"sts:AssumeRole"})


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::sns:publish",
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "arn:aws:states:::aws-sdk:s3:getObject",
    ],
)
def test_a_new_integration_without_its_permission_fails_the_role_check(pattern: str, resource: str) -> None:
    """tests/test_templates.py derives the role's actions from the ASL: a Task added to a copy of the ASL
    makes that check fail against the unchanged role (and the unchanged ASL passes it)."""
    role = state_machine_role(translated(pattern))
    assert actions_granted(role) == actions_called(load_asl(pattern))
    asl = copy.deepcopy(load_asl(pattern))
    _, _, _, branch = next(parallel_branches(asl))
    branch["States"]["Call a new integration"] = {"Type": "Task", "Resource": resource, "End": True}
    assert iam_action(resource) in {iam_action(s["Resource"]) for _, _, s in task_states(asl)}
    assert actions_granted(role) != actions_called(asl)


def test_a_task_resource_the_derivation_cannot_read_fails_the_role_check(pattern: str) -> None:
    """A Task that is not a Step Functions service integration (here a Lambda ARN) is refused, not ignored."""
    asl = copy.deepcopy(load_asl(pattern))
    _, _, _, branch = next(parallel_branches(asl))
    function_arn = "arn:aws:lambda:us-east-1:123456789012:function:notify"
    branch["States"]["Call a function"] = {"Type": "Task", "Resource": function_arn, "End": True}
    with pytest.raises(AssertionError, match="not a Step Functions service integration"):
        actions_called(asl)
