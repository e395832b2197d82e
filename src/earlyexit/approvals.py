"""Start approvals and answer them, against any Step Functions API (embedded, endpoint or AWS)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from earlyexit.history import Execution, read_execution

__all__ = ["ApprovalError", "start_approval", "decide", "send_at_once", "wait_for_outcome", "wait_for_requests"]


class ApprovalError(Exception):
    """A decision that cannot be sent: unknown execution or approver, or already decided."""


def start_approval(sfn: Any, state_machine_arn: str, approvers: list[str], request: dict[str, Any] | None = None,
                   quorum: int | None = None, timeout_seconds: int | None = None, name: str | None = None) -> str:
    """Start an approval execution; returns its ARN."""
    execution_input: dict[str, Any] = {"approvers": approvers}
    if request is not None:
        execution_input["request"] = request
    if quorum is not None:
        execution_input["quorum"] = quorum
    if timeout_seconds is not None:
        execution_input["timeoutSeconds"] = timeout_seconds
    kwargs = {"name": name} if name else {}
    return sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(execution_input), **kwargs)[
        "executionArn"]


def _read(sfn: Any, execution_arn: str) -> Execution:
    try:
        return read_execution(sfn, execution_arn)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn", "StateMachineDoesNotExist"):
            raise ApprovalError(f"no such execution: {execution_arn}") from None
        raise


def wait_for_requests(sfn: Any, execution_arn: str, count: int, timeout: float = 10.0) -> Execution:
    """Wait until ``count`` approval requests are sent, or the execution ends."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        execution = _read(sfn, execution_arn)
        if len(execution.requests) >= count or execution.status != "RUNNING" or time.monotonic() > deadline:
            return execution
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)


def decide(sfn: Any, execution_arn: str, approver: str, decision: str, comment: str | None = None) -> None:
    """Send ``approver``'s decision ("approve" or "reject") on ``execution_arn``."""
    if decision not in ("approve", "reject"):
        raise ApprovalError(f"decision must be 'approve' or 'reject', not {decision!r}")
    execution = _read(sfn, execution_arn)
    approvers = execution.input.get("approvers") or []
    if approver not in approvers:
        raise ApprovalError(f"{approver!r} is not an approver of this execution (approvers: {', '.join(approvers)})")
    if execution.status == "RUNNING" and approver not in {r.approver for r in execution.requests}:
        execution = wait_for_requests(sfn, execution_arn, len(approvers))
    if execution.status != "RUNNING":
        raise ApprovalError(f"already decided: the execution is {execution.status}"
                            + (f" ({execution.output['outcome']})" if execution.output else ""))
    if approver in {d.approver for d in execution.decisions}:
        raise ApprovalError(f"{approver} has already answered this execution")
    request = next(r for r in execution.requests if r.approver == approver)
    output = {"decision": decision, **({"comment": comment} if comment else {})}
    try:
        sfn.send_task_success(taskToken=request.task_token, output=json.dumps(output))
    except ClientError as error:
        if error.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            raise ApprovalError(f"already decided: Step Functions refused the decision "
                                f"({error.response['Error']['Code']})") from None
        raise


def send_at_once(sfn: Any, answers: Sequence[tuple[str, str]]) -> list[str | None]:
    """Send each (task token, decision) from its own thread, all released together, as approvers
    answering at the same instant; returns each call's error code (None when accepted)."""
    barrier = threading.Barrier(len(answers))
    codes: list[str | None] = [None] * len(answers)

    def send(index: int, token: str, decision: str) -> None:
        barrier.wait()
        try:
            sfn.send_task_success(taskToken=token, output=json.dumps({"decision": decision}))
        except ClientError as error:
            codes[index] = error.response["Error"]["Code"]

    threads = [threading.Thread(target=send, args=(i, *answer)) for i, answer in enumerate(answers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def wait_for_outcome(sfn: Any, execution_arn: str, timeout: float = 30.0) -> Execution:
    """Poll (backing off from 10 ms to 250 ms) until the execution ends or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING" or time.monotonic() > deadline:
            return read_execution(sfn, execution_arn)
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)
