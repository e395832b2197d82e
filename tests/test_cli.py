"""The `earlyexit` commands against the embedded engine (boto3 calls are intercepted in-process)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from click.testing import CliRunner, Result

from earlyexit.cli import main
from earlyexit.local import Cloud, Stack

pytestmark = pytest.mark.engine


def _invoke(*args: str) -> Result:
    # No --endpoint-url: moto's in-process mock answers the default AWS endpoints.
    return CliRunner().invoke(main, [*args, "--region", "us-east-1"])


def _ok(*args: str) -> str:
    result = _invoke(*args)
    assert result.exit_code == 0, f"earlyexit {' '.join(args)} exited {result.exit_code}: {result.output}"
    return result.output


def _start(pattern: str, *approvers: str, extra: tuple[str, ...] = ()) -> str:
    options = [option for approver in approvers for option in ("--approver", approver)]
    return _ok("start", pattern, *options, "--timeout-seconds", "30", *extra).strip()


def _pending(arn: str, count: int) -> list[str]:
    """Pending approvers once ``count`` requests are out (they are sent just after the start)."""
    deadline = time.monotonic() + 10
    while True:
        pending = json.loads(_ok("pending", arn, "--json"))["pending"]
        if len(pending) >= count or time.monotonic() > deadline:
            return pending
        time.sleep(0.05)


def _status(arn: str) -> dict[str, Any]:
    return json.loads(_ok("status", arn, "--watch", "--json"))


@pytest.fixture
def approval(cloud: Cloud, quorum: Stack) -> str:
    """A running quorum-2 approval for a, b and c, its requests sent."""
    arn = _start("quorum", "a", "b", "c")
    assert len(_pending(arn, 3)) == 3
    return arn


def test_start_prints_an_execution_arn_of_the_stack(cloud: Cloud, quorum: Stack) -> None:
    arn = _start("quorum", "a", "b", "c", extra=("--stack", "earlyexit-quorum", "--request", '{"laptop": "14-inch"}'))
    execution_prefix = quorum.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":"
    assert arn.startswith(execution_prefix)
    described = cloud.client("stepfunctions").describe_execution(executionArn=arn)
    assert json.loads(described["input"]) == {"approvers": ["a", "b", "c"], "request": {"laptop": "14-inch"},
                                              "timeoutSeconds": 30}


def test_pending_lists_every_approver_then_shrinks_after_an_approval(approval: str) -> None:
    assert sorted(_pending(approval, 3)) == ["a", "b", "c"]
    _ok("approve", approval, "--as", "b")
    assert sorted(json.loads(_ok("pending", approval, "--json"))["pending"]) == ["a", "c"]


def test_two_approvals_on_quorum_two_show_approved(approval: str) -> None:
    assert "a: approve sent" in _ok("approve", approval, "--as", "a", "--comment", "fine")
    _ok("approve", approval, "--as", "c")
    status = _status(approval)
    assert status["status"] == "SUCCEEDED"
    assert status["output"]["outcome"] == "APPROVED"
    assert sorted(status["output"]["approvals"]) == ["a", "c"]
    assert status["output"]["decidedBy"] == "c"
    assert status["pending"] == []
    assert {"approver": "a", "decision": "approve", "comment": "fine"}.items() <= status["decisions"][0].items()


def test_two_rejections_on_quorum_two_show_rejected(approval: str) -> None:
    assert "a: reject sent" in _ok("reject", approval, "--as", "a")
    _ok("reject", approval, "--as", "b")
    status = _status(approval)
    assert status["output"]["outcome"] == "REJECTED"
    assert sorted(status["output"]["rejections"]) == ["a", "b"]
    assert status["output"]["decidedBy"] == "b"


def test_either_or_first_approval_shows_approved(cloud: Cloud, either_or: Stack) -> None:
    arn = _start("either-or", "alice", "bob")
    _ok("approve", arn, "--as", "bob")
    output = _status(arn)["output"]
    assert output["outcome"] == "APPROVED"
    assert output["decidedBy"] == "bob"
    assert output["pattern"] == "either-or"


def test_approving_a_decided_execution_fails_with_already_decided(approval: str) -> None:
    _ok("approve", approval, "--as", "a")
    _ok("approve", approval, "--as", "b")
    assert _status(approval)["output"]["outcome"] == "APPROVED"
    result = _invoke("approve", approval, "--as", "c")
    assert result.exit_code != 0
    assert "already decided" in result.output


def test_an_unknown_approver_fails_naming_the_approver(approval: str) -> None:
    result = _invoke("approve", approval, "--as", "mallory")
    assert result.exit_code != 0
    assert "mallory" in result.output and "not an approver" in result.output
    assert sorted(_pending(approval, 3)) == ["a", "b", "c"]


def test_an_unknown_execution_fails_with_a_clear_message(cloud: Cloud, quorum: Stack) -> None:
    unknown = quorum.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":no-such-execution"
    decision = _invoke("approve", unknown, "--as", "a")
    assert decision.exit_code != 0
    assert f"no such execution: {unknown}" in decision.output
    status = _invoke("status", unknown)
    assert status.exit_code != 0
    assert "Execution Does Not Exist" in status.output and status.exception is not None
    assert isinstance(status.exception, SystemExit)  # a message, not a traceback


def test_start_with_a_request_that_is_not_json_is_a_usage_error(cloud: Cloud, quorum: Stack) -> None:
    result = _invoke("start", "quorum", "--approver", "a", "--approver", "b", "--approver", "c",
                     "--request", "{laptop}")
    assert result.exit_code == 2
    assert "--request" in result.output and "not JSON" in result.output


def test_status_shows_the_outcome_word(approval: str) -> None:
    _ok("reject", approval, "--as", "a")
    _ok("reject", approval, "--as", "c")
    assert _status(approval)["output"]["outcome"] == "REJECTED"
    shown = _ok("status", approval)
    assert any(line.strip().startswith("REJECTED") for line in shown.splitlines()), shown
    assert "a rejected" in shown and "c rejected" in shown
