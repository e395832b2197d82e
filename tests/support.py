"""Helpers the scenario suites share: play an approval, read what happened, and the rule that predicts it."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from earlyexit import engine, history, states
from earlyexit.approvals import send_at_once, start_approval
from earlyexit.history import Execution, history_events, read_execution
from earlyexit.polling import wait_until

T = TypeVar("T")
Answer = tuple[str, str]  # (approver, kind): kind is one of ANSWER_KINDS
ANSWER_KINDS = ("approve", "reject", "malformed", "failure")
# What the decision record keeps of each kind of answer (send_answer's): (decision, comment).
RECORDED = {"approve": ("approve", None), "reject": ("reject", "not now"), "malformed": ("reject", None),
            "failure": ("reject", None)}
ISO_MILLISECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

_ENDED = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}  # an execution's last event
# The states a flow ends in once its decision is counted (their input names the approver).
_FLOW_DONE = {states.QUORUM.COUNTED, states.QUORUM.MET, states.QUORUM.UNREACHABLE,
              *map(states.EITHER_OR.decided, range(1, states.EITHER_OR.FLOWS + 1))}


def send_answer(sfn: Any, task_token: str, kind: str) -> None:
    """Answer a request as an approver would: a decision, a malformed answer, or SendTaskFailure."""
    if kind == "failure":
        sfn.send_task_failure(taskToken=task_token, error="Declined", cause="sent with SendTaskFailure")
    else:
        answer = {"approve": {"decision": "approve"}, "reject": {"decision": "reject", "comment": "not now"},
                  "malformed": {"decision": "yes please"}}[kind]
        sfn.send_task_success(taskToken=task_token, output=json.dumps(answer))


def tokens_out(sfn: Any, execution_arn: str, count: int, timeout: float = 20) -> dict[str, str]:
    """The one wait for approval requests: each approver's live task token once ``count`` requests (re-sent ones
    included) are out, or once the execution has ended (WaitTimeout otherwise). Reads only the history."""
    def probe() -> tuple[dict[str, str]] | None:
        events = history_events(sfn, execution_arn)
        sent = history.requests_sent(events)
        if len(sent) >= count or any(e["type"] in _ENDED for e in events):
            return ({r.approver: r.task_token for r in sent},)
        return None

    time.sleep(0.05)  # the requests are several state transitions after the start: a look at once finds nothing
    return wait_until(probe, timeout=timeout, what=f"{count} approval requests of {execution_arn}",
                      first_pause=0.05)[0]


def requests_out(sfn: Any, execution_arn: str, count: int, timeout: float = 20) -> Execution:
    """The execution, read once ``count`` requests are out or it has ended (:func:`tokens_out`)."""
    tokens_out(sfn, execution_arn, count, timeout=timeout)
    return read_execution(sfn, execution_arn)


def described_end(sfn: Any, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    """The one wait for the end: DescribeExecution once the execution is no longer RUNNING (WaitTimeout
    otherwise)."""
    def probe() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=execution_arn)
        return described if described["status"] != "RUNNING" else None

    return wait_until(probe, timeout=timeout, what=f"the end of {execution_arn}", first_pause=0.05)


def ended(sfn: Any, execution_arn: str, timeout: float = 60) -> Execution:
    """The execution, read as an approval, once it has ended (:func:`described_end`)."""
    described_end(sfn, execution_arn, timeout=timeout)
    return read_execution(sfn, execution_arn)


def flow_done(sfn: Any, execution_arn: str, approver: str) -> bool:
    """Whether ``approver``'s flow has counted its decision (or the execution has ended)."""
    if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
        return True
    for event in history_events(sfn, execution_arn):
        details = event.get("stateEnteredEventDetails") or {}
        if details.get("name") in _FLOW_DONE and json.loads(details.get("input") or "{}").get("approver") == approver:
            return True
    return False


def wait_until_counted(sfn: Any, execution_arn: str, approver: str, timeout: float = 20) -> None:
    """Wait until ``approver``'s decision is counted, as people answer one after the other."""
    time.sleep(0.02)  # an answer is a few state transitions from being counted: a look at once finds nothing
    wait_until(lambda: flow_done(sfn, execution_arn, approver), timeout=timeout,
               what=f"{approver}'s decision to be counted in {execution_arn}", first_pause=0.03)


