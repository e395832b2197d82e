"""Read an approval execution from its Step Functions history: requests, decisions, outcome.

Works against any Step Functions API (the embedded engine, an endpoint, AWS): it reads
only ``DescribeExecution`` and ``GetExecutionHistory``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ApprovalRequest", "Decision", "Execution", "TimelineEntry", "read_execution", "state_transitions"]

_ASK_STATE = re.compile(r"^Ask approver (\d+)$")


@dataclass(frozen=True)
class ApprovalRequest:
    approver: str
    task_token: str
    state: str
    sent_at: datetime


@dataclass(frozen=True)
class Decision:
    approver: str
    decision: str  # "approve", "reject" or "failure" (SendTaskFailure)
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # started, request, decision, exit, outcome
    text: str


@dataclass(frozen=True)
class Execution:
    """What an approval execution did, read from its history."""

    arn: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    started_at: datetime
    stopped_at: datetime | None
    transitions: int
    requests: list[ApprovalRequest] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    exited_by: str | None = None  # the flow state whose Fail ended the Parallel
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def pending(self) -> list[ApprovalRequest]:
        """Requests still waiting for an answer (none once the execution has ended)."""
        if self.status != "RUNNING":
            return []
        answered = {d.approver for d in self.decisions}
        return [r for r in self.requests if r.approver not in answered]


def history_events(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def state_transitions(events: list[dict[str, Any]]) -> int:
    """State transitions billed for these events: one per state entered."""
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails"):
            return value
    return {}


def _ask_state_of(event: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> str | None:
    """The 'Ask approver N' state an event belongs to (its chain back to the state entered)."""
    current: dict[str, Any] | None = event
    while current is not None:
        if current["type"] == "TaskStateEntered":
            name = current["stateEnteredEventDetails"]["name"]
            return name if _ASK_STATE.match(name) else None
        current = by_id.get(current.get("previousEventId", 0))
    return None


def _decision_of(event: dict[str, Any]) -> tuple[str, str | None]:
    if event["type"] != "TaskSucceeded":
        return "failure", _detail(event).get("cause")
    try:
        answer = json.loads(event["taskSucceededEventDetails"].get("output") or "null")
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("decision") in ("approve", "reject"):
        comment = answer.get("comment")
        return answer["decision"], comment if isinstance(comment, str) else None
    return "reject", "malformed decision counted as a rejection"


def read_execution(sfn: Any, execution_arn: str) -> Execution:
    """Describe ``execution_arn`` and read its approval requests, decisions and outcome."""
    described = sfn.describe_execution(executionArn=execution_arn)
    events = history_events(sfn, execution_arn)
    by_id = {e["id"]: e for e in events}
    execution_input = json.loads(described.get("input") or "{}")
    approvers = execution_input.get("approvers") if isinstance(execution_input, dict) else None
    approvers = approvers if isinstance(approvers, list) else []

    requests: list[ApprovalRequest] = []
    decisions: list[Decision] = []
    timeline = [TimelineEntry(described["startDate"], "started", f"started for {', '.join(map(str, approvers))}")]
    exited_by: str | None = None
    for event in events:
        kind, at = event["type"], event["timestamp"]
        if kind == "TaskScheduled":
            state = _ask_state_of(event, by_id)
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            if state is None or "Entries" not in parameters:
                continue
            detail = parameters["Entries"][0]["Detail"]
            detail = json.loads(detail) if isinstance(detail, str) else detail
            requests.append(ApprovalRequest(detail["approver"], detail["taskToken"], state, at))
            timeline.append(TimelineEntry(at, "request", f"approval request sent to {detail['approver']}"))
        elif kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
            state = _ask_state_of(event, by_id)
            if state is None:
                continue
            approver = next((r.approver for r in reversed(requests) if r.state == state), state)
            if kind == "TaskFailed" and _detail(event).get("error", "").split(".")[0] in ("EventBridge", "States"):
                timeline.append(TimelineEntry(at, "decision", f"request to {approver} not delivered: "
                                                              f"{_detail(event).get('error')}"))
                continue
            decision, comment = _decision_of(event)
            decisions.append(Decision(approver, decision, comment, at))
            said = {"approve": "approved", "reject": "rejected", "failure": "failed the task (a rejection)"}[decision]
            timeline.append(TimelineEntry(at, "decision", f"{approver} {said}" + (f" ({comment})" if comment else "")))
        elif kind == "FailStateEntered" and exited_by is None:
            name = event["stateEnteredEventDetails"]["name"]
            if name not in ("Reject invalid input", "Approval request not delivered"):
                exited_by = name
                timeline.append(TimelineEntry(at, "exit", f"'{name}' ended the Parallel early"))

    output = json.loads(described["output"]) if described.get("output") else None
    status = described["status"]
    stopped_at = described.get("stopDate")
    if stopped_at is not None:
        if output is not None:
            text = f"{status}: {output.get('outcome')}" + (f" by {output['decidedBy']}" if output.get("decidedBy") else "")
        else:
            text = f"{status}: {described.get('error') or ''} {described.get('cause') or ''}".rstrip()
        timeline.append(TimelineEntry(stopped_at, "outcome", f"{text} ({state_transitions(events)} state transitions)"))
    return Execution(
        arn=execution_arn, status=status, input=execution_input if isinstance(execution_input, dict) else {},
        output=output, error=described.get("error"), cause=described.get("cause"),
        started_at=described["startDate"], stopped_at=stopped_at, transitions=state_transitions(events),
        requests=requests, decisions=decisions, exited_by=exited_by,
        timeline=sorted(timeline, key=lambda entry: entry.at),
    )
