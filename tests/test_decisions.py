"""The decision record: every output lists, in ``decisions``, the decisions counted before the outcome.

Each entry is {"approver", "decision" ("approve" or "reject"), "comment" (a string cut to its first
1,000 characters, else null), "at" (ISO-8601 UTC with milliseconds: when Step Functions received
the answer)}, oldest first, one per approver (docs/contract.md, Decisions and Output). Either-or
records the deciding decision only; quorum records what its tally holds, each approver's record
kept from its first write, and at the deadline the decisions received so far; when the comments
together exceed 24,000 characters, each is cut further in the output (the tally keeps them whole).
A SendTaskFailure is a rejection without a comment; an answer without a valid decision is a
rejection, with its comment if that is a string. decidedBy is never an approver on the losing side.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from support import (
    Answer,
    answer_at_once,
    ended,
    play,
    play_to_the_deadline,
    record,
    record_at_once,
    send_answer,
    tally,
    timeless,
    tokens_out,
    wait_until_counted,
    wait_until_recorded,
)

from earlyexit.approvals import start_approval
from earlyexit.engine import Fault, FaultInjector, FaultRule
from earlyexit.history import Exit
from earlyexit.local import Cloud, Stack
from earlyexit.patterns import PATTERNS
from earlyexit.states import QUORUM

T = TypeVar("T")
R = TypeVar("R")
PAIR = ["alice", "bob"]
THREE = ["alice", "bob", "carol"]
FOUR = ["alice", "bob", "carol", "dave"]
LOST_WRITE = Fault.lost_response("InternalServerError", cause="We encountered an internal error. Please try again.")


@pytest.fixture(params=PATTERNS)
def machine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(pattern, state machine ARN) of each pattern in turn."""
    stack: Stack = request.getfixturevalue(request.param.replace("-", "_"))
    return request.param, stack.outputs["StateMachineArn"]


def at_once(play_one: Callable[[T], R], cases: Sequence[T]) -> list[R]:
    """``play_one`` of every case, all at the same time; the results in the order of the cases."""
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        return list(pool.map(play_one, cases))


def settled_by_alice(sfn: Any, machine: tuple[str, str], answer: Any, *, failure: bool = False) -> dict[str, Any]:
    """The output of an approval of alice and bob that alice's answer settles: SendTaskSuccess with ``answer`` (any
    JSON), or with ``failure`` SendTaskFailure. Quorum: 1 of 2 for an approval, else 2 of 2 (one rejection puts it
    out of reach)."""
    pattern, arn = machine
    approves = not failure and isinstance(answer, dict) and answer.get("decision") == "approve"
    quorum = None if pattern == "either-or" else 1 if approves else 2
    execution_arn = start_approval(sfn, arn, PAIR, quorum=quorum, timeout_seconds=120)
    token = tokens_out(sfn, execution_arn, len(PAIR))["alice"]
    if failure:
        sfn.send_task_failure(taskToken=token, error="Declined", cause=str(answer))
    else:
        sfn.send_task_success(taskToken=token, output=json.dumps(answer))
    execution = ended(sfn, execution_arn)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output is not None
    return execution.output


def alices_record(sfn: Any, machine: tuple[str, str], answers: Sequence[Any]) -> list[list[dict[str, Any]]]:
    """The decision record (without times) of each approval settled by alice's answer, one approval per answer,
    all at once."""
    return [timeless(output)["decisions"] for output in at_once(lambda a: settled_by_alice(sfn, machine, a), answers)]


def with_comment(decision: str, comment: Any) -> dict[str, Any]:
    return {"decision": decision, "comment": comment}


def recorded(decision: str, comment: str | None) -> list[dict[str, Any]]:
    """alice's record when her ``decision`` is recorded with ``comment``."""
    return [{"approver": "alice", "decision": decision, "comment": comment}]


