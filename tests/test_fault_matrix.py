"""The faults AWS really has, injected into the embedded engine: each outcome still follows the rule.

- A decision's tally write applies, then answers with an error (DynamoDB documents that a 500
  may have applied); Step Functions' Retry repeats it, and while the retry waits another
  approver's decision lands. Every flow settles on the tally its own write returns.
- A PutEvents call applies (the event went out), then answers with an error; the Retry asks
  again with a new task token, and the first token is refused. Another approver answers while
  the retry waits.
- A PutEvents or a tally write applied twice within one attempt (an SDK retry after a lost
  response): both ApprovalRequested copies carry the same token; the tally counts once.
- A write that lands before the deadline but answers after it: the deadline flow reads the
  tally and reports the outcome it already shows (decidedBy null).

In every case the output's decision record (``decisions``) is the one the rule predicts, oldest
first: each decision in the tally the settling flow read, once (a retried write included), and
decidedBy is the settling flow's approver only when their own decision is on the winning side.

Held calls make the interleavings deterministic: a fault can hold a call until the test
releases it. Each case runs in its own execution with rules scoped to it, many at once.
"""

from __future__ import annotations

import datetime
import itertools
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ApprovalInbox
from support import (
    Answer,
    Overtaken,
    beating_the_deadline,
    deadline_passed_before,
    ended,
    expected,
    in_order,
    problems_of,
    record,
    refusal,
    requests_out,
    send_answer,
    settle,
    tallies,
    timeless,
    wait_until_counted,
    wait_until_recorded,
)

from earlyexit.engine import Fault, FaultRule
from earlyexit.errors import WaitTimeout
from earlyexit.history import Execution
from earlyexit.local import Cloud, Stack
from earlyexit.patterns import PATTERNS
from earlyexit.polling import wait_until
from earlyexit.states import EITHER_OR, QUORUM

pytestmark = pytest.mark.engine

APPROVERS = ("alice", "bob", "carol")
SETTLES_BY_ANSWERS = 360_000  # timeoutSeconds (at the tests' 1/100 scale: one hour) when the answers settle it
# timeoutSeconds when only the deadline can end it (scaled: 10 s, then 30 s and 60 s if it overtook the answers)
SETTLES_AT_DEADLINE = (1_000, 3_000, 6_000)
LOST_WRITE = Fault.lost_response("InternalServerError", cause="We encountered an internal error. Please try again.")
LOST_EVENT = Fault.lost_response("InternalException", cause="The event was accepted, the response lost.")
HELD = Fault.hold(deadline=60)


