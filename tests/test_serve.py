"""`earlyexit serve`: an AWS-compatible endpoint that plain boto3 and the CLI drive like AWS."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.engine

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

Endpoint = tuple[str, dict[str, dict[str, str]]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[Endpoint]:
    """`earlyexit serve` in a subprocess: yields (endpoint URL, each pattern's stack outputs)."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "earlyexit", "serve", "--port", str(_free_port())],
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()

        def errors() -> str:
            stderr.seek(0)
            return stderr.read()

        try:
            line = lines.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            process.kill()
            pytest.fail(f"no ready line within {READY_TIMEOUT:.0f} s; stderr:\n{errors()}")
        if not line:
            process.wait()
            pytest.fail(f"`earlyexit serve` exited with {process.returncode} before it was ready; stderr:\n{errors()}")
        ready = json.loads(line)
        try:
            yield ready["endpoint"], ready["stacks"]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail(f"`earlyexit serve` did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
            rest = process.stdout.read()
            assert code == 0, f"exit code {code}; stderr:\n{errors()}"
            assert rest == "", f"stdout holds more than the ready line: {rest!r}"


def _client(url: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _tokens(sfn: Any, execution_arn: str, count: int, timeout: float = 10.0) -> dict[str, str]:
    """approver -> task token, read from the ApprovalRequested events in the history."""
    deadline = time.monotonic() + timeout
    while True:
        tokens: dict[str, str] = {}
        for event in sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]:
            if event["type"] != "TaskScheduled":
                continue
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            if "Entries" not in parameters:
                continue
            detail = parameters["Entries"][0]["Detail"]
            detail = json.loads(detail) if isinstance(detail, str) else detail
            tokens[detail["approver"]] = detail["taskToken"]
        if len(tokens) >= count:
            return tokens
        assert time.monotonic() < deadline, f"only {sorted(tokens)} asked within {timeout} s"
        time.sleep(0.05)


def _outcome(sfn: Any, execution_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described
            return json.loads(described["output"])
        assert time.monotonic() < deadline, f"still RUNNING after {timeout} s"
        time.sleep(0.05)


def _start(url: str, state_machine_arn: str, approvers: list[str], **extra: Any) -> str:
    execution_input = {"approvers": approvers, "request": {"laptop": "14-inch"}, "timeoutSeconds": 30, **extra}
    return _client(url, "stepfunctions").start_execution(
        stateMachineArn=state_machine_arn, input=json.dumps(execution_input))["executionArn"]


def _decide(url: str, token: str, decision: str) -> None:
    _client(url, "stepfunctions").send_task_success(taskToken=token, output=json.dumps({"decision": decision}))


def test_ready_line_names_the_endpoint_and_both_stacks_outputs(server: Endpoint) -> None:
    url, stacks = server
    assert url.startswith("http://127.0.0.1:")
    assert set(stacks) == {"either-or", "quorum"}
    for pattern, outputs in stacks.items():
        assert outputs["StateMachineArn"].startswith("arn:aws:states:us-east-1:")
        assert outputs["StateMachineArn"].endswith(f":stateMachine:{outputs['StateMachineName']}")
        assert outputs["StateMachineName"].startswith(f"earlyexit-{pattern}-")
    assert "TableName" in stacks["quorum"] and "TableName" not in stacks["either-or"]
    machines = {m["stateMachineArn"] for m in _client(url, "stepfunctions").list_state_machines()["stateMachines"]}
    assert {outputs["StateMachineArn"] for outputs in stacks.values()} <= machines


def test_either_or_approval_with_plain_boto3_ends_approved_by_the_approver(server: Endpoint) -> None:
    url, stacks = server
    sfn = _client(url, "stepfunctions")
    arn = _start(url, stacks["either-or"]["StateMachineArn"], ["alice", "bob"])
    _decide(url, _tokens(sfn, arn, 2)["bob"], "approve")
    output = _outcome(sfn, arn)
    assert output["outcome"] == "APPROVED"
    assert output["decidedBy"] == "bob"
    assert output["approvals"] == ["bob"] and output["rejections"] == []
    assert output["request"] == {"laptop": "14-inch"}


def test_quorum_two_of_three_approvals_end_approved_and_are_tallied_in_dynamodb(server: Endpoint) -> None:
    url, stacks = server
    sfn = _client(url, "stepfunctions")
    arn = _start(url, stacks["quorum"]["StateMachineArn"], ["alice", "bob", "carol"], quorum=2)
    tokens = _tokens(sfn, arn, 3)
    _decide(url, tokens["alice"], "approve")
    _decide(url, tokens["carol"], "approve")
    output = _outcome(sfn, arn)
    assert output["outcome"] == "APPROVED"
    assert output["quorum"] == 2
    assert sorted(output["approvals"]) == ["alice", "carol"]
    item = _client(url, "dynamodb").get_item(TableName=stacks["quorum"]["TableName"],
                                             Key={"executionArn": {"S": arn}}, ConsistentRead=True).get("Item")
    assert item is not None, "no tally item for the execution"
    assert sorted(item["approvals"]["SS"]) == ["alice", "carol"]


def test_a_decision_after_the_outcome_is_refused_with_task_timed_out(server: Endpoint) -> None:
    url, stacks = server
    sfn = _client(url, "stepfunctions")
    arn = _start(url, stacks["either-or"]["StateMachineArn"], ["alice", "bob"])
    tokens = _tokens(sfn, arn, 2)
    _decide(url, tokens["alice"], "reject")
    assert _outcome(sfn, arn)["outcome"] == "REJECTED"
    with pytest.raises(ClientError) as refused:
        _decide(url, tokens["bob"], "approve")
    assert refused.value.response["Error"]["Code"] == "TaskTimedOut"
    assert _outcome(sfn, arn)["outcome"] == "REJECTED"


def _earlyexit(url: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "earlyexit", *args, "--endpoint-url", url],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"earlyexit {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def test_cli_runs_a_quorum_approval_against_the_endpoint(server: Endpoint) -> None:
    url, stacks = server
    arn = _earlyexit(url, "start", "quorum", "--approver", "a", "--approver", "b", "--approver", "c",
                     "--timeout-seconds", "30").strip()
    assert arn.startswith(stacks["quorum"]["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":")
    deadline = time.monotonic() + 10
    while len(pending := json.loads(_earlyexit(url, "pending", arn, "--json"))["pending"]) < 3:
        assert time.monotonic() < deadline, f"pending: {pending}"  # the requests are still being sent
        time.sleep(0.1)
    assert sorted(pending) == ["a", "b", "c"]
    _earlyexit(url, "approve", arn, "--as", "a")
    _earlyexit(url, "approve", arn, "--as", "b")
    status = json.loads(_earlyexit(url, "status", arn, "--watch", "--json"))
    assert status["status"] == "SUCCEEDED"
    assert status["output"]["outcome"] == "APPROVED"
    assert status["output"]["decidedBy"] == "b"
