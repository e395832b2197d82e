"""The `earlyexit` commands against the embedded engine (boto3 calls are intercepted in-process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support import ended, requests_out, timeless, unique, wait_until_counted

from earlyexit.approvals import read_approval
from earlyexit.local import Cloud, Stack
from earlyexit.rules import check_input
from earlyexit.tools.cli import main
from earlyexit.tools.demo import SCENARIOS

pytestmark = pytest.mark.engine

THREE = ("a", "b", "c")


def _invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # No endpoint: moto's in-process mock answers the default AWS endpoints.
    return CliRunner().invoke(main, list(args), env={"AWS_ENDPOINT_URL": None, **(env or {})})


def _ok(*args: str) -> str:
    result = _invoke(*args, "--region", "us-east-1")
    assert result.exit_code == 0, f"earlyexit {' '.join(args)} exited {result.exit_code}: {result.output}"
    return result.output


def _approver_options(approvers: tuple[str, ...] | list[str]) -> list[str]:
    return [option for approver in approvers for option in ("--approver", approver)]


def _start(pattern: str, *approvers: str, extra: tuple[str, ...] = ()) -> str:
    return _ok("start", pattern, *_approver_options(approvers), "--timeout-seconds", "30", *extra).strip()


def _status(arn: str) -> dict[str, Any]:
    return json.loads(_ok("status", arn, "--watch", "--json"))


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, str | None]:
    """An environment with no AWS region, credentials or configuration."""
    return {"AWS_DEFAULT_REGION": None, "AWS_REGION": None, "AWS_PROFILE": None, "AWS_ACCESS_KEY_ID": None,
            "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}


@pytest.fixture
def approval(sfn: Any, quorum: Stack) -> str:
    """A running quorum-2 approval for a, b and c, its requests sent."""
    arn = _start("quorum", *THREE)
    assert len(requests_out(sfn, arn, 3).pending) == 3
    return arn


@pytest.fixture
def failed(sfn: Any, quorum: Stack) -> str:
    """A quorum execution for a, b and c that FAILED on its input (started without the CLI's checks)."""
    arn = sfn.start_execution(stateMachineArn=quorum.outputs["StateMachineArn"],
                              input=json.dumps({"approvers": list(THREE), "quorum": 0}))["executionArn"]
    assert ended(sfn, arn).status == "FAILED"
    return arn


# -- start ----------------------------------------------------------------------------------------


def test_start_prints_an_execution_arn_of_the_stack(sfn: Any, quorum: Stack) -> None:
    arn = _start("quorum", *THREE, extra=("--stack", "earlyexit-quorum", "--request", '{"laptop": "14-inch"}'))
    execution_prefix = quorum.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":"
    assert arn.startswith(execution_prefix)
    described = sfn.describe_execution(executionArn=arn)
    assert json.loads(described["input"]) == {"approvers": list(THREE), "request": {"laptop": "14-inch"},
                                              "timeoutSeconds": 30}


# (pattern, approvers, options, input the state machine would get): each breaks one rule.
REFUSED = {
    "quorum-1-approver": ("quorum", ["a"], [], {"approvers": ["a"]}),
    "quorum-41-approvers": ("quorum", [f"p{i}" for i in range(41)], [], {"approvers": [f"p{i}" for i in range(41)]}),
    "quorum-0": ("quorum", THREE, ["--quorum", "0"], {"approvers": THREE, "quorum": 0}),
    "quorum-n-plus-1": ("quorum", THREE, ["--quorum", "4"], {"approvers": THREE, "quorum": 4}),
    "quorum-fraction": ("quorum", THREE, ["--quorum", "1.5"], {"approvers": THREE, "quorum": 1.5}),
    "quorum-not-a-number": ("quorum", THREE, ["--quorum", "two"], {"approvers": THREE, "quorum": "two"}),
    "timeout-0": ("either-or", ["a", "b"], ["--timeout-seconds", "0"], {"approvers": ["a", "b"], "timeoutSeconds": 0}),
    "request-a-list": ("quorum", THREE, ["--request", "[1,2]"], {"approvers": THREE, "request": [1, 2]}),
    "duplicate-approvers": ("quorum", ["a", "b", "a"], [], {"approvers": ["a", "b", "a"]}),
    "blank-approver": ("either-or", ["a", "\u3000"], [], {"approvers": ["a", "\u3000"]}),
    "either-or-3-approvers": ("either-or", THREE, [], {"approvers": THREE}),
    "no-approver": ("either-or", [], [], {"approvers": []}),
}


@pytest.mark.parametrize(("pattern", "approvers", "options", "execution_input"), REFUSED.values(), ids=REFUSED)
def test_start_refuses_input_that_breaks_a_rule_before_it_contacts_anything(
        nowhere: dict[str, str | None], pattern: str, approvers: list[str], options: list[str],
        execution_input: dict[str, Any]) -> None:
    violation = check_input(pattern, {**execution_input, "approvers": list(execution_input["approvers"])})
    assert violation is not None
    # No region and no credentials: a check that needed AWS would fail with another message.
    result = _invoke("start", pattern, *_approver_options(approvers), *options, env=nowhere)
    assert result.exit_code == 2, result.output
    option = {"approvers": "--approver", "quorum": "--quorum", "timeoutSeconds": "--timeout-seconds",
              "request": "--request"}[violation.field]
    assert f"'{option}'" in result.output and violation.cause in " ".join(result.output.split())


def test_start_refuses_quorum_on_either_or(nowhere: dict[str, str | None]) -> None:
    result = _invoke("start", "either-or", "--approver", "a", "--approver", "b", "--quorum", "1", env=nowhere)
    assert result.exit_code == 2
    assert "'--quorum'" in result.output and "quorum pattern only" in result.output


def test_start_with_a_request_that_is_not_json_is_a_usage_error(nowhere: dict[str, str | None]) -> None:
    result = _invoke("start", "quorum", *_approver_options(THREE), "--request", "{laptop}", env=nowhere)
    assert result.exit_code == 2
    assert "--request" in result.output and "not JSON" in result.output


def test_start_refuses_a_default_quorum_larger_than_the_approvers_read_from_the_stack(
        cloud: Cloud, quorum: Stack) -> None:
    stack = _cloudformation_stack(cloud, quorum, default_quorum=3)
    result = _invoke("start", "quorum", "--approver", "a", "--approver", "b", "--stack", stack, "--region", "us-east-1")
    assert result.exit_code == 2, result.output
    cause = check_input("quorum", {"approvers": ["a", "b"]}, default_quorum=3)
    assert cause is not None and cause.cause in " ".join(result.output.split())


def test_start_uses_the_state_machine_a_cloudformation_stack_names(cloud: Cloud, quorum: Stack) -> None:
    stack = _cloudformation_stack(cloud, quorum, default_quorum=3)
    arn = _start("quorum", *THREE, extra=("--stack", stack))
    assert arn.startswith(quorum.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":")


def _cloudformation_stack(cloud: Cloud, quorum: Stack, default_quorum: int) -> str:
    """A CloudFormation stack with sam deploy's parameters and outputs, pointing at ``quorum``'s state machine."""
    template = {"Parameters": {"DefaultQuorum": {"Type": "Number"}, "Machine": {"Type": "String"}},
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"StateMachineArn": {"Value": {"Ref": "Machine"}}}}
    name = unique("sam-deployed")
    cloud.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template), Parameters=[
        {"ParameterKey": "DefaultQuorum", "ParameterValue": str(default_quorum)},
        {"ParameterKey": "Machine", "ParameterValue": quorum.outputs["StateMachineArn"]}])
    return name


