"""Start approvals, read them and answer them, against any Step Functions API (embedded, endpoint or AWS)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from earlyexit.errors import EarlyExitError
from earlyexit.history import ApprovalRequest, Execution, read_execution
from earlyexit.polling import wait_until

__all__ = ["ApprovalError", "UnknownExecution", "approval_input", "decide", "ended", "read_approval", "send_at_once",
           "start_approval", "wait_for_outcome", "wait_for_requests"]

_UNKNOWN = ("ExecutionDoesNotExist", "InvalidArn", "StateMachineDoesNotExist")
_REFUSED = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")


class ApprovalError(EarlyExitError):
    """A decision that cannot be sent: unknown execution or approver, already answered, or the execution has ended."""


class UnknownExecution(ApprovalError):
    """No execution has this ARN (the one wording for it: ``no such execution: ARN``)."""

    def __init__(self, execution_arn: str) -> None:
        super().__init__(f"no such execution: {execution_arn}")


def approval_input(approvers: Sequence[str], *, request: Any = None, quorum: Any = None,
                   timeout_seconds: Any = None, reminder_seconds: Any = None) -> dict[str, Any]:
    """The execution input; a field left None is not sent, so the stack's default applies (no reminders)."""
    fields = {"approvers": list(approvers), "request": request, "quorum": quorum, "timeoutSeconds": timeout_seconds,
              "reminderSeconds": reminder_seconds}
    return {key: value for key, value in fields.items() if value is not None}


def start_approval(sfn: Any, state_machine_arn: str, approvers: Sequence[str], *, request: dict[str, Any] | None = None,
                   quorum: int | None = None, timeout_seconds: int | None = None, reminder_seconds: int | None = None,
                   name: str | None = None) -> str:
    """Start an approval execution (see :func:`approval_input`); returns its ARN."""
    execution_input = approval_input(approvers, request=request, quorum=quorum, timeout_seconds=timeout_seconds,
                                     reminder_seconds=reminder_seconds)
    return str(sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(execution_input),
                                   **({"name": name} if name else {}))["executionArn"])


def read_approval(sfn: Any, execution_arn: str) -> Execution:
    """The execution read from its history; raises :class:`UnknownExecution` when there is none."""
    try:
        return read_execution(sfn, execution_arn)
    except ClientError as error:
        if error.response["Error"]["Code"] in _UNKNOWN:
            raise UnknownExecution(execution_arn) from None
        raise


def ended(execution: Execution) -> str:
    """Why nothing can be decided on an execution that is no longer running, in one sentence."""
    if execution.status == "SUCCEEDED":
        output = execution.output or {}
        if output.get("outcome") == "TIMED_OUT":  # a deadline that passed is not a decision
            return "the deadline has passed before the outcome was settled (TIMED_OUT): nobody decided it"
        by = f" by {output['decidedBy']}" if output.get("decidedBy") else ""
        return f"already decided: {output.get('outcome')}{by}"
    if execution.status == "FAILED":
        return f"the execution failed ({execution.error}: {execution.cause})"
    if execution.status == "ABORTED":
        return "the execution was stopped (ABORTED) before an outcome"
    return f"the execution ended {execution.status} before an outcome"


def wait_for_requests(sfn: Any, execution_arn: str, count: int, *, timeout: float = 10.0) -> Execution:
    """The execution once ``count`` approvers have been asked, or once it has ended (whichever comes first).

    Raises :class:`earlyexit.errors.WaitTimeout` if neither happens within ``timeout`` seconds.
    """
    def probe() -> Execution | None:
        execution = read_approval(sfn, execution_arn)
        asked = {r.approver for r in execution.requests}
        return execution if len(asked) >= count or execution.status != "RUNNING" else None

    return wait_until(probe, timeout=timeout, what=f"{count} approval requests of {execution_arn}")


def wait_for_outcome(sfn: Any, execution_arn: str, *, timeout: float = 30.0) -> Execution:
    """The execution once it has ended; raises :class:`earlyexit.errors.WaitTimeout` after ``timeout`` seconds."""
    wait_until(lambda: sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING",
               timeout=timeout, what=f"the outcome of {execution_arn}")
    return read_approval(sfn, execution_arn)


def _live_request(sfn: Any, execution: Execution, approver: str) -> ApprovalRequest:
    """``approver``'s unanswered request, waiting (10 s at most) for it to be sent."""
    def probe() -> Execution | None:
        current = read_approval(sfn, execution.arn)
        return current if current.request_for(approver) or current.status != "RUNNING" else None

    if execution.status == "RUNNING" and execution.request_for(approver) is None:
        execution = wait_until(probe, timeout=10.0, what=f"the request to {approver}")
    request = execution.request_for(approver)
    if execution.status != "RUNNING" or request is None:
        raise ApprovalError(ended(execution))
    if approver in {d.approver for d in execution.decisions}:
        raise ApprovalError(f"{approver} has already answered this execution")
    return request


def decide(sfn: Any, execution_arn: str, approver: str, decision: str, *, comment: str | None = None) -> None:
    """Send ``approver``'s decision ("approve" or "reject") on ``execution_arn`` with their live task token.

    Raises :class:`ApprovalError` when it cannot be sent, with a message that says why.
    """
    if decision not in ("approve", "reject"):
        raise ApprovalError(f"decision must be 'approve' or 'reject', not {decision!r}")
    execution = read_approval(sfn, execution_arn)
    if approver not in execution.approvers:
        raise ApprovalError(f"{approver!r} is not an approver of this execution "
                            f"(approvers: {', '.join(execution.approvers) or 'none'})")
    request = _live_request(sfn, execution, approver)
    output = {"decision": decision, **({"comment": comment} if comment else {})}
    try:
        sfn.send_task_success(taskToken=request.task_token, output=json.dumps(output))
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in _REFUSED:
            raise
        now = read_approval(sfn, execution_arn)
        raise ApprovalError(ended(now) if now.status != "RUNNING"
                            else f"Step Functions refused the decision ({code})") from None


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
