"""Read an approval execution from its Step Functions history: requests, decisions, outcome.

Works against any Step Functions API (the embedded engine, an endpoint, AWS): it reads
only ``DescribeExecution`` and ``GetExecutionHistory``. Approvers are recognised by the
tasks that ask them (``putEvents.waitForTaskToken``), not by state names, so the same code
reads either-or's branches and quorum's Map iterations, whatever the number of approvers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from earlyexit import states
from earlyexit.wording import outcome_text, started_text

__all__ = ["ApprovalRequest", "Decision", "Exit", "Execution", "TimelineEntry", "history_events", "read_execution",
           "requests_sent", "state_transitions"]

# Fail states that end the execution without an outcome (no flow "decided" anything).
_NOT_DECIDING = {states.REJECT_INVALID_INPUT, states.APPROVAL_REQUEST_NOT_DELIVERED, states.QUORUM.NOT_DELIVERED,
                 *map(states.EITHER_OR.not_delivered, range(1, states.EITHER_OR.FLOWS + 1))}
_SAID = {"approve": "approved", "reject": "rejected", "failure": "failed the task (counted as a rejection)",
         "malformed": "answered without a valid decision (counted as a rejection)"}


@dataclass(frozen=True)
class ApprovalRequest:
    """One ApprovalRequested event sent (a Retry that re-asks sends another, with a new token)."""

    approver: str
    task_token: str
    state: str
    sent_at: datetime


@dataclass(frozen=True)
class Decision:
    """An approver's answer as the workflow counts it."""

    approver: str
    decision: str  # "approve", "reject", "failure" (SendTaskFailure) or "malformed" (neither approve nor reject)
    comment: str | None
    at: datetime

    @property
    def approves(self) -> bool:
        return self.decision == "approve"


@dataclass(frozen=True)
class Exit:
    """The Fail state that ended the Parallel early, and whose flow entered it (None: the deadline flow)."""

    state: str
    approver: str | None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # started, request, reminder, decision, exit, outcome
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
    exited_by: Exit | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def approvers(self) -> list[str]:
        """The approvers named in the input (empty if the input names none)."""
        approvers = self.input.get("approvers")
        return [a for a in approvers if isinstance(a, str)] if isinstance(approvers, list) else []

    def request_for(self, approver: str) -> ApprovalRequest | None:
        """The latest request sent to ``approver``: the one whose token is live."""
        return next((r for r in reversed(self.requests) if r.approver == approver), None)

    @property
    def pending(self) -> list[ApprovalRequest]:
        """The live request of each approver who has not answered (none once the execution has ended)."""
        if self.status != "RUNNING":
            return []
        answered = {d.approver for d in self.decisions}
        latest = {r.approver: r for r in self.requests}
        return [latest[a] for a in self.approvers if a in latest and a not in answered]