def test_start_without_a_region_suggests_a_local_endpoint(nowhere: dict[str, str | None]) -> None:
    result = _invoke("start", "quorum", *_approver_options(THREE), env=nowhere)
    assert result.exit_code == 1
    assert "no AWS region" in result.output and "--endpoint-url" in result.output


def test_start_without_credentials_suggests_a_local_endpoint(nowhere: dict[str, str | None]) -> None:
    result = _invoke("start", "quorum", *_approver_options(THREE), "--region", "us-east-1", env=nowhere)
    assert result.exit_code == 1
    assert "no AWS credentials" in result.output and "--endpoint-url" in result.output


# -- reading an execution -------------------------------------------------------------------------


def test_pending_lists_every_approver_then_shrinks_after_an_approval(approval: str) -> None:
    assert sorted(json.loads(_ok("pending", approval, "--json"))["pending"]) == list(THREE)
    _ok("approve", approval, "--as", "b")
    assert sorted(json.loads(_ok("pending", approval, "--json"))["pending"]) == ["a", "c"]


def test_pending_show_tokens_prints_a_task_token_that_answers_for_its_approver(sfn: Any, either_or: Stack) -> None:
    arn = _start("either-or", "alice", "bob")
    requests_out(sfn, arn, 2)
    tokens = dict(line.split("\t") for line in _ok("pending", arn, "--show-tokens").splitlines())
    assert sorted(tokens) == ["alice", "bob"]
    sfn.send_task_success(taskToken=tokens["bob"], output=json.dumps({"decision": "approve"}))
    assert _status(arn)["output"]["decidedBy"] == "bob"


