"""`earlyexit start --reminder-seconds`: passed as the input's reminderSeconds, checked with the rules first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support import ended, requests_out, unique

from earlyexit.history import history_events
from earlyexit.local import Cloud, Stack
from earlyexit.patterns import PATTERNS
from earlyexit.rules import check_input
from earlyexit.tools.cli import main

pytestmark = pytest.mark.engine


def _invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # No endpoint: moto's in-process mock answers the default AWS endpoints.
    return CliRunner().invoke(main, list(args), env={"AWS_ENDPOINT_URL": None, **(env or {})})


def _refused_naming_the_option(result: Result, cause: str) -> None:
    assert result.exit_code == 2, result.output
    assert "'--reminder-seconds'" in result.output and cause in " ".join(result.output.split())


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, str | None]:
    """An environment with no AWS region, credentials or configuration."""
    return {"AWS_DEFAULT_REGION": None, "AWS_REGION": None, "AWS_PROFILE": None, "AWS_ACCESS_KEY_ID": None,
            "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}


def _sam_deployed(cloud: Cloud, stack: Stack, **parameters: int) -> str:
    """A CloudFormation stack with sam deploy's parameters and outputs, pointing at ``stack``'s state machine."""
    template = {"Parameters": {**{key: {"Type": "Number"} for key in parameters}, "Machine": {"Type": "String"}},
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"StateMachineArn": {"Value": {"Ref": "Machine"}}}}
    name = unique("sam-deployed")
    cloud.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template), Parameters=[
        *({"ParameterKey": key, "ParameterValue": str(value)} for key, value in parameters.items()),
        {"ParameterKey": "Machine", "ParameterValue": stack.outputs["StateMachineArn"]}])
    return name


def test_start_passes_reminder_seconds_and_the_execution_reminds(sfn: Any, either_or: Stack) -> None:
    result = _invoke("start", "either-or", "--approver", "alice", "--approver", "bob", "--timeout-seconds", "3",
                     "--reminder-seconds", "1", "--region", "us-east-1")
    assert result.exit_code == 0, result.output
    arn = result.output.strip()
    assert json.loads(sfn.describe_execution(executionArn=arn)["input"]) == {
        "approvers": ["alice", "bob"], "timeoutSeconds": 3, "reminderSeconds": 1}
    execution = ended(sfn, arn, timeout=30)
    assert execution.output is not None and execution.output["outcome"] == "TIMED_OUT"
    reminders = [e.text for e in execution.timeline if e.kind == "reminder"]
    assert reminders == ["reminder 1 sent to alice, bob", "reminder 2 sent to alice, bob"]
    assert any(e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "putEvents"
               for e in history_events(sfn, arn))


def test_start_sends_an_integral_number_as_json_reads_it(sfn: Any, quorum: Stack) -> None:
    result = _invoke("start", "quorum", "--approver", "a", "--approver", "b", "--approver", "c", "--quorum", "2",
                     "--timeout-seconds", "600", "--reminder-seconds", "300.0", "--region", "us-east-1")
    assert result.exit_code == 0, result.output
    arn = result.output.strip()
    try:
        assert json.loads(sfn.describe_execution(executionArn=arn)["input"])["reminderSeconds"] == 300
        assert requests_out(sfn, arn, 3).status == "RUNNING"  # accepted by the state machine too
    finally:
        sfn.stop_execution(executionArn=arn)


# (options, input the state machine would get): each breaks the reminderSeconds rule.
REFUSED = {
    "zero": (["--timeout-seconds", "30", "--reminder-seconds", "0"], {"timeoutSeconds": 30, "reminderSeconds": 0}),
    "the-deadline": (["--timeout-seconds", "30", "--reminder-seconds", "30"],
                     {"timeoutSeconds": 30, "reminderSeconds": 30}),
    "past-the-deadline": (["--timeout-seconds", "30", "--reminder-seconds", "31"],
                          {"timeoutSeconds": 30, "reminderSeconds": 31}),
    "negative": (["--timeout-seconds", "30", "--reminder-seconds", "-1"],
                 {"timeoutSeconds": 30, "reminderSeconds": -1}),
    "fraction": (["--timeout-seconds", "30", "--reminder-seconds", "1.5"],
                 {"timeoutSeconds": 30, "reminderSeconds": 1.5}),
    "not-a-number": (["--timeout-seconds", "30", "--reminder-seconds", "soon"],
                     {"timeoutSeconds": 30, "reminderSeconds": "soon"}),
    "a-one-second-deadline": (["--timeout-seconds", "1", "--reminder-seconds", "1"],
                              {"timeoutSeconds": 1, "reminderSeconds": 1}),
}


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize(("options", "execution_input"), REFUSED.values(), ids=REFUSED)
def test_start_refuses_a_reminder_rule_broken_before_it_contacts_anything(
        nowhere: dict[str, str | None], pattern: str, options: list[str], execution_input: dict[str, Any]) -> None:
    approvers = ["a", "b"] if pattern == "either-or" else ["a", "b", "c"]
    violation = check_input(pattern, {"approvers": approvers, **execution_input})
    assert violation is not None and violation.field == "reminderSeconds"
    # No region and no credentials: a check that needed AWS would fail with another message.
    result = _invoke("start", pattern, *[o for a in approvers for o in ("--approver", a)], *options, env=nowhere)
    _refused_naming_the_option(result, violation.cause)


def test_another_broken_rule_comes_first_as_in_the_state_machine(nowhere: dict[str, str | None]) -> None:
    # timeoutSeconds is checked before reminderSeconds.
    result = _invoke("start", "either-or", "--approver", "a", "--approver", "b", "--timeout-seconds", "0",
                     "--reminder-seconds", "5", env=nowhere)
    assert result.exit_code == 2
    assert "'--timeout-seconds'" in result.output and "--reminder-seconds" not in result.output


@pytest.mark.parametrize("pattern", PATTERNS)
def test_start_checks_reminder_seconds_against_the_stack_s_approval_timeout_seconds(
        cloud: Cloud, either_or: Stack, quorum: Stack, pattern: str) -> None:
    parameters = {"ApprovalTimeoutSeconds": 60, **({"DefaultQuorum": 2} if pattern == "quorum" else {})}
    stack = _sam_deployed(cloud, either_or if pattern == "either-or" else quorum, **parameters)
    approvers = ["a", "b"] if pattern == "either-or" else ["a", "b", "c"]
    options = [o for a in approvers for o in ("--approver", a)]
    result = _invoke("start", pattern, *options, "--reminder-seconds", "60", "--stack", stack, "--region", "us-east-1")
    violation = check_input(pattern, {"approvers": approvers, "reminderSeconds": 60}, default_timeout_seconds=60)
    assert violation is not None and violation.cause.endswith("(59)")
    _refused_naming_the_option(result, violation.cause)
    # --timeout-seconds overrides the stack's default.
    allowed = _invoke("start", pattern, *options, "--timeout-seconds", "120", "--reminder-seconds", "60",
                      "--stack", stack, "--region", "us-east-1")
    assert allowed.exit_code == 0, allowed.output
    cloud.client("stepfunctions").stop_execution(executionArn=allowed.output.strip())


def test_without_the_stack_s_parameters_the_state_machine_applies_its_default_deadline(
        sfn: Any, either_or: Stack) -> None:
    # A local deploy has no CloudFormation stack: the CLI cannot know ApprovalTimeoutSeconds (86400 here), so it
    # passes reminderSeconds on and the state machine refuses it with the same cause.
    result = _invoke("start", "either-or", "--approver", "a", "--approver", "b", "--reminder-seconds", "86400",
                     "--region", "us-east-1")
    assert result.exit_code == 0, result.output
    execution = ended(sfn, result.output.strip(), timeout=30)
    violation = check_input("either-or", {"approvers": ["a", "b"], "reminderSeconds": 86400},
                            default_timeout_seconds=86400)
    assert violation is not None
    assert (execution.status, execution.error, execution.cause) == ("FAILED", "InvalidInput", violation.cause)


def test_start_s_help_names_the_option() -> None:
    result = _invoke("start", "--help")
    assert result.exit_code == 0
    assert "--reminder-seconds" in result.output