@dataclass
class Case:
    """One execution of a stack with faults injected into its calls only."""

    cloud: Cloud
    stack: Stack
    approvers: Sequence[str]
    quorum: int | None
    timeout_seconds: int
    ends_at_deadline: bool = False  # only the deadline ends it: a run the deadline overtook raises Overtaken

    def __post_init__(self) -> None:
        self.sfn = self.cloud.client("stepfunctions")
        self.ddb = self.cloud.client("dynamodb")
        self.name = f"fault-{uuid.uuid4().hex[:12]}"
        state_machine = self.stack.outputs["StateMachineArn"]
        self.arn = f"{state_machine.replace(':stateMachine:', ':execution:')}:{self.name}"
        self.rules: list[FaultRule] = []
        self.tokens: dict[str, str] = {}

    def inject(self, state: str, fault: Fault, *, attempt: int | None = 0, approver: str | None = None) -> None:
        """``fault`` on ``state``'s call (of ``approver``'s Map iteration, for quorum) in this execution only."""
        iteration = None if approver is None or self.quorum is None else list(self.approvers).index(approver)
        rule = FaultRule(state_machine_arn=self.stack.outputs["StateMachineArn"], execution_arn=self.arn,
                         state=state, attempt=attempt, iteration=iteration, fault=fault)
        self.rules.append(self.cloud.faults.add(rule))

    def start(self) -> None:
        self.started = datetime.datetime.now(tz=datetime.timezone.utc)
        self.sfn.start_execution(
            stateMachineArn=self.stack.outputs["StateMachineArn"], name=self.name,
            input=json.dumps({"approvers": list(self.approvers), "timeoutSeconds": self.timeout_seconds,
                              **({} if self.quorum is None else {"quorum": self.quorum})}))

    def asked(self, count: int | None = None) -> Execution:
        """The execution once ``count`` requests (default: one per approver) are out; remembers the live tokens."""
        execution = requests_out(self.sfn, self.arn, count or len(self.approvers))
        self.tokens = {a: r.task_token for a in self.approvers if (r := execution.request_for(a)) is not None}
        return execution

    def answer(self, approver: str, kind: str, *, token: str | None = None) -> str | None:
        """Send an answer; the error code it was refused with, or None."""
        return refusal(lambda: send_answer(self.sfn, token or self.tokens[approver], kind))

    def recorded(self, approver: str) -> None:
        try:
            wait_until_recorded(self.ddb, self.stack.outputs["TableName"], self.arn, approver)
        except WaitTimeout:
            if self.ends_at_deadline and self.sfn.describe_execution(executionArn=self.arn)["status"] != "RUNNING":
                raise Overtaken(self.arn) from None
            raise

    def held(self, state: str, count: int) -> list[Any]:
        """The first ``count`` faults fired on ``state`` in this execution (WaitTimeout if they do not fire)."""
        return self.cloud.faults.wait_fired(state=state, execution_arn=self.arn, count=count, timeout=30)

    def outcome(self) -> Execution:
        return ended(self.sfn, self.arn, timeout=120)

    def check_not_overtaken(self) -> None:
        """Once every answer is counted (and again at the end): for a case only the deadline ends, raise
        :class:`Overtaken` if the deadline passed before its answers were all in."""
        if not self.ends_at_deadline:
            return
        if not hasattr(self, "counted"):
            self.counted = datetime.datetime.now(tz=datetime.timezone.utc)
            if self.sfn.describe_execution(executionArn=self.arn)["status"] != "RUNNING":
                raise Overtaken(self.arn)
        elif deadline_passed_before(self.sfn, self.arn, self.counted):
            raise Overtaken(self.arn)

    def close(self) -> None:
        for rule in self.rules:
            self.cloud.faults.remove(rule)
        for fired in self.cloud.faults.fired(execution_arn=self.arn):
            fired.release()


def run_all(cases: list[Any], play: Callable[[Any], list[str]]) -> None:
    assert problems_of(play, cases, workers=24) == []


def counted(answers: Sequence[Answer], approvals: set[str] | list[str], rejections: set[str] | list[str]
            ) -> list[dict[str, Any]]:
    """The decision record of a tally holding ``approvals`` and ``rejections``, for ``answers`` in the order they
    were received (each approver once)."""
    return record([(approver, kind) for approver, kind in answers if approver in {*approvals, *rejections}])


def mismatch(execution: Execution, wanted: dict[str, Any]) -> list[str]:
    """[] when ``execution`` SUCCEEDED with ``wanted`` in its output (its decisions without their times); else
    the problem."""
    try:
        output = timeless(execution.output) or {}
    except AssertionError as error:  # a decision time that is not ISO-8601 UTC with milliseconds, or out of order
        return [f"ended with {error}"]
    got = {key: output.get(key) for key in wanted}
    if execution.status != "SUCCEEDED" or got != wanted:
        return [(f"ended {execution.status} {got if execution.output else (execution.error, execution.cause)}, "
                 f"expected {wanted}")]
    return []


# -- a tally write applies, its response is lost; another decision lands while the retry waits -------------

