"""Helpers the scenario suites share: play an approval and read what happened."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from earlyexit.approvals import decide, send_at_once, start_approval, wait_for_outcome, wait_for_requests
from earlyexit.history import Execution

Answer = tuple[str, str]  # (approver, "approve" | "reject")


def play(sfn: Any, state_machine_arn: str, approvers: Sequence[str], answers: Sequence[Answer] = (),
         timeout_seconds: int = 60, simultaneous: bool = False, **execution_input: Any) -> Execution:
    """Start an approval, send ``answers`` (in order, or all at the same instant), return the outcome."""
    arn = start_approval(sfn, state_machine_arn, list(approvers), execution_input.pop("request", None),
                         execution_input.pop("quorum", None), timeout_seconds)
    wait_for_requests(sfn, arn, len(approvers))
    if simultaneous:
        answer_at_once(sfn, arn, answers)
    else:
        for approver, decision in answers:
            decide(sfn, arn, approver, decision)
            wait_until_counted(sfn, arn, list(approvers).index(approver) + 1)
    return wait_for_outcome(sfn, arn, timeout=timeout_seconds + 30)


def wait_until_counted(sfn: Any, execution_arn: str, flow: int, timeout: float = 10) -> None:
    """Wait until flow ``flow`` has finished with its decision (as people answer one after the other)."""
    done = {f"Approver {flow} decided", f"Decision {flow} counted", f"Quorum met {flow}",
            f"Quorum unreachable {flow}", f"Request {flow} not delivered"}
    deadline = time.monotonic() + timeout
    pause = 0.01
    while time.monotonic() < deadline:
        if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
            return
        history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") in done for e in history):
            return
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)
    raise TimeoutError(f"flow {flow} of {execution_arn} did not finish within {timeout} s")


def answer_at_once(sfn: Any, execution_arn: str, answers: Sequence[Answer]) -> list[str | None]:
    """Every approver in ``answers`` answers at the same instant; returns each call's error code or None."""
    tokens = {r.approver: r.task_token for r in wait_for_requests(sfn, execution_arn, len(answers)).requests}
    return send_at_once(sfn, [(tokens[approver], decision) for approver, decision in answers])


def unique(name: str) -> str:
    """``name`` with a random suffix: a stack that deploys beside earlier runs on the same endpoint."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def error_code(error: BaseException | None) -> str | None:
    response = getattr(error, "response", None)
    return response["Error"]["Code"] if response else None
