"""`earlyexit serve`: an AWS-compatible endpoint that plain boto3 and the CLI drive like AWS."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from endpoint import READY_TIMEOUT, client, serving
from support import described_end, ended, record, tally, timeless, tokens_out

from earlyexit.patterns import PATTERNS, STACKS, stack_folder
from earlyexit.polling import wait_until

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[1]

Endpoint = tuple[str, dict[str, dict[str, str]], str]  # URL, each pattern's stack outputs, the approval queue


@pytest.fixture(scope="module")
def server(served: dict[str, Any]) -> Endpoint:
    return served["endpoint"], served["stacks"], served["approvalQueueUrl"]


def _outcome(sfn: Any, execution_arn: str) -> dict[str, Any]:
    """The output of the execution, once it has SUCCEEDED."""
    execution = ended(sfn, execution_arn)
    assert execution.status == "SUCCEEDED", (execution.status, execution.error, execution.cause)
    assert execution.output is not None
    return execution.output


def _start(url: str, state_machine_arn: str, approvers: list[str], **extra: Any) -> str:
    execution_input = {"approvers": approvers, "request": {"laptop": "14-inch"}, "timeoutSeconds": 30, **extra}
    return client(url, "stepfunctions").start_execution(
        stateMachineArn=state_machine_arn, input=json.dumps(execution_input))["executionArn"]


def _decide(url: str, token: str, decision: str) -> None:
    client(url, "stepfunctions").send_task_success(taskToken=token, output=json.dumps({"decision": decision}))


def test_ready_line_names_the_endpoint_and_both_stacks_outputs(server: Endpoint) -> None:
    url, stacks, _ = server
    assert url.startswith("http://127.0.0.1:")
    assert set(stacks) == set(STACKS)
    for pattern, outputs in ((p, stacks[p]) for p in PATTERNS):
        assert outputs["StateMachineArn"].startswith("arn:aws:states:us-east-1:")
        assert outputs["StateMachineArn"].endswith(f":stateMachine:{outputs['StateMachineName']}")
        assert outputs["StateMachineName"].startswith(f"{stack_folder(pattern).default_stack_name}-")
    assert "TableName" in stacks["quorum"] and "TableName" not in stacks["either-or"]
    machines = {m["stateMachineArn"] for m in client(url, "stepfunctions").list_state_machines()["stateMachines"]}
    assert {stacks[p]["StateMachineArn"] for p in PATTERNS} <= machines


def test_either_or_approval_with_plain_boto3_ends_approved_by_the_approver(server: Endpoint) -> None:
    url, stacks, _ = server
    sfn = client(url, "stepfunctions")
    arn = _start(url, stacks["either-or"]["StateMachineArn"], ["alice", "bob"])
    _decide(url, tokens_out(sfn, arn, 2)["bob"], "approve")
    output = _outcome(sfn, arn)
    assert timeless(output) == {"outcome": "APPROVED", "pattern": "either-or", "request": {"laptop": "14-inch"},
                                "approvals": ["bob"], "rejections": [], "decisions": record([("bob", "approve")]),
                                "decidedBy": "bob"}


def test_quorum_two_of_three_approvals_end_approved_and_are_tallied_in_dynamodb(server: Endpoint) -> None:
    url, stacks, _ = server
    sfn = client(url, "stepfunctions")
    arn = _start(url, stacks["quorum"]["StateMachineArn"], ["alice", "bob", "carol"], quorum=2)
    tokens = tokens_out(sfn, arn, 3)
    _decide(url, tokens["alice"], "approve")
    _decide(url, tokens["carol"], "approve")
    output = _outcome(sfn, arn)
    assert output["outcome"] == "APPROVED"
    assert output["quorum"] == 2
    assert sorted(output["approvals"]) == ["alice", "carol"]
    recorded = tally(client(url, "dynamodb"), stacks["quorum"]["TableName"], arn)
    assert recorded is not None, "no tally item for the execution"
    assert recorded.approvals == {"alice", "carol"}


def test_a_decision_after_the_outcome_is_refused_with_task_timed_out(server: Endpoint) -> None:
    url, stacks, _ = server
    sfn = client(url, "stepfunctions")
    arn = _start(url, stacks["either-or"]["StateMachineArn"], ["alice", "bob"])
    tokens = tokens_out(sfn, arn, 2)
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
    url, stacks, _ = server
    arn = _earlyexit(url, "start", "quorum", "--approver", "a", "--approver", "b", "--approver", "c",
                     "--timeout-seconds", "30").strip()
    assert arn.startswith(stacks["quorum"]["StateMachineArn"].replace(":stateMachine:", ":execution:") + ":")
    wait_until(lambda: len(json.loads(_earlyexit(url, "pending", arn, "--json"))["pending"]) == 3,
               timeout=20, what="the requests to a, b and c")
    _earlyexit(url, "approve", arn, "--as", "a")
    _earlyexit(url, "approve", arn, "--as", "b")
    status = json.loads(_earlyexit(url, "status", arn, "--watch", "--json"))
    assert status["status"] == "SUCCEEDED"
    assert status["output"]["outcome"] == "APPROVED"
    assert status["output"]["decidedBy"] == "b"


def _received(url: str, queue_url: str, execution_arn: str, count: int) -> list[dict[str, Any]]:
    """The ApprovalRequested events for ``execution_arn`` that the approval queue delivers (plain boto3)."""
    sqs, events = client(url, "sqs"), []

    def probe() -> list[dict[str, Any]] | None:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        mine = [e for e in events if e["detail"]["executionArn"] == execution_arn]
        return mine if len(mine) >= count else None

    return wait_until(probe, timeout=10, what=f"{count} requests of {execution_arn} in the queue")


def test_the_approval_queue_receives_each_request_as_eventbridge_delivers_it(server: Endpoint) -> None:
    url, stacks, queue_url = server
    arn = _start(url, stacks["quorum"]["StateMachineArn"], ["alice", "bob", "carol"], quorum=2)
    received = _received(url, queue_url, arn, 3)
    assert {(e["source"], e["detail-type"]) for e in received} == {("earlyexit", "ApprovalRequested")}
    assert sorted(e["detail"]["approver"] for e in received) == ["alice", "bob", "carol"]
    assert {json.dumps(e["detail"]["request"]) for e in received} == {json.dumps({"laptop": "14-inch"})}
    assert {e["detail"]["pattern"] for e in received} == {"quorum"}


def test_a_task_token_from_the_approval_queue_decides(server: Endpoint) -> None:
    url, stacks, queue_url = server
    arn = _start(url, stacks["either-or"]["StateMachineArn"], ["alice", "bob"])
    requests = _received(url, queue_url, arn, 2)
    token = next(e["detail"]["taskToken"] for e in requests if e["detail"]["approver"] == "bob")
    _decide(url, token, "reject")
    output = _outcome(client(url, "stepfunctions"), arn)
    assert (output["outcome"], output["decidedBy"]) == ("REJECTED", "bob")


def test_the_cli_honours_aws_endpoint_url(server: Endpoint) -> None:
    url, stacks, _ = server
    command = [sys.executable, "-m", "earlyexit", "start", "either-or", "--approver", "a", "--approver", "b"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "AWS_ENDPOINT_URL": url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(stacks["either-or"]["StateMachineArn"].replace(":stateMachine:", ":execution:"))


def test_a_busy_port_fails_at_once_saying_how_to_get_a_free_one(server: Endpoint) -> None:
    url, _, _ = server
    port = url.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, "-m", "earlyexit", "serve", "--port", port], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port 0" in result.stderr
    assert result.stdout == ""


# The test extra installs the AWS CLI into the project's environment, as the README tells a user to.
AWS_CLI = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")


@pytest.mark.skipif(AWS_CLI is None, reason="the AWS CLI is not installed (pip install awscli, or make test)")
def test_the_readme_s_aws_cli_commands_run_an_approval(server: Endpoint) -> None:
    """start-execution, read the requests from the queue, send-task-success: as the README shows them."""
    url, stacks, queue_url = server
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}

    def aws(*args: str) -> str:
        result = subprocess.run([str(AWS_CLI), *args, "--endpoint-url", url], capture_output=True, text=True,
                                timeout=60, env=env, cwd=ROOT)
        assert result.returncode == 0, f"aws {' '.join(args)}: {result.stderr}"
        return result.stdout

    aws("sqs", "purge-queue", "--queue-url", queue_url)  # the README empties the queue of earlier requests first
    arn = json.loads(aws("stepfunctions", "start-execution", "--state-machine-arn",
                         stacks["either-or"]["StateMachineArn"], "--input", "file://either-or/examples/input.json"))[
        "executionArn"]

    def requests() -> list[dict[str, Any]] | None:
        bodies = aws("sqs", "receive-message", "--queue-url", queue_url, "--max-number-of-messages", "10",
                     "--query", f"Messages[?contains(Body, '{arn}')].Body", "--output", "json")
        mine = [json.loads(body) for body in json.loads(bodies) or []]
        assert {e["detail"]["executionArn"] for e in mine} <= {arn}, "the README's filter lets others through"
        return mine or None

    token = wait_until(requests, timeout=20, what="a request in the queue")[0]["detail"]["taskToken"]
    aws("stepfunctions", "send-task-success", "--task-token", token, "--task-output", '{"decision": "approve"}')
    assert _outcome(client(url, "stepfunctions"), arn)["outcome"] == "APPROVED"


def test_max_executions_keeps_only_the_latest_finished_executions() -> None:
    with serving("--max-executions", "2") as ready:
        url, stacks = ready["endpoint"], ready["stacks"]
        sfn = client(url, "stepfunctions")
        arns = []
        for _ in range(3):  # one after the other: each fails on its input before the next starts
            arns.append(sfn.start_execution(stateMachineArn=stacks["either-or"]["StateMachineArn"],
                                            input=json.dumps({"approvers": []}))["executionArn"])
            assert described_end(sfn, arns[-1], timeout=10)["status"] == "FAILED"  # on its input
        with pytest.raises(ClientError) as dropped:
            sfn.describe_execution(executionArn=arns[0])
        kept = [sfn.describe_execution(executionArn=arn)["status"] for arn in arns[1:]]
    assert dropped.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
    assert kept == ["FAILED", "FAILED"]


def test_an_operation_the_endpoint_does_not_implement_is_an_error_sdks_parse(server: Endpoint) -> None:
    """Not an HTML 500: a JSON error with its type, 400, which SDKs raise at once instead of retrying."""
    url, _, _ = server
    with pytest.raises(ClientError) as raised:
        client(url, "stepfunctions").list_state_machine_versions(
            stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:any")
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    with pytest.raises(ClientError) as sqs_raised:
        client(url, "sqs").list_message_move_tasks(SourceArn="arn:aws:sqs:us-east-1:123456789012:q")
    assert sqs_raised.value.response["Error"]["Code"] == "UnknownOperationException"


def test_an_unknown_query_protocol_action_is_an_invalid_action_xml_error(server: Endpoint) -> None:
    url, _, _ = server
    request = urllib.request.Request(f"{url}/?Action=NoSuchAction&Version=2010-03-31", headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261206/us-east-1/sns/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    body = refused.value.read().decode()
    assert refused.value.code == 400 and refused.value.headers["Content-Type"].startswith("text/xml")
    assert "<Code>InvalidAction</Code>" in body and "<ErrorResponse>" in body


def test_a_region_other_than_the_endpoint_s_names_the_region_serve_deploys_in(server: Endpoint) -> None:
    url, _, _ = server
    result = subprocess.run([sys.executable, "-m", "earlyexit", "start", "quorum", "--approver", "a", "--approver",
                             "b", "--endpoint-url", url, "--region", "eu-west-1"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "no stack earlyexit-quorum in eu-west-1: `earlyexit serve` deploys its stacks in us-east-1 only" in said
    assert "sam deploy" not in said


def test_ctrl_c_on_status_watch_exits_130_without_aborted(server: Endpoint) -> None:
    url, stacks, _ = server
    arn = _start(url, stacks["either-or"]["StateMachineArn"], ["alice", "bob"])
    watching = subprocess.Popen([sys.executable, "-m", "earlyexit", "status", arn, "--watch", "--endpoint-url", url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watching.stdout is not None
        first = watching.stdout.readline()  # the title: it is watching
        assert arn.endswith(first.strip())
        watching.send_signal(signal.SIGINT)
        _, stderr = watching.communicate(timeout=30)
    finally:
        watching.kill()
        client(url, "stepfunctions").stop_execution(executionArn=arn)
    assert watching.returncode == 130
    assert "Aborted" not in stderr and "Traceback" not in stderr


def test_the_ready_line_is_also_said_one_address_a_line_within_80_columns() -> None:
    server = subprocess.Popen([sys.executable, "-m", "earlyexit", "serve", "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert server.stderr is not None and server.stdout is not None
        lines.put(server.stdout.readline())
        for line in server.stderr:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        ready = json.loads(lines.get(timeout=READY_TIMEOUT))
        said = []
        while not said or not said[-1].startswith("In memory only"):
            said.append(lines.get(timeout=30).rstrip("\n"))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert said[-9:] == [
        f"Ready: {ready['endpoint']} (region us-east-1, any credentials)",
        "Approval requests (SQS queue):", f"  {ready['approvalQueueUrl']}",
        "Notifications (SQS queue):", f"  {ready['notificationQueueUrl']}",
        "Inbox:", f"  {ready['stacks']['inbox']['InboxUrl']}",
        f"In another terminal: export AWS_ENDPOINT_URL={ready['endpoint']}",
        "In memory only: Ctrl-C stops the endpoint and loses every execution.",
    ]
    assert [line for line in said[-9:] if len(line) > 80 and not line.startswith("  http")] == []
    assert server.returncode == 0