LOST_WRITE_CASES = [
    (k, order, decisions, position)
    for k in (1, 2, 3)
    for order in (APPROVERS, APPROVERS[1:] + APPROVERS[:1], APPROVERS[2:] + APPROVERS[:2])
    for decisions in itertools.product(("approve", "reject"), repeat=3)
    for position in (0, 1)
    if position == 0 or expected(APPROVERS, [(order[0], decisions[0])], k).settled_after is None
]


def test_the_lost_write_matrix_covers_every_quorum_order_decision_and_position() -> None:
    assert {k for k, *_ in LOST_WRITE_CASES} == {1, 2, 3}
    # 3 quorums x 3 orders x 8 decisions x 2 positions, minus the 24 where the first answer settles (position 1)
    assert len(LOST_WRITE_CASES) == 120


def play_lost_write(cloud: Cloud, stack: Stack, k: int, order: tuple[str, ...], decisions: tuple[str, ...],
                    position: int) -> list[str]:
    """Answers in ``order``; the write of answer ``position`` (X) applies and errors, its retry is held while the
    next approver (Y) answers, then released; the rest answer one by one. A case only the deadline ends is played
    again with a longer deadline if the deadline overtook its answers."""
    return beating_the_deadline(lambda deadline: lost_write_case(cloud, stack, k, order, decisions, position,
                                                                 deadline), SETTLES_AT_DEADLINE)


def lost_write_case(cloud: Cloud, stack: Stack, k: int, order: tuple[str, ...], decisions: tuple[str, ...],
                    position: int, deadline: int) -> list[str]:
    """One run of :func:`play_lost_write`, with ``deadline`` if only the deadline ends it."""
    answers = list(zip(order, decisions, strict=True))
    prior, (x, x_kind), (y, y_kind), rest = answers[:position], answers[position], answers[position + 1], \
        answers[position + 2:]
    # The writes land in the order prior, X, Y, rest; each flow reads the tally its write returns, but X's
    # (retried) flow reads it only after Y's: both read prior + X + Y.
    after = tallies(prior + [(x, x_kind), (y, y_kind)] + rest)
    n = len(prior)
    reads = [(a, *after[i]) for i, (a, _) in enumerate(prior)] + [(y, *after[n + 1]), (x, *after[n + 1])]
    reads += [(a, *after[n + 2 + j]) for j, (a, _) in enumerate(rest)]
    outcome, decided_by, settled_at = settle(APPROVERS, k, reads)
    case = Case(cloud, stack, APPROVERS, k, deadline if outcome == "TIMED_OUT" else SETTLES_BY_ANSWERS,
                ends_at_deadline=outcome == "TIMED_OUT")
    case.inject(QUORUM.RECORD, LOST_WRITE, attempt=0, approver=x)
    case.inject(QUORUM.RECORD, HELD, attempt=1, approver=x)
    problems = []
    try:
        case.start()
        case.asked()
        for approver, kind in prior:
            case.answer(approver, kind)
            case.recorded(approver)
        case.answer(x, x_kind)
        lost, retry = case.held(QUORUM.RECORD, 2)
        case.answer(y, y_kind)
        case.recorded(y)
        if settled_at == len(prior):  # Y's flow settles: the retry is released into a stopped flow
            case.outcome()
        retry.release()
        wait_until_counted(case.sfn, case.arn, x)  # X's retry reads the tally before anyone else answers
        for index, (approver, kind) in enumerate(rest, start=n + 2):
            if settled_at is not None and index > settled_at:
                case.outcome()
                if (code := case.answer(approver, kind)) != "TaskTimedOut":
                    problems.append(f"{approver}'s late answer got {code}")
                continue
            case.answer(approver, kind)
            case.recorded(approver)
        case.check_not_overtaken()
        execution = case.outcome()
        case.check_not_overtaken()
        # The lists hold what was in the tally the settling flow read, or at the deadline every answer; the record
        # holds the same decisions in the order they were received (X's once, though its write was retried).
        _, approvals, rejections = reads[settled_at] if settled_at is not None else (None, *after[-1])
        wanted = {"outcome": outcome, "decidedBy": decided_by, "approvals": in_order(APPROVERS, approvals),
                  "rejections": in_order(APPROVERS, rejections), "decisions": counted(answers, approvals, rejections)}
        problems += mismatch(execution, wanted)
        attempts = [(f.attempt, f.fault.kind.value) for f in (lost, retry)]
        if attempts != [(0, "lost response"), (1, "hold")]:
            problems.append(f"faults fired on attempts {attempts}")
    finally:
        case.close()
    return [f"k={k} {answers} lost write #{position}: {p}" for p in problems]