def numbered(length: int) -> str:
    """A comment of ``length`` characters that says where it is cut: '00000|00001|...'."""
    return "".join(f"{i:05d}|" for i in range(length // 6 + 1))[:length]


# -- the clock ----------------------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_the_millisecond(moment: datetime) -> datetime:
    """``moment`` without its microseconds: a decision's time has milliseconds only."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Window:
    """The test's own clock around an answer: taken before it was sent and after it was counted."""

    opened: datetime
    closed: datetime

    def holds(self, decision: dict[str, Any]) -> bool:
        return to_the_millisecond(self.opened) <= datetime.fromisoformat(decision["at"]) <= self.closed


def answered_in_windows(sfn: Any, execution_arn: str, approvers: Sequence[str], answers: Sequence[Answer]
                        ) -> list[Window]:
    """Once every approver is asked, send ``answers`` one after the other, each once the previous one is counted;
    the clock window of each."""
    tokens = tokens_out(sfn, execution_arn, len(approvers))
    windows = []
    for approver, kind in answers:
        opened = utc_now()
        send_answer(sfn, tokens[approver], kind)
        wait_until_counted(sfn, execution_arn, approver)  # or the execution has ended
        windows.append(Window(opened, utc_now()))
    return windows


# -- what is recorded ---------------------------------------------------------------------------------------


def test_quorum_records_each_decision_once_oldest_first_in_the_order_received(sfn: Any, quorum: Stack) -> None:
    answers = [("dave", "approve"), ("bob", "reject"), ("alice", "approve"), ("carol", "approve")]
    execution = play(sfn, quorum.outputs["StateMachineArn"], FOUR, answers, quorum=3)
    output = timeless(execution.output)
    assert output["decisions"] == record(answers)  # as received; approvals and rejections follow the approvers
    assert (output["approvals"], output["rejections"]) == (["alice", "carol", "dave"], ["bob"])


@pytest.mark.engine  # the engine's clock is the test's
def test_each_decision_time_is_when_step_functions_received_it(sfn: Any, machine: tuple[str, str]) -> None:
    pattern, arn = machine
    approvers, answers = (PAIR, [("bob", "reject")]) if pattern == "either-or" else (
        THREE, [("carol", "approve"), ("alice", "reject"), ("bob", "approve")])
    execution_arn = start_approval(sfn, arn, approvers, quorum=None if pattern == "either-or" else 2,
                                   timeout_seconds=120)
    windows = answered_in_windows(sfn, execution_arn, approvers, answers)
    output = ended(sfn, execution_arn).output
    assert [d["approver"] for d in timeless(output)["decisions"]] == [a for a, _ in answers]  # ISO-8601 UTC, ms
    outside = [(d["approver"], d["at"], w) for d, w in zip(output["decisions"], windows, strict=True)
               if not w.holds(d)]
    assert outside == []


def test_a_comment_is_kept_with_its_decision(sfn: Any, machine: tuple[str, str]) -> None:
    answers = [with_comment("approve", "Looks good, ship it"), with_comment("reject", "Over budget: wait for Q3")]
    assert alices_record(sfn, machine, answers) == [recorded("approve", "Looks good, ship it"),
                                                    recorded("reject", "Over budget: wait for Q3")]


def test_an_answer_without_a_comment_is_recorded_with_comment_null(sfn: Any, machine: tuple[str, str]) -> None:
    assert alices_record(sfn, machine, [{"decision": "approve"}, {"decision": "reject"}]) == [
        recorded("approve", None), recorded("reject", None)]


NOT_STRINGS = [42, 4.5, {"x": 1}, [1, "a"], True, None]


def test_a_comment_that_is_not_a_string_is_null_and_the_decision_counts(sfn: Any, machine: tuple[str, str]) -> None:
    outputs = at_once(lambda c: settled_by_alice(sfn, machine, with_comment("approve", c)), NOT_STRINGS)
    assert [(o["outcome"], o["approvals"], timeless(o)["decisions"]) for o in outputs] == [
        ("APPROVED", ["alice"], recorded("approve", None))] * len(NOT_STRINGS)


def test_an_empty_comment_is_kept_empty(sfn: Any, machine: tuple[str, str]) -> None:
    assert alices_record(sfn, machine, [with_comment("approve", "")]) == [recorded("approve", "")]


def test_a_comment_of_1000_characters_is_kept_whole(sfn: Any, machine: tuple[str, str]) -> None:
    assert alices_record(sfn, machine, [with_comment("reject", numbered(1000))]) == [
        recorded("reject", numbered(1000))]


@pytest.mark.parametrize("length", [1001, 5000, 100_000])
def test_a_longer_comment_is_cut_to_its_first_1000_characters(sfn: Any, machine: tuple[str, str],
                                                               length: int) -> None:
    assert alices_record(sfn, machine, [with_comment("approve", numbered(length))]) == [
        recorded("approve", numbered(length)[:1000])]


# (comment, what is kept): 1,000 characters of 2, 3 or 4 bytes each (UTF-8), an emoji across the cut.
MULTI_BYTE = {
    "1000-e-acute-kept": ("é" * 1000, "é" * 1000),
    "1001-e-acute-cut": ("é" * 1001, "é" * 1000),
    "1000-emoji-kept": ("😀" * 1000, "😀" * 1000),
    "1001-emoji-cut": ("😀" * 1001, "😀" * 1000),
    "emoji-at-the-cut": ("a" * 999 + "😀" + "b", "a" * 999 + "😀"),
    "cjk-cut": ("承認" * 600, "承認" * 500),
}


def test_a_multi_byte_comment_is_cut_by_characters(sfn: Any, machine: tuple[str, str]) -> None:
    answers = [with_comment("approve", comment) for comment, _ in MULTI_BYTE.values()]
    records = dict(zip(MULTI_BYTE, alices_record(sfn, machine, answers), strict=True))
    assert records == {name: recorded("approve", kept) for name, (_, kept) in MULTI_BYTE.items()}


def test_a_send_task_failure_is_recorded_as_a_rejection_without_comment(sfn: Any, machine: tuple[str, str]) -> None:
    output = settled_by_alice(sfn, machine, "over budget", failure=True)  # the cause is no comment
    assert (output["outcome"], timeless(output)["decisions"]) == ("REJECTED", recorded("reject", None))


MALFORMED = [{"decision": "yes please"}, {"decision": "APPROVE"}, {"decision": True, "comment": 7}, {},
             "approve", ["approve", "a comment"], 1, None]


def test_a_malformed_answer_is_recorded_as_a_rejection_without_comment(sfn: Any, machine: tuple[str, str]) -> None:
    assert alices_record(sfn, machine, MALFORMED) == [recorded("reject", None)] * len(MALFORMED)


def test_a_malformed_answer_with_a_string_comment_is_a_rejection_with_that_comment(
        sfn: Any, machine: tuple[str, str]) -> None:
    # docs/contract.md: comment is the answer's comment, null when it has none or it is not a string
    assert alices_record(sfn, machine, [with_comment("yes please", "I think so")]) == [recorded("reject", "I think so")]


def test_either_or_records_only_the_deciding_decision(sfn: Any, either_or: Stack) -> None:
    arn = either_or.outputs["StateMachineArn"]
    both = [("alice", "approve"), ("bob", "reject")]

    def race(_: int) -> dict[str, Any]:  # both answer at the same instant: one decides, the other is not recorded
        execution_arn = start_approval(sfn, arn, PAIR, timeout_seconds=120)
        answer_at_once(sfn, execution_arn, both)
        return ended(sfn, execution_arn).output

    for output in at_once(race, range(8)):
        assert timeless(output)["decisions"] == record_at_once([(output["decidedBy"], dict(both)[output["decidedBy"]])])


@pytest.mark.usefixtures("scaled_waits")
def test_an_either_or_that_times_out_records_no_decision(sfn: Any, either_or: Stack) -> None:
    output = play(sfn, either_or.outputs["StateMachineArn"], PAIR, timeout_seconds=100).output  # 1 s, scaled
    assert (output["outcome"], timeless(output)["decisions"]) == ("TIMED_OUT", [])


@pytest.mark.usefixtures("scaled_waits")
def test_a_quorum_that_times_out_records_the_decisions_received_so_far(sfn: Any, quorum: Stack) -> None:
    answers = [("carol", "approve"), ("alice", "reject")]  # 3 of 4 still within reach: only the deadline ends it
    execution = play_to_the_deadline(sfn, quorum.outputs["StateMachineArn"], FOUR, answers, quorum=3,
                                     deadlines=(300, 1000, 6000))  # 3 s scaled, longer if it overtook the answers
    assert timeless(execution.output) == {"outcome": "TIMED_OUT", "pattern": "quorum", "request": {},
                                          "approvals": ["carol"], "rejections": ["alice"],
                                          "decisions": record(answers), "decidedBy": None, "quorum": 3}


# -- the quorum's comment budget: the Fail state's cause carries the record (at most 32,768 characters) --------


def comment_of(approver: str) -> str:
    """A 1,000-character comment that names its approver and says where it is cut."""
    return (f"{approver}:" + numbered(1000))[:1000]


def escape_heavy_comment_of(approver: str) -> str:
    """A 1,000-character comment of quotes and line breaks: written in JSON (the Fail state's cause), 2,000."""
    return ('"\n' * 500)[:1000]


def approved_by_all_with_comments(sfn: Any, quorum: Stack, count: int,
                                  comment_of: Callable[[str], str] = comment_of) -> tuple[str, dict[str, Any]]:
    """An approval that needs every one of ``count`` approvers, each approving with a 1,000-character comment, all
    at the same instant; its ARN and output."""
    approvers = [f"approver-{i:02d}" for i in range(1, count + 1)]
    execution_arn = start_approval(sfn, quorum.outputs["StateMachineArn"], approvers, quorum=count,
                                   timeout_seconds=300)
    tokens = tokens_out(sfn, execution_arn, count)
    at_once(lambda a: sfn.send_task_success(taskToken=tokens[a], output=json.dumps(
        with_comment("approve", comment_of(a)))), approvers)
    execution = ended(sfn, execution_arn)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    return execution_arn, execution.output


def test_comments_of_24000_characters_together_are_kept_whole(sfn: Any, quorum: Stack) -> None:
    _, output = approved_by_all_with_comments(sfn, quorum, 24)
    assert {d["approver"]: d["comment"] for d in timeless(output)["decisions"]} == {
        a: comment_of(a) for a in output["approvals"]}


def test_comments_over_24000_characters_together_are_each_cut_to_an_equal_share_in_the_output_only(
        sfn: Any, cloud: Cloud, quorum: Stack) -> None:
    execution_arn, output = approved_by_all_with_comments(sfn, quorum, 25)  # 25,000 characters: 960 each
    assert {d["approver"]: d["comment"] for d in timeless(output)["decisions"]} == {
        a: comment_of(a)[:960] for a in output["approvals"]}
    records = tally(cloud.client("dynamodb"), quorum.outputs["TableName"], execution_arn).records
    assert {a: records[a]["comment"]["S"] for a in output["approvals"]} == {
        a: comment_of(a) for a in output["approvals"]}  # the tally keeps each whole


def test_comments_are_counted_as_the_cause_writes_them_so_that_escapes_cannot_overflow_it(
        sfn: Any, quorum: Stack) -> None:
    """24 comments of 1,000 quotes and line breaks are 24,000 characters but 48,000 once written in JSON: over the
    budget, so each is cut, to 166 characters (1,000 / 6: a share that fits however it is escaped)."""
    _, output = approved_by_all_with_comments(sfn, quorum, 24, comment_of=escape_heavy_comment_of)
    comments = {d["approver"]: d["comment"] for d in timeless(output)["decisions"]}
    assert comments == {a: escape_heavy_comment_of(a)[:166] for a in output["approvals"]}
    assert sum(len(json.dumps(c)) - 2 for c in comments.values()) <= 24_000


# -- retried tally writes and decidedBy (the embedded engine's fault injection) -------------------------------


@dataclass
class Faulty:
    """A quorum execution of ``approvers``, named in advance so that faults can be aimed at its calls only."""

    sfn: Any
    cloud: Cloud
    faults: FaultInjector
    stack: Stack
    approvers: list[str]
    quorum: int

    def __post_init__(self) -> None:
        self.machine = self.stack.outputs["StateMachineArn"]
        self.name = f"decisions-{uuid.uuid4().hex[:12]}"
        self.arn = f"{self.machine.replace(':stateMachine:', ':execution:')}:{self.name}"

    def inject(self, approver: str, fault: Fault, *, attempt: int) -> None:
        """``fault`` on ``approver``'s tally write (attempt ``attempt``) in this execution."""
        self.faults.add(FaultRule(state_machine_arn=self.machine, execution_arn=self.arn, state=QUORUM.RECORD,
                                  attempt=attempt, iteration=self.approvers.index(approver), fault=fault))

    def start(self) -> dict[str, str]:
        """Start it; each approver's task token."""
        start_approval(self.sfn, self.machine, self.approvers, quorum=self.quorum, timeout_seconds=3600,
                       name=self.name)
        return tokens_out(self.sfn, self.arn, len(self.approvers))

    def in_tally(self, approver: str) -> None:
        wait_until_recorded(self.cloud.client("dynamodb"), self.stack.outputs["TableName"], self.arn, approver)

    def held(self, count: int) -> list[Any]:
        """The first ``count`` faults fired on the tally writes of this execution."""
        return self.faults.wait_fired(state=QUORUM.RECORD, execution_arn=self.arn, count=count, timeout=30)

    def tally_record(self, approver: str) -> dict[str, Any]:
        return tally(self.cloud.client("dynamodb"), self.stack.outputs["TableName"], self.arn).records[approver]


@pytest.mark.engine
@pytest.mark.usefixtures("scaled_waits")
def test_a_retried_tally_write_is_recorded_once_with_the_time_of_its_answer(
        sfn: Any, cloud: Cloud, faults: FaultInjector, quorum: Stack) -> None:
    case = Faulty(sfn, cloud, faults, quorum, THREE, 2)
    case.inject("alice", LOST_WRITE, attempt=0)  # applied, then an error: Step Functions retries it
    case.inject("alice", Fault.hold(deadline=60), attempt=1)
    tokens = case.start()
    opened = utc_now()
    send_answer(sfn, tokens["alice"], "approve")
    lost, retry = case.held(2)
    retry.release()
    wait_until_counted(sfn, case.arn, "alice")
    send_answer(sfn, tokens["bob"], "reject")
    wait_until_counted(sfn, case.arn, "bob")
    send_answer(sfn, tokens["carol"], "approve")
    output = ended(sfn, case.arn).output
    assert [(f.attempt, f.fault.kind.value) for f in (lost, retry)] == [(0, "lost response"), (1, "hold")]
    assert timeless(output)["decisions"] == record([("alice", "approve"), ("bob", "reject"), ("carol", "approve")])
    first = output["decisions"][0]
    assert to_the_millisecond(opened) <= datetime.fromisoformat(first["at"]) <= lost.at < retry.at
    assert case.tally_record("alice")["at"] == {"S": first["at"]}  # the first write's record, kept by the retry
    assert output["decidedBy"] == "carol"


@pytest.mark.engine
@pytest.mark.usefixtures("scaled_waits")
def test_a_rejection_whose_retried_write_finds_the_quorum_met_by_others_decides_nothing(
        sfn: Any, cloud: Cloud, faults: FaultInjector, quorum: Stack) -> None:
    # 2 of 3. alice approves. carol rejects: her write lands, its response is lost, the retry waits. bob approves:
    # his write lands (the quorum is met), his response is late. carol's retry reads the tally first and ends it.
    case = Faulty(sfn, cloud, faults, quorum, THREE, 2)
    case.inject("carol", LOST_WRITE, attempt=0)
    case.inject("carol", Fault.hold(deadline=60), attempt=1)
    case.inject("bob", Fault.hold(after=True, deadline=60), attempt=0)
    tokens = case.start()
    send_answer(sfn, tokens["alice"], "approve")
    wait_until_counted(sfn, case.arn, "alice")
    send_answer(sfn, tokens["carol"], "reject")
    _, carols_retry = case.held(2)
    send_answer(sfn, tokens["bob"], "approve")
    case.in_tally("bob")
    case.held(3)  # bob's response is held
    carols_retry.release()
    execution = ended(sfn, case.arn)
    assert timeless(execution.output) == {
        "outcome": "APPROVED", "pattern": "quorum", "request": {}, "approvals": ["alice", "bob"],
        "rejections": ["carol"], "decisions": record([("alice", "approve"), ("carol", "reject"), ("bob", "approve")]),
        "decidedBy": None, "quorum": 2}
    assert execution.exited_by == Exit(QUORUM.MET, "carol")  # her flow ended it, on the losing side


@pytest.mark.engine
@pytest.mark.usefixtures("scaled_waits")
def test_an_approval_whose_retried_write_meets_the_quorum_decides_it(
        sfn: Any, cloud: Cloud, faults: FaultInjector, quorum: Stack) -> None:
    case = Faulty(sfn, cloud, faults, quorum, THREE, 2)
    case.inject("bob", LOST_WRITE, attempt=0)
    tokens = case.start()
    send_answer(sfn, tokens["alice"], "approve")
    wait_until_counted(sfn, case.arn, "alice")
    send_answer(sfn, tokens["bob"], "approve")  # applied, the response lost, retried: the retry meets the quorum
    execution = ended(sfn, case.arn)
    assert [f.attempt for f in case.held(1)] == [0]
    assert timeless(execution.output) == {
        "outcome": "APPROVED", "pattern": "quorum", "request": {}, "approvals": ["alice", "bob"], "rejections": [],
        "decisions": record([("alice", "approve"), ("bob", "approve")]), "decidedBy": "bob", "quorum": 2}
    assert execution.exited_by == Exit(QUORUM.MET, "bob")