def test_pending_show_tokens_json_gives_each_pending_request(sfn: Any, approval: str) -> None:
    requests = json.loads(_ok("pending", approval, "--show-tokens", "--json"))["requests"]
    live = {r.approver: r.task_token for r in read_approval(sfn, approval).pending}
    assert {r["approver"]: r["taskToken"] for r in requests} == live


def test_the_region_comes_from_the_execution_arn(approval: str, nowhere: dict[str, str | None]) -> None:
    result = _invoke("pending", approval, "--json", env={**nowhere, "AWS_ACCESS_KEY_ID": "testing",
                                                         "AWS_SECRET_ACCESS_KEY": "testing"})
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["pending"]) == list(THREE)


def test_a_region_other_than_the_execution_arn_s_is_a_usage_error(approval: str) -> None:
    result = _invoke("status", approval, "--region", "eu-west-1")
    assert result.exit_code == 2
    assert "us-east-1" in result.output and "eu-west-1" in result.output


def test_an_execution_that_is_not_an_arn_is_a_usage_error() -> None:
    result = _invoke("status", "my-execution", "--region", "us-east-1")
    assert result.exit_code == 2
    assert "not an execution ARN" in result.output


@pytest.mark.parametrize("command", [("pending",), ("approve", "--as", "a"), ("reject", "--as", "a"), ("status",)],
                         ids=lambda command: command[0])
def test_an_unknown_execution_has_one_wording_in_every_command(quorum: Stack, command: tuple[str, ...]) -> None:
    unknown = quorum.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":no-such-execution"
    result = _invoke(command[0], unknown, *command[1:], "--region", "us-east-1")
    assert result.exit_code == 1
    assert result.output == f"Error: no such execution: {unknown}\n"


# -- deciding -------------------------------------------------------------------------------------


def test_two_approvals_on_quorum_two_show_approved(approval: str) -> None:
    assert "a: approve sent" in _ok("approve", approval, "--as", "a", "--comment", "fine")
    _ok("approve", approval, "--as", "c")
    status = _status(approval)
    assert status["status"] == "SUCCEEDED"
    assert status["output"]["outcome"] == "APPROVED"
    assert sorted(status["output"]["approvals"]) == ["a", "c"]
    assert status["pending"] == []
    assert {"approver": "a", "decision": "approve", "comment": "fine"}.items() <= status["decisions"][0].items()


def test_two_rejections_on_quorum_two_show_rejected(approval: str) -> None:
    assert "a: reject sent" in _ok("reject", approval, "--as", "a")
    _ok("reject", approval, "--as", "b")
    status = _status(approval)
    assert status["output"]["outcome"] == "REJECTED"
    assert sorted(status["output"]["rejections"]) == ["a", "b"]


def test_either_or_first_approval_shows_approved(either_or: Stack) -> None:
    arn = _start("either-or", "alice", "bob")
    _ok("approve", arn, "--as", "bob")
    output = _status(arn)["output"]
    assert (output["outcome"], output["decidedBy"], output["pattern"]) == ("APPROVED", "bob", "either-or")


def test_approving_a_decided_execution_says_it_is_already_decided(approval: str) -> None:
    _ok("approve", approval, "--as", "a")
    _ok("approve", approval, "--as", "b")
    assert _status(approval)["output"]["outcome"] == "APPROVED"
    result = _invoke("approve", approval, "--as", "c")
    assert result.exit_code == 1
    assert "already decided: APPROVED" in result.output


def test_approving_a_failed_execution_says_it_failed_and_why(sfn: Any, failed: str) -> None:
    result = _invoke("approve", failed, "--as", "a")
    assert result.exit_code == 1
    assert "already decided" not in result.output
    cause = str(read_approval(sfn, failed).cause)
    assert "failed" in result.output and "InvalidInput" in result.output and cause in result.output


def test_an_unknown_approver_fails_naming_the_approver(sfn: Any, approval: str) -> None:
    result = _invoke("approve", approval, "--as", "mallory")
    assert result.exit_code == 1
    assert "mallory" in result.output and "not an approver" in result.output
    assert sorted(r.approver for r in read_approval(sfn, approval).pending) == list(THREE)


# -- status ---------------------------------------------------------------------------------------