@pytest.mark.usefixtures("scaled_waits")
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_lost_write_response_retried_while_another_decision_lands_ends_as_the_tally_says(
        cloud: Cloud, quorum: Stack, k: int) -> None:
    cases = [c for c in LOST_WRITE_CASES if c[0] == k]
    run_all(cases, lambda c: play_lost_write(cloud, quorum, *c))


def test_the_issues_case_two_of_three_with_a_lost_write_is_approved_by_the_interleaved_approval(
        cloud: Cloud, quorum: Stack, scaled_waits: None) -> None:
    # carol approves; alice's write applies but errors; bob approves while alice's retry waits.
    assert play_lost_write(cloud, quorum, 2, ("carol", "alice", "bob"), ("approve", "approve", "approve"), 1) == []


# -- a PutEvents call applies, its response is lost: the retry asks again with a new token ------------------


def play_lost_event(cloud: Cloud, stack: Stack, k: int | None, x: str, decisions: dict[str, str]) -> list[str]:
    """X's request goes out but its PutEvents answers with an error; X's retry is held while the next approver
    (Y) answers; released, X is asked again with a new token (the first one is refused) and answers once;
    then the others, one by one. A case only the deadline ends is played again with a longer deadline if the
    deadline overtook its answers."""
    return beating_the_deadline(lambda deadline: lost_event_case(cloud, stack, k, x, decisions, deadline),
                                SETTLES_AT_DEADLINE)


def lost_event_case(cloud: Cloud, stack: Stack, k: int | None, x: str, decisions: dict[str, str],
                    deadline: int) -> list[str]:
    """One run of :func:`play_lost_event`, with ``deadline`` if only the deadline ends it."""
    approvers = APPROVERS if k is not None else APPROVERS[:2]
    others = [a for a in approvers[approvers.index(x) + 1:] + approvers[:approvers.index(x)]]
    y, rest = others[0], others[1:]
    order = [(y, decisions[y]), (x, decisions[x]), *((a, decisions[a]) for a in rest)]
    rule = expected(approvers, order, k)  # X's decision counts after Y's: the order the answers land in
    settled_at = None if rule.settled_after is None else rule.settled_after - 1
    case = Case(cloud, stack, approvers, k, deadline if settled_at is None else SETTLES_BY_ANSWERS,
                ends_at_deadline=settled_at is None)
    ask = QUORUM.ASK if k is not None else EITHER_OR.ask(approvers.index(x) + 1)
    case.inject(ask, LOST_EVENT, attempt=0, approver=x)
    case.inject(ask, HELD, attempt=1, approver=x)
    problems = []
    try:
        case.start()
        _, retry = case.held(ask, 2)
        # Both attempts are scheduled, each with its own token; the first went out before the error.
        first = next(r for r in case.asked(len(approvers) + 1).requests if r.approver == x)
        if case.tokens[x] == first.task_token:
            problems.append("the retry asked with the first attempt's token")
        if (code := case.answer(x, decisions[x], token=first.task_token)) != "TaskTimedOut":
            problems.append(f"an answer on the first attempt's token got {code}")
        case.answer(y, decisions[y])
        if settled_at == 0:
            case.outcome()
        else:
            case.recorded(y)
        retry.release()
        for index, (approver, kind) in enumerate(order[1:] if settled_at != 0 else [], start=1):
            if settled_at is not None and index > settled_at:
                case.outcome()
                if (code := case.answer(approver, kind)) != "TaskTimedOut":
                    problems.append(f"{approver}'s late answer got {code}")
                continue
            if (code := case.answer(approver, kind)) is not None:
                problems.append(f"{approver}'s answer got {code}")
            if approver == x and (code := case.answer(x, kind)) != "TaskTimedOut":
                problems.append(f"a second answer on {x}'s token got {code}")
            case.recorded(approver)
        case.check_not_overtaken()
        execution = case.outcome()
        case.check_not_overtaken()
        if (code := case.answer(x, decisions[x], token=first.task_token)) != "TaskTimedOut":
            problems.append(f"after the end, an answer on the first attempt's token got {code}")
        # The record: Y's decision, then X's once (the answer on the refused first token is not one).
        wanted = {"outcome": rule.outcome, "decidedBy": rule.decided_by, "approvals": rule.approvals,
                  "rejections": rule.rejections, "decisions": rule.decisions}
        problems += mismatch(execution, wanted)
    finally:
        case.close()
    return [f"k={k} lost PutEvents for {x}, {decisions}: {p}" for p in problems]