def history_events(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of the execution's history, oldest first (all pages)."""
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


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _asked(event: dict[str, Any]) -> tuple[str, str] | None:
    """(approver, task token) if ``event`` schedules an approval request."""
    details = event.get("taskScheduledEventDetails") or {}
    if not str(details.get("resource", "")).startswith(states.ASK_RESOURCE):
        return None
    parameters = _json(details.get("parameters")) or {}
    entries = parameters.get("Entries") or [{}]
    detail = entries[0].get("Detail")
    detail = _json(detail) if isinstance(detail, str) else detail
    if not isinstance(detail, dict) or not {"approver", "taskToken"} <= set(detail):
        return None
    return str(detail["approver"]), str(detail["taskToken"])


def _reminded(event: dict[str, Any]) -> tuple[int, list[str]] | None:
    """(round, approvers) if ``event`` schedules a round of reminders."""
    details = event.get("taskScheduledEventDetails") or {}
    if details.get("resource") != states.REMIND_RESOURCE:
        return None
    entries = (_json(details.get("parameters")) or {}).get("Entries") or []
    details_of = [_json(e.get("Detail")) if isinstance(e.get("Detail"), str) else e.get("Detail") for e in entries
                  if e.get("DetailType") == "ApprovalReminder"]
    reminded = [d for d in details_of if isinstance(d, dict) and isinstance(d.get("approver"), str)]
    if not reminded:
        return None
    return int(reminded[0].get("reminder") or 0), [str(d["approver"]) for d in reminded]


def _decision_of(event: dict[str, Any]) -> tuple[str, str | None]:
    if event["type"] == "TaskFailed":
        return "failure", _detail(event).get("cause") or _detail(event).get("error") or None
    answer = _json(event["taskSucceededEventDetails"].get("output"))
    if isinstance(answer, dict) and answer.get("decision") in ("approve", "reject"):
        comment = answer.get("comment")
        return answer["decision"], comment if isinstance(comment, str) else None
    return "malformed", None


class _Reader:
    """One pass over the events, following each task event back to the request it answers."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.by_id = {e["id"]: e for e in events}
        self.requests: list[ApprovalRequest] = []
        self.decisions: list[Decision] = []
        self.timeline: list[TimelineEntry] = []
        self.fails: list[tuple[dict[str, Any], str, str | None]] = []  # (event, state, approver)
        self._scheduled: dict[int, ApprovalRequest] = {}
        self._reminders: set[tuple[int, tuple[str, ...]]] = set()

    def _chain(self, event: dict[str, Any]) -> tuple[ApprovalRequest | None, bool]:
        """The request an ask task's event belongs to, and whether the request was submitted
        (a TaskSubmitted on the way back: PutEvents succeeded, so a failure is the approver's answer)."""
        submitted = False
        current: dict[str, Any] | None = self.by_id.get(event.get("previousEventId", 0))
        while current is not None:
            if current["id"] in self._scheduled:
                return self._scheduled[current["id"]], submitted
            if current["type"] == "TaskSubmitted":
                submitted = True
            if current["type"].endswith("StateEntered"):
                return None, submitted
            current = self.by_id.get(current.get("previousEventId", 0))
        return None, submitted

    def read(self) -> None:
        for event in self.events:
            kind, at = event["type"], event["timestamp"]
            if kind == "TaskScheduled" and (asked := _asked(event)) is not None:
                approver, token = asked
                entered = self.by_id.get(event.get("previousEventId", 0)) or {}
                state = (entered.get("stateEnteredEventDetails") or {}).get("name", "")
                again = any(r.approver == approver for r in self.requests)
                request = ApprovalRequest(approver, token, state, at)
                self._scheduled[event["id"]] = request
                self.requests.append(request)
                self.timeline.append(TimelineEntry(at, "request", f"request {'sent again' if again else 'sent'} "
                                                                  f"to {approver}"))
            elif kind == "TaskScheduled" and (reminded := _reminded(event)) is not None:
                number, approvers = reminded
                if (number, tuple(approvers)) not in self._reminders:  # a retried call is the same reminder
                    self._reminders.add((number, tuple(approvers)))
                    self.timeline.append(TimelineEntry(at, "reminder",
                                                       f"reminder {number} sent to {', '.join(approvers)}"))
            elif kind in ("TaskSucceeded", "TaskFailed"):
                request, submitted = self._chain(event)
                if request is None:
                    continue
                if kind == "TaskFailed" and not submitted:  # PutEvents itself failed: no answer
                    self.timeline.append(TimelineEntry(at, "request", f"request to {request.approver} not delivered "
                                                                      f"({_detail(event).get('error')})"))
                    continue
                decision, comment = _decision_of(event)
                self.decisions.append(Decision(request.approver, decision, comment, at))
                self.timeline.append(TimelineEntry(at, "decision", f"{request.approver} {_SAID[decision]}"
                                                   + (f": {comment}" if comment and decision != "failure" else "")))
            elif kind == "FailStateEntered":
                name = event["stateEnteredEventDetails"]["name"]
                if name not in _NOT_DECIDING:
                    flow_input = _json(event["stateEnteredEventDetails"].get("input")) or {}
                    approver = flow_input.get("approver") if isinstance(flow_input, dict) else None
                    self.fails.append((event, name, approver if isinstance(approver, str) else None))


def _exit(fails: list[tuple[dict[str, Any], str, str | None]], output: dict[str, Any] | None) -> Exit | None:
    """The flow that ended the Parallel: the output names it (decidedBy); else the first to fail."""
    if not fails:
        return None
    if output is not None:
        decided_by = output.get("decidedBy")
        for _, state, approver in fails:
            if approver == decided_by and (decided_by is not None or state == states.DEADLINE_PASSED):
                return Exit(state, approver)
    _, state, approver = fails[0]
    return Exit(state, approver)


def _exit_text(exit_: Exit, output: dict[str, Any] | None, decisions: list[Decision]) -> str:
    outcome = (output or {}).get("outcome")
    approvals, rejections = len((output or {}).get("approvals") or []), len((output or {}).get("rejections") or [])
    quorum = (output or {}).get("quorum")
    counts = f" ({approvals} approved, {rejections} rejected" + (f", quorum {quorum})" if quorum else ")")
    if exit_.approver is None:
        if outcome == "TIMED_OUT" or outcome is None:
            return "the deadline passed before the outcome was settled" + (counts if output else "")
        settled = "met" if outcome == "APPROVED" else "unreachable"
        return f"at the deadline the tally already showed the quorum {settled}" + counts
    own = next((d for d in decisions if d.approver == exit_.approver), None)
    whose = f"{exit_.approver}'s {'approval' if own and own.approves else 'rejection'}"
    if quorum is None:
        return f"{whose} decided the request"
    met = outcome == "APPROVED"
    if own is not None and own.approves == met:
        return f"{whose} {'met the quorum' if met else 'made the quorum unreachable'}{counts}"
    return f"{exit_.approver}'s flow found the quorum {'met' if met else 'unreachable'}{counts}"


def requests_sent(events: list[dict[str, Any]]) -> list[ApprovalRequest]:
    """The approval requests these events schedule, oldest first (cheaper than :func:`read_execution`)."""
    reader = _Reader(events)
    reader.read()
    return reader.requests


def read_execution(sfn: Any, execution_arn: str) -> Execution:
    """Describe ``execution_arn`` and read its approval requests, decisions and outcome."""
    described = sfn.describe_execution(executionArn=execution_arn)
    events = history_events(sfn, execution_arn)
    parsed_input = _json(described.get("input"))
    execution_input = parsed_input if isinstance(parsed_input, dict) else {}
    reader = _Reader(events)
    reader.read()
    output = _json(described.get("output"))
    output = output if isinstance(output, dict) else None
    transitions = state_transitions(events)
    timeline = list(reader.timeline)
    exit_ = _exit(reader.fails, output)
    if exit_ is not None:
        at = next(e["timestamp"] for e, state, approver in reader.fails if (state, approver) == (exit_.state,
                                                                                                   exit_.approver))
        timeline.append(TimelineEntry(at, "exit", _exit_text(exit_, output, reader.decisions)))
    stopped_at = described.get("stopDate")
    status = described["status"]
    execution = Execution(
        arn=execution_arn, status=status, input=execution_input, output=output, error=described.get("error"),
        cause=described.get("cause"), started_at=described["startDate"], stopped_at=stopped_at,
        transitions=transitions, requests=reader.requests, decisions=reader.decisions, exited_by=exit_)
    timeline.append(TimelineEntry(described["startDate"], "started", started_text(execution)))
    if status != "RUNNING":
        at = stopped_at or (events[-1]["timestamp"] if events else described["startDate"])
        timeline.append(TimelineEntry(at, "outcome", outcome_text(execution)))
    return replace(execution, timeline=sorted(timeline, key=lambda entry: entry.at))