def test_status_shows_the_outcome_and_the_decisions(approval: str) -> None:
    _ok("reject", approval, "--as", "a")
    _ok("reject", approval, "--as", "c")
    assert _status(approval)["output"]["outcome"] == "REJECTED"
    shown = _ok("status", approval)
    assert any(line.startswith("REJECTED") for line in shown.splitlines()), shown
    assert "a rejected" in shown and "c rejected" in shown


def test_status_json_carries_the_decision_record_with_each_comment_and_time(sfn: Any, approval: str) -> None:
    before = datetime.now(UTC)
    _ok("approve", approval, "--as", "b", "--comment", "fine by me")
    wait_until_counted(sfn, approval, "b")
    between = datetime.now(UTC)
    _ok("reject", approval, "--as", "a")
    wait_until_counted(sfn, approval, "a")
    _ok("approve", approval, "--as", "c", "--comment", "ship it")
    output = _status(approval)["output"]
    after = datetime.now(UTC)
    assert timeless(output)["decisions"] == [{"approver": "b", "decision": "approve", "comment": "fine by me"},
                                             {"approver": "a", "decision": "reject", "comment": None},
                                             {"approver": "c", "decision": "approve", "comment": "ship it"}]
    times = [datetime.fromisoformat(d["at"]) for d in output["decisions"]]
    assert to_the_millisecond(before) <= times[0] <= between
    assert to_the_millisecond(between) <= times[1] <= times[2] <= after
    assert output["decidedBy"] == "c"


def to_the_millisecond(moment: datetime) -> datetime:
    """``moment`` without its microseconds: a decision's time has only milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_status_exits_1_on_a_failed_execution(failed: str) -> None:
    result = _invoke("status", failed, "--region", "us-east-1")
    assert result.exit_code == 1
    assert "FAILED" in result.output and "InvalidInput" in result.output


def test_status_exits_1_on_a_stopped_execution(sfn: Any, approval: str) -> None:
    sfn.stop_execution(executionArn=approval)
    result = _invoke("status", approval, "--json", "--region", "us-east-1")
    assert result.exit_code == 1
    assert json.loads(result.output)["status"] == "ABORTED"


def test_status_watch_shows_who_is_pending_then_ends_at_the_outcome(sfn: Any, quorum: Stack) -> None:
    arn = _ok("start", "quorum", *_approver_options(THREE), "--timeout-seconds", "2").strip()
    requests_out(sfn, arn, 3)
    lines = _ok("status", arn, "--watch").splitlines()
    waiting = next(i for i, line in enumerate(lines) if line.startswith("RUNNING  waiting for a, b, c"))
    outcome = next(i for i, line in enumerate(lines) if line.startswith("TIMED_OUT"))
    assert waiting < outcome


# -- demo -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_output() -> str:
    """`earlyexit demo` (both patterns, then an approval answered in the inbox) at 80 columns, run once."""
    result = subprocess.run([sys.executable, "-m", "earlyexit", "demo"], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_shows_every_scenario_s_outcome_within_80_columns(demo_output: str) -> None:
    lines = demo_output.splitlines()
    # A link is never cut: it may be longer than the terminal, on a line of its own.
    assert [line for line in lines if len(line.rstrip()) > 80 and not re.fullmatch(r"https?://\S+", line)] == []
    titles = [scenario.title for scenarios in SCENARIOS.values() for scenario in scenarios]
    assert [line for line in lines if line in titles] == titles
    outcomes = [line.split()[0] for line in lines if line.split()[:1] in (["APPROVED"], ["REJECTED"], ["TIMED_OUT"])]
    assert len(outcomes) == len(titles) + 1  # and the approval answered in the inbox


def test_demo_shows_a_notification_the_page_it_links_and_the_answer_given_there(demo_output: str) -> None:
    lines = [line.rstrip() for line in demo_output.splitlines()]
    assert "Mail to alice - Approval requested: either-or" in lines
    assert any(re.fullmatch(r"http://127\.0\.0\.1:\d+/execute-api/\w+/requests/[\w-]{32}", line) for line in lines)
    assert "Approver: alice" in lines and " [Approve] [Reject]" in lines
    assert "Recorded: you approved. Your comment: fine by me" in lines
    assert "alice approves in the inbox" in lines


# -- pending --links --------------------------------------------------------------------------------


def test_pending_refuses_show_tokens_and_links_together() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:machine:name"
    result = _invoke("pending", arn, "--show-tokens", "--links", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "--show-tokens and --links exclude each other" in result.output