LOST_EVENT_CASES = [(None, x, dict(zip(APPROVERS[:2], d, strict=True))) for x in APPROVERS[:2]
                    for d in itertools.product(("approve", "reject"), repeat=2)] + [
    (k, x, dict(zip(APPROVERS, d, strict=True))) for k in (1, 2, 3) for x in APPROVERS
    for d in itertools.product(("approve", "reject"), repeat=3)]


@pytest.mark.usefixtures("scaled_waits")
@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_lost_put_events_response_asks_again_with_a_new_token_and_the_outcome_follows_the_rule(
        request: pytest.FixtureRequest, cloud: Cloud, pattern: str) -> None:
    stack: Stack = request.getfixturevalue(pattern.replace("-", "_"))
    cases = [c for c in LOST_EVENT_CASES if (c[0] is None) == (pattern == "either-or")]
    run_all(cases, lambda c: play_lost_event(cloud, stack, *c))


# -- a call applied twice within one attempt ------------------------------------------------------------


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_duplicated_put_events_delivers_two_copies_with_the_same_token_and_one_answer_counts(
        request: pytest.FixtureRequest, cloud: Cloud, pattern: str) -> None:
    stack: Stack = request.getfixturevalue(pattern.replace("-", "_"))
    approvers = APPROVERS if pattern == "quorum" else APPROVERS[:2]
    case = Case(cloud, stack, approvers, 1 if pattern == "quorum" else None, SETTLES_BY_ANSWERS)
    case.inject(QUORUM.ASK if pattern == "quorum" else EITHER_OR.ask(1), Fault.duplicate(), approver="alice")
    inbox = ApprovalInbox(cloud, execution_arn=case.arn)
    try:
        case.start()
        case.asked()
        copies = [e for e in inbox_events(inbox, case.arn, len(approvers) + 1) if e["detail"]["approver"] == "alice"]
        assert len(copies) == 2
        assert copies[0]["detail"]["taskToken"] == copies[1]["detail"]["taskToken"] == case.tokens["alice"]
        assert case.answer("alice", "approve") is None
        assert case.answer("alice", "approve") == "TaskTimedOut"  # the copy's answer: the task is answered
        execution = case.outcome()
        rule = expected(approvers, [("alice", "approve")], case.quorum)
        assert mismatch(execution, {"outcome": rule.outcome, "approvals": rule.approvals, "decidedBy": rule.decided_by,
                                    "decisions": rule.decisions}) == []  # one decision, recorded once
    finally:
        case.close()
        inbox.close()