@dataclass(frozen=True)
class Tally:
    """A quorum execution's tally item, read consistently."""

    approvals: set[str]
    rejections: set[str]
    expires_at: int | None
    records: dict[str, dict[str, Any]]  # approver -> their decision record, as the item holds it (attribute map)

    @property
    def recorded(self) -> set[str]:
        """The approvers whose decision the tally holds (approvals and rejections)."""
        return self.approvals | self.rejections


def tally(ddb: Any, table: str, execution_arn: str) -> Tally | None:
    """The one tally reader: the tally item of ``execution_arn`` (None when there is none)."""
    item = ddb.get_item(TableName=table, Key={"executionArn": {"S": execution_arn}}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    return Tally(approvals=set(item.get("approvals", {}).get("SS", [])),
                 rejections=set(item.get("rejections", {}).get("SS", [])),
                 expires_at=int(item["expiresAt"]["N"]) if "expiresAt" in item else None,
                 records={key.removeprefix("decision:"): value["M"] for key, value in item.items()
                          if key.startswith("decision:")})


def wait_until_recorded(ddb: Any, table: str, execution_arn: str, approver: str, timeout: float = 20) -> None:
    """Wait until ``approver``'s decision is in the quorum tally: the flows that write after it read it."""
    def probe() -> bool:
        found = tally(ddb, table, execution_arn)
        return found is not None and approver in found.recorded

    time.sleep(0.02)  # an answer is a few state transitions from the tally: a look at once finds nothing
    wait_until(probe, timeout=timeout, what=f"{approver}'s decision in the tally of {execution_arn}", first_pause=0.03)


def last_events(sfn: Any, execution_arn: str, count: int = 12) -> str:
    """The status and the last ``count`` history events of an execution, one line: for a failure message."""
    events = history_events(sfn, execution_arn)[-count:]
    status = sfn.describe_execution(executionArn=execution_arn)["status"]
    return f"{status}; " + ", ".join(
        f"{e['id']} {e['type']} {(e.get('stateEnteredEventDetails') or {}).get('name', '')}".strip() for e in events)


def play(sfn: Any, state_machine_arn: str, approvers: Sequence[str], answers: Sequence[Answer] = (),
         timeout_seconds: int = 60, simultaneous: bool = False, **execution_input: Any) -> Execution:
    """Start an approval, send ``answers`` (in order, each once the previous one is counted, or all at the
    same instant), and return the ended execution."""
    arn = start_approval(sfn, state_machine_arn, list(approvers), request=execution_input.pop("request", None),
                         quorum=execution_input.pop("quorum", None), timeout_seconds=timeout_seconds)
    tokens = tokens_out(sfn, arn, len(approvers), timeout=60)
    if simultaneous:
        send_at_once(sfn, [(tokens[approver], decision) for approver, decision in answers])
    else:
        for approver, kind in answers:
            send_answer(sfn, tokens[approver], kind)
            wait_until_counted(sfn, arn, approver)
    return ended(sfn, arn, timeout=timeout_seconds + 60)


def answer_at_once(sfn: Any, execution_arn: str, answers: Sequence[Answer]) -> list[str | None]:
    """Every approver in ``answers`` answers at the same instant; returns each call's error code or None."""
    tokens = tokens_out(sfn, execution_arn, len(answers))
    return send_at_once(sfn, [(tokens[approver], decision) for approver, decision in answers])


class Overtaken(Exception):
    """The deadline passed before every answer was counted (a loaded machine): the run proves nothing."""


def deadline_passed_before(sfn: Any, execution_arn: str, moment: datetime) -> bool:
    """Whether the deadline flow's Wait ended before ``moment`` (the engine's clock is this process's)."""
    return any(e["type"] == "WaitStateExited" and e["stateExitedEventDetails"]["name"] == states.WAIT_FOR_THE_DEADLINE
               and e["timestamp"] < moment for e in history_events(sfn, execution_arn))


def play_to_the_deadline(sfn: Any, state_machine_arn: str, approvers: Sequence[str], answers: Sequence[Answer] = (),
                         deadlines: Sequence[int] = (1, 5, 20), end_within: float = 80,
                         **execution_input: Any) -> Execution:
    """Start an approval, send ``answers`` that settle nothing (each once the previous one is counted) and return
    it ended by its deadline: the first of ``deadlines`` (timeoutSeconds) that every request and answer beat. A run
    the deadline overtook (a loaded machine) proves nothing and is played again with the next, longer deadline.
    Each run must end within ``end_within`` seconds of its answers (WaitTimeout otherwise)."""
    return beating_the_deadline(lambda deadline: _answered_before(
        sfn, state_machine_arn, approvers, answers, deadline, end_within, dict(execution_input)), deadlines)


def beating_the_deadline(play: Callable[[int], T], deadlines: Sequence[int]) -> T:
    """``play(deadline)`` with the first of ``deadlines`` whose run the deadline did not overtake: a run that raises
    :class:`Overtaken` proves nothing and is played again with the next, longer deadline."""
    for deadline in deadlines:
        try:
            return play(deadline)
        except Overtaken:
            continue
    raise Overtaken(f"the deadline passed before the answers were counted, even at {deadlines[-1]} s")


def _answered_before(sfn: Any, state_machine_arn: str, approvers: Sequence[str], answers: Sequence[Answer],
                     deadline: int, end_within: float, execution_input: dict[str, Any]) -> Execution:
    """One run of :func:`play_to_the_deadline`; :class:`Overtaken` when the deadline came first."""
    arn = start_approval(sfn, state_machine_arn, list(approvers), request=execution_input.pop("request", None),
                         quorum=execution_input.pop("quorum", None), timeout_seconds=deadline)
    tokens = tokens_out(sfn, arn, len(approvers), timeout=60)
    if len(tokens) < len(approvers):
        raise Overtaken(arn)
    for approver, kind in answers:
        if refusal(lambda: send_answer(sfn, tokens[approver], kind)) == "TaskTimedOut":  # noqa: B023 - called at once
            raise Overtaken(arn)
        wait_until_counted(sfn, arn, approver)
    counted = datetime.now(UTC)
    execution = ended(sfn, arn, timeout=end_within)
    if deadline_passed_before(sfn, arn, counted):
        raise Overtaken(arn)
    return execution


@contextmanager
def waits_at(scale: float) -> Iterator[None]:
    """Wait states and Retry intervals at ``scale`` times their length while the block runs (embedded engine)."""
    previous = engine.wait_time_scale()
    engine.set_wait_time_scale(scale)
    try:
        yield
    finally:
        engine.set_wait_time_scale(previous)


def unique(name: str) -> str:
    """``name`` with a random suffix: a stack that deploys beside earlier runs on the same endpoint."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def error_code(error: BaseException | None) -> str | None:
    response = getattr(error, "response", None)
    return response["Error"]["Code"] if response else None


def problems_of(play: Callable[[T], list[str]], cases: Sequence[T], *, workers: int) -> list[str]:
    """Play every case, ``workers`` at a time; every problem they report, in the order of the cases."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [problem for found in pool.map(play, cases) for problem in found]


def refusal(call: Any) -> str | None:
    """Run ``call``; the error code Step Functions refused it with, or None if it was accepted."""
    try:
        call()
    except ClientError as error:
        return error_code(error)
    return None


# -- the rule (the contract's decision table), to predict what an execution must end with ------------


@dataclass(frozen=True)
class Expected:
    """What the contract says an execution answered in this order ends with."""

    outcome: str
    decided_by: str | None
    approvals: list[str]
    rejections: list[str]
    settled_after: int | None  # how many answers settled it (None: the deadline)
    late: list[Answer] = field(default_factory=list)  # answers sent after the outcome: refused
    decisions: list[dict[str, Any]] = field(default_factory=list)  # the record, oldest first, without times

    def output(self, pattern: str, request: dict[str, Any], quorum: int | None) -> dict[str, Any]:
        """The output the rule predicts, its decisions without their times (compare with :func:`timeless`)."""
        output = {"outcome": self.outcome, "pattern": pattern, "request": request, "approvals": self.approvals,
                  "rejections": self.rejections, "decisions": self.decisions, "decidedBy": self.decided_by}
        return output if quorum is None else {**output, "quorum": quorum}


def record(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """The decision record of ``answers`` (in the order they were received), without the times."""
    return [{"approver": approver, "decision": RECORDED[kind][0], "comment": RECORDED[kind][1]}
            for approver, kind in answers]


def record_at_once(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """The decision record of ``answers`` sent at the same instant (:func:`answer_at_once`, ``play(simultaneous=True)``:
    send_at_once sends only the decision, so no comment), in the order given, without the times."""
    return [{"approver": approver, "decision": "approve" if kind == "approve" else "reject", "comment": None}
            for approver, kind in answers]


def timeless(output: dict[str, Any] | None) -> dict[str, Any] | None:
    """``output`` with the times taken out of its decisions, once they are checked: each an ISO-8601 UTC time with
    milliseconds, oldest first (an AssertionError names a wrong one)."""
    if output is None or "decisions" not in output:
        return output
    times = [d.get("at") for d in output["decisions"]]
    assert all(isinstance(t, str) and ISO_MILLISECONDS.fullmatch(t) for t in times), f"decision times {times}"
    assert times == sorted(times), f"decisions not oldest first: {times}"
    return {**output, "decisions": [{k: v for k, v in d.items() if k != "at"} for d in output["decisions"]]}


def in_order(approvers: Sequence[str], names: set[str]) -> list[str]:
    """``names`` in the order of ``approvers`` (as the output lists them)."""
    return [a for a in approvers if a in names]


def tallies(answers: Sequence[Answer]) -> list[tuple[set[str], set[str]]]:
    """(approvals, rejections) in the tally after each answer; anything but an approval is a rejection."""
    approvals: set[str] = set()
    rejections: set[str] = set()
    after = []
    for approver, kind in answers:
        (approvals if kind == "approve" else rejections).add(approver)
        after.append((set(approvals), set(rejections)))
    return after


def settle(approvers: Sequence[str], quorum: int, reads: Sequence[tuple[str, set[str], set[str]]]
           ) -> tuple[str, str | None, int | None]:
    """(outcome, decidedBy, index of the settling read) for quorum flows that read these tallies in this order,
    each read being (reader, approvals, rejections): APPROVED once approvals >= quorum, REJECTED once
    rejections > N - quorum. decidedBy is the reader when their own decision is on the winning side, else None
    (a retried write that found the outcome settled the other way). None settles: TIMED_OUT at the deadline."""
    for index, (reader, approvals, rejections) in enumerate(reads):
        if len(approvals) >= quorum:
            return "APPROVED", reader if reader in approvals else None, index
        if len(rejections) > len(approvers) - quorum:
            return "REJECTED", reader if reader in rejections else None, index
    return "TIMED_OUT", None, None


def expected(approvers: Sequence[str], answers: Sequence[Answer], quorum: int | None = None) -> Expected:
    """The outcome of ``answers`` sent one after the other, each counted before the next.

    either-or (``quorum`` None): the first answer decides, APPROVED only for a valid approval.
    quorum: each flow reads the tally its own write returns (:func:`settle`); nothing settled before the
    answers run out: TIMED_OUT at the deadline with every answer listed.
    """
    after = tallies(answers)
    if quorum is None:
        outcome, decided_by, index = ("TIMED_OUT", None, None) if not answers else (
            "APPROVED" if answers[0][1] == "approve" else "REJECTED", answers[0][0], 0)
    else:
        reads = [(approver, *tally) for (approver, _), tally in zip(answers, after, strict=True)]
        outcome, decided_by, index = settle(approvers, quorum, reads)
    if index is None:
        approvals, rejections = after[-1] if after else (set(), set())
        counted = [] if quorum is None else list(answers)  # either-or records only the deciding decision
        return Expected(outcome, None, in_order(approvers, approvals), in_order(approvers, rejections), None,
                        decisions=record(counted))
    approvals, rejections = after[index]
    counted = list(answers[:1]) if quorum is None else list(answers[:index + 1])
    return Expected(outcome, decided_by, in_order(approvers, approvals), in_order(approvers, rejections), index + 1,
                    list(answers[index + 1:]), record(counted))