def inbox_events(inbox: ApprovalInbox, execution_arn: str, count: int) -> list[dict[str, Any]]:
    return wait_until(lambda: e if len(e := inbox.requests_for(execution_arn)) >= count else None, timeout=20,
                      what=f"{count} ApprovalRequested events of {execution_arn}")


def test_a_tally_write_applied_twice_counts_the_decision_once(cloud: Cloud, quorum: Stack) -> None:
    case = Case(cloud, quorum, APPROVERS, 2, SETTLES_BY_ANSWERS)
    case.inject(QUORUM.RECORD, Fault.duplicate(), approver="alice")
    try:
        case.start()
        case.asked()
        case.answer("alice", "approve")
        case.recorded("alice")
        case.answer("bob", "reject")
        case.recorded("bob")
        case.answer("carol", "approve")
        execution = case.outcome()
        rule = expected(APPROVERS, [("alice", "approve"), ("bob", "reject"), ("carol", "approve")], 2)
        assert mismatch(execution, {"outcome": rule.outcome, "approvals": rule.approvals,
                                    "rejections": rule.rejections, "decidedBy": rule.decided_by,
                                    "decisions": rule.decisions}) == []  # alice's decision once
        assert [f.fault.kind.value for f in cloud.faults.fired(execution_arn=case.arn)] == ["duplicate"]
    finally:
        case.close()


# -- a slow write racing the deadline ----------------------------------------------------------------------

RACES = {
    # name: (quorum, first answer, slow answer, slow fault, outcome, approvals, rejections)
    "landed-approval-meets-the-quorum": (2, ("alice", "approve"), ("bob", "approve"), Fault.hold(after=True),
                                         "APPROVED", ["alice", "bob"], []),
    "landed-rejection-makes-it-unreachable": (2, ("alice", "reject"), ("bob", "reject"), Fault.hold(after=True),
                                              "REJECTED", [], ["alice", "bob"]),
    "unlanded-approval-times-out": (2, ("alice", "approve"), ("bob", "approve"), Fault.hold(after=False),
                                    "TIMED_OUT", ["alice"], []),
}


def play_race(cloud: Cloud, stack: Stack, race: str) -> list[str]:
    """A real deadline of 5 s (both answers are in by then), or longer if the deadline overtook them."""
    return beating_the_deadline(lambda deadline: race_case(cloud, stack, race, deadline), (5, 10, 20))


def race_case(cloud: Cloud, stack: Stack, race: str, deadline: int) -> list[str]:
    k, (first, first_kind), (slow, slow_kind), fault, outcome, approvals, rejections = RACES[race]
    case = Case(cloud, stack, APPROVERS, k, deadline, ends_at_deadline=True)
    case.inject(QUORUM.RECORD, fault, approver=slow)
    try:
        case.start()
        case.asked()
        case.answer(first, first_kind)
        case.recorded(first)
        case.answer(slow, slow_kind)
        held = case.held(QUORUM.RECORD, 1)[0]
        if (held.at - case.started).total_seconds() >= deadline:
            raise Overtaken(case.arn)  # the slow call started after the deadline: the run proves nothing
        execution = case.outcome()  # the deadline flow reads the tally while the slow call is held
        wanted = {"outcome": outcome, "pattern": "quorum", "request": {}, "approvals": approvals,
                  "rejections": rejections, "decisions": counted([(first, first_kind), (slow, slow_kind)], approvals,
                                                                 rejections), "decidedBy": None, "quorum": k}
        problems = mismatch(execution, wanted)
        if not problems and set(execution.output) != set(wanted):  # the whole output: nothing more
            problems.append(f"the output {execution.output} has more than {wanted}")
        return [f"{race}: {p}" for p in problems]
    finally:
        case.close()


def test_a_write_answering_after_the_deadline_counts_if_it_landed_before(cloud: Cloud, quorum: Stack) -> None:
    run_all(list(RACES), lambda race: play_race(cloud, quorum, race))
