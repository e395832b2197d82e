"""Reminders (execution input ``reminderSeconds``): ApprovalReminder rounds from the deadline flow of both patterns.

A round is read from the execution's history: the ``putEvents`` tasks (no task token) scheduled with
``ApprovalReminder`` entries, all carrying the round's number in ``detail.reminder``. Either-or sends one call
with an event per approver; quorum reads the tally (strongly consistent GetItem) and reminds, ten per call, only
the approvers who have not answered. The scenarios run in real seconds (deadlines of 3 to 16 s, reminders every
1 to 5 s), all at once; the fault scenarios with Wait states at 1/100 (``scaled_waits``).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import (
    Overtaken,
    beating_the_deadline,
    ended,
    send_answer,
    tokens_out,
    wait_until_counted,
    wait_until_recorded,
    waits_at,
)

from earlyexit import states
from earlyexit.approvals import send_at_once, start_approval
from earlyexit.engine import Fault, FaultInjector, FaultRule
from earlyexit.errors import WaitTimeout
from earlyexit.history import Execution, history_events, requests_sent, state_transitions
from earlyexit.local import Cloud, Stack
from earlyexit.polling import wait_until
from earlyexit.rules import check_input
from earlyexit.tools.bench import measure_reminder_rounds, render
from earlyexit.tools.bench.report import _reminder_table

REQUEST = {"item": "laptop", "price": 1499}
DETAIL_FIELDS = {"pattern", "executionArn", "approver", "request", "deadline", "reminder"}
TOLERANCE = timedelta(milliseconds=10)  # the history's clock has milliseconds
HISTORY_QUOTA = 25_000  # events in one execution's history, a hard Step Functions quota
MAX_ROUNDS = 500  # reminder rounds at most, whatever timeoutSeconds / reminderSeconds (README)
# The states of the deadline flow's loop (the Wait and the Choice end every deadline flow, reminders or not).
LOOP = {states.WAIT_FOR_THE_DEADLINE, states.REMIND_ASK_END, states.EITHER_OR.REMIND, states.QUORUM.READ_ANSWERED,
        states.QUORUM.REMIND_BATCHES, states.QUORUM.REMIND_BATCH}
FORTY = [f"approver-{i:02d}" for i in range(1, 41)]


# -- reading the rounds from a history ------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One PutEvents call of a reminder round, as the history schedules it."""

    resource: str
    number: int  # detail.reminder, the same in every entry
    details: tuple[dict[str, Any], ...]
    entries: tuple[dict[str, Any], ...]
    at: datetime
    result: str | None  # TaskSucceeded, TaskFailed, or None (no result in the history)

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(d["approver"] for d in self.details)


def _parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _results(events: list[dict[str, Any]]) -> dict[int, str]:
    """The id of each scheduled task's TaskScheduled event -> how it ended (TaskSucceeded or TaskFailed)."""
    by_id = {e["id"]: e for e in events}
    results = {}
    for event in events:
        if event["type"] not in ("TaskSucceeded", "TaskFailed"):
            continue
        current = by_id.get(event.get("previousEventId", 0))
        while current is not None and current["type"] != "TaskScheduled":
            current = by_id.get(current.get("previousEventId", 0))
        if current is not None:
            results[current["id"]] = event["type"]
    return results


def reminder_calls(events: list[dict[str, Any]]) -> list[Call]:
    """Every PutEvents call scheduled with ApprovalReminder entries, oldest first (a retry is another call)."""
    results = _results(events)
    calls = []
    for event in events:
        details = event.get("taskScheduledEventDetails") or {}
        if event["type"] != "TaskScheduled" or details.get("resourceType") != "events":
            continue
        entries = json.loads(details["parameters"]).get("Entries") or []
        if not any(e.get("DetailType") == "ApprovalReminder" for e in entries):
            continue
        assert all(e.get("DetailType") == "ApprovalReminder" for e in entries), entries
        parsed = tuple(_parsed(e["Detail"]) for e in entries)
        numbers = {d["reminder"] for d in parsed}
        assert len(numbers) == 1, f"one call, one round: {numbers}"
        calls.append(Call(details["resource"], numbers.pop(), parsed, tuple(entries), event["timestamp"],
                          results.get(event["id"])))
    return sorted(calls, key=lambda c: c.at)


def rounds(events: list[dict[str, Any]]) -> dict[int, list[Call]]:
    """The calls of each round, by round number, in the order the rounds were first scheduled."""
    by_number: dict[int, list[Call]] = {}
    for call in reminder_calls(events):
        by_number.setdefault(call.number, []).append(call)
    return by_number


def reminded(events: list[dict[str, Any]]) -> list[list[str]]:
    """Who each round reminded (its calls together), round after round."""
    return [sorted(a for call in calls for a in call.approvers) for calls in rounds(events).values()]


def entered(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if (e.get("stateEnteredEventDetails") or {}).get("name") == name]


def tally_reads(events: list[dict[str, Any]]) -> list[set[str]]:
    """Who had answered, as each "Read who has answered" GetItem returned the tally, oldest first."""
    reads = []
    for event in events:
        details = event.get("taskSucceededEventDetails") or {}
        if event["type"] == "TaskSucceeded" and details.get("resource") == "getItem":
            item = json.loads(details["output"]).get("Item") or {}
            reads.append({a for kind in ("approvals", "rejections") for a in item.get(kind, {}).get("SS", [])})
    return reads


def wait_for_round(sfn: Any, execution_arn: str, number: int, timeout: float = 60) -> None:
    """Wait until round ``number`` has been scheduled."""
    wait_until(lambda: number in rounds(history_events(sfn, execution_arn)), timeout=timeout, first_pause=0.02,
               what=f"reminder round {number} of {execution_arn}")


def deadline_flow(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The deadline flow's events: those that follow its first Wait through their previousEventId links (the
    approvers' flows, interleaved in the history, follow their own)."""
    first = next(e["id"] for e in entered(events, states.WAIT_FOR_THE_DEADLINE))
    flow = {first}
    for event in events:
        if event.get("previousEventId") in flow:
            flow.add(event["id"])
    return [e for e in events if e["id"] in flow]


def deadline_of(started: datetime, timeout_seconds: int) -> str:
    """The ``deadline`` every event of an execution carries: its start + timeoutSeconds, to the second."""
    return (started.replace(microsecond=0) + timedelta(seconds=timeout_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the scenarios, played all at once ------------------------------------------------------------


@dataclass(frozen=True)
class Played:
    pattern: str
    timeout_seconds: int
    reminder_seconds: int | None
    approvers: list[str]
    execution: Execution
    events: list[dict[str, Any]]

    @property
    def deadline(self) -> datetime:
        """The moment the deadline flow may end the Parallel: the start + timeoutSeconds, to the second (the
        requests' ``deadline``)."""
        return (self.execution.started_at + timedelta(seconds=self.timeout_seconds)).replace(microsecond=0)

    @property
    def rounds(self) -> dict[int, list[Call]]:
        return rounds(self.events)


@dataclass(frozen=True)
class Plan:
    pattern: str
    approvers: list[str]
    timeout_seconds: int
    reminder_seconds: int | None = None
    quorum: int | None = None
    # What the approvers do once the requests are out: (sfn, ddb, table, execution ARN, tokens) -> None.
    act: Callable[[Any, Any, str, str, dict[str, str]], None] | None = None


def _approve_after_round(number: int, *groups: list[str]) -> Callable[..., None]:
    """After round ``number``, each group approves at once (recorded before the next group); groups[0] right away
    when ``number`` is 0."""
    def act(sfn: Any, ddb: Any, table: str, arn: str, tokens: dict[str, str]) -> None:
        for index, group in enumerate(groups):
            if number + index > 0:
                wait_for_round(sfn, arn, number + index)
            send_at_once(sfn, [(tokens[a], "approve") for a in group])
            for approver in group:
                wait_until_recorded(ddb, table, arn, approver)
    return act


def _answer(approver: str, kind: str, after_round: int = 0) -> Callable[..., None]:
    """``approver`` answers after round ``after_round`` (0: at once)."""
    def act(sfn: Any, ddb: Any, table: str, arn: str, tokens: dict[str, str]) -> None:
        if after_round:
            wait_for_round(sfn, arn, after_round)
        send_answer(sfn, tokens[approver], kind)
    return act


def _one_after_the_other(*steps: tuple[str, int]) -> Callable[..., None]:
    """Quorum approvals, each (approver, after round n) counted before the next."""
    def act(sfn: Any, ddb: Any, table: str, arn: str, tokens: dict[str, str]) -> None:
        for approver, after_round in steps:
            if after_round:
                wait_for_round(sfn, arn, after_round)
            send_answer(sfn, tokens[approver], "approve")
            wait_until_counted(sfn, arn, approver)
    return act


THREE = ["alice", "bob", "carol"]
PLANS: dict[str, Plan] = {
    # either-or
    "either-or silent, 4 s, every 1 s": Plan("either-or", ["alice", "bob"], 4, 1),
    "either-or silent, 3 s, every 2 s": Plan("either-or", ["alice", "bob"], 3, 2),
    "either-or silent, 4 s, every 2 s": Plan("either-or", ["alice", "bob"], 4, 2),  # the 2nd round is the deadline
    "either-or silent, 3 s, no reminders": Plan("either-or", ["alice", "bob"], 3),
    "either-or approved after round 1": Plan("either-or", ["alice", "bob"], 8, 2, act=_answer("alice", "approve", 1)),
    "either-or approved, no reminders": Plan("either-or", ["alice", "bob"], 60, act=_answer("alice", "approve")),
    "either-or approved before any round": Plan("either-or", ["alice", "bob"], 60, 30,
                                                act=_answer("bob", "reject")),
    # quorum
    "quorum silent, 3 s, every 1 s": Plan("quorum", THREE, 3, 1, quorum=2),
    "quorum silent, 3 s, no reminders": Plan("quorum", THREE, 3, quorum=2),
    "quorum 3 of 3, bob then alice approve": Plan("quorum", THREE, 9, 4, quorum=3,
                                                  act=_approve_after_round(0, ["bob"], ["alice"])),
    "quorum 2 of 3 approved after round 1": Plan("quorum", THREE, 7, 2, quorum=2,
                                                 act=_one_after_the_other(("alice", 1), ("carol", 0))),
    "quorum 2 of 3 approved, no reminders": Plan("quorum", THREE, 60, quorum=2,
                                                 act=_one_after_the_other(("alice", 0), ("bob", 0))),
    # Long enough for all 40 requests to be out before the deadline, however loaded the machine.
    "quorum of 40 silent, 8 s, every 3 s": Plan("quorum", FORTY, 8, 3, quorum=40),
    "quorum of 40 silent, 8 s, no reminders": Plan("quorum", FORTY, 8, quorum=40),
    "quorum of 40, 15 then 16 approve": Plan("quorum", FORTY, 16, 5, quorum=40,  # 6 s to answer after round 2
                                             act=_approve_after_round(1, FORTY[:15], FORTY[15:31])),
}


@pytest.fixture
def thousandfold_waits() -> Iterator[None]:
    """Wait states and Retry intervals at 1/1000 of their length (embedded engine only)."""
    with waits_at(0.001):
        yield


def _play_once(cloud: Cloud, stack: Stack, plan: Plan) -> Played:
    sfn, ddb = cloud.client("stepfunctions"), cloud.client("dynamodb")
    arn = start_approval(sfn, stack.outputs["StateMachineArn"], plan.approvers, request=REQUEST, quorum=plan.quorum,
                         timeout_seconds=plan.timeout_seconds, reminder_seconds=plan.reminder_seconds)
    tokens = tokens_out(sfn, arn, len(plan.approvers), timeout=30)
    if plan.act is not None:
        try:
            plan.act(sfn, ddb, stack.outputs.get("TableName", ""), arn, tokens)
        except (WaitTimeout, ClientError):
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                raise Overtaken(arn) from None
            raise
    execution = ended(sfn, arn, timeout=plan.timeout_seconds + 30)
    return Played(plan.pattern, plan.timeout_seconds, plan.reminder_seconds, plan.approvers, execution,
                  history_events(sfn, arn))


def _play(cloud: Cloud, stacks: dict[str, Stack], plan: Plan) -> Played:
    """Play ``plan``; one the deadline overtook is played again with every time doubled (the same rounds)."""
    def at(timeout_seconds: int) -> Played:
        reminder_seconds = plan.reminder_seconds and plan.reminder_seconds * timeout_seconds // plan.timeout_seconds
        return _play_once(cloud, stacks[plan.pattern],
                          replace(plan, timeout_seconds=timeout_seconds, reminder_seconds=reminder_seconds))

    return beating_the_deadline(at, [plan.timeout_seconds * times for times in (1, 2, 4)])


@pytest.fixture(scope="module")
def played(cloud: Cloud, either_or: Stack, quorum: Stack) -> dict[str, Played]:
    """Every plan, all at once (the longest takes about 16 s)."""
    stacks = {"either-or": either_or, "quorum": quorum}
    with ThreadPoolExecutor(max_workers=len(PLANS)) as pool:
        done = dict(zip(PLANS, pool.map(lambda plan: _play(cloud, stacks, plan), PLANS.values()), strict=True))
    for name, play in done.items():
        assert play.execution.status == "SUCCEEDED", (name, play.execution.error, play.execution.cause)
    return done


WITH_REMINDERS = [name for name, plan in PLANS.items() if plan.reminder_seconds]
UNDECIDED = [name for name, plan in PLANS.items() if plan.reminder_seconds and plan.act is None]
WITHOUT_REMINDERS = [name for name, plan in PLANS.items() if not plan.reminder_seconds]


# -- rounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_REMINDERS)
def test_rounds_are_numbered_1_2_and_so_on_in_the_order_they_are_sent(played: dict[str, Played], name: str) -> None:
    play = played[name]
    numbers = [call.number for call in reminder_calls(play.events)]
    assert numbers == sorted(numbers)
    assert list(play.rounds) == list(range(1, len(play.rounds) + 1))
    if name != "either-or approved before any round":
        assert play.rounds, "a reminder round was sent"


@pytest.mark.parametrize("name", UNDECIDED)
def test_rounds_come_every_reminder_seconds_and_none_at_or_after_the_deadline(
        played: dict[str, Played], name: str) -> None:
    play = played[name]
    assert play.execution.output is not None and play.execution.output["outcome"] == "TIMED_OUT"
    assert play.reminder_seconds is not None
    assert len(play.rounds) == math.ceil(play.timeout_seconds / play.reminder_seconds) - 1
    # Anchored to the start: round n at the start + n x reminderSeconds, the end at the start + timeoutSeconds,
    # each rounded up to the second, whatever the rounds before took.
    started = play.execution.started_at
    for number, calls in play.rounds.items():
        assert min(c.at for c in calls) >= started + timedelta(seconds=number * play.reminder_seconds) - TOLERANCE
    assert play.execution.stopped_at is not None
    assert play.execution.stopped_at >= started + timedelta(seconds=play.timeout_seconds) - TOLERANCE


@pytest.mark.parametrize("name", WITHOUT_REMINDERS)
def test_without_reminder_seconds_nobody_is_reminded(played: dict[str, Played], name: str) -> None:
    play = played[name]
    assert reminder_calls(play.events) == []
    assert not any(entered(play.events, state) for state in LOOP - {states.WAIT_FOR_THE_DEADLINE,
                                                                     states.REMIND_ASK_END})
    assert len(entered(play.events, states.WAIT_FOR_THE_DEADLINE)) == 1


def test_either_or_reminds_both_approvers_in_one_call_per_round(played: dict[str, Played]) -> None:
    for name in WITH_REMINDERS:
        play = played[name]
        if play.pattern != "either-or":
            continue
        for calls in play.rounds.values():
            assert [(c.resource, c.approvers) for c in calls] == [("putEvents", ("alice", "bob"))], name


def test_quorum_reminds_only_those_who_have_not_answered(played: dict[str, Played]) -> None:
    assert reminded(played["quorum silent, 3 s, every 1 s"].events) == [THREE, THREE]
    # bob approves before round 1, alice after it: round 2 reminds carol alone.
    assert reminded(played["quorum 3 of 3, bob then alice approve"].events) == [["alice", "carol"], ["carol"]]
    for name in WITH_REMINDERS:
        play = played[name]
        if play.pattern == "quorum":  # each round: exactly those the round's consistent read shows pending
            reads = tally_reads(play.events)
            assert reminded(play.events) == [sorted(set(play.approvers) - answered)
                                             for answered in reads[:len(play.rounds)]], name


def test_a_40_approver_round_makes_one_put_events_call_per_ten_pending(played: dict[str, Played]) -> None:
    play = played["quorum of 40, 15 then 16 approve"]
    assert [len(r) for r in reminded(play.events)] == [40, 25, 9]
    assert [len(calls) for calls in play.rounds.values()] == [4, 3, 1]
    for calls in play.rounds.values():
        assert all(1 <= len(c.entries) <= 10 for c in calls)
        everyone = [a for c in calls for a in c.approvers]
        assert len(everyone) == len(set(everyone))
    assert play.execution.output is not None and play.execution.output["outcome"] == "TIMED_OUT"
    assert len(play.execution.output["approvals"]) == 31


@pytest.mark.parametrize("name", ["either-or approved after round 1", "quorum 2 of 3 approved after round 1"])
def test_reminders_stop_at_the_outcome(played: dict[str, Played], name: str) -> None:
    play = played[name]
    assert play.execution.output is not None and play.execution.output["outcome"] == "APPROVED"
    plan = PLANS[name]
    assert 1 <= len(play.rounds) < math.ceil(plan.timeout_seconds / (plan.reminder_seconds or 1)) - 1
    ended = next(e for e in play.events if e["type"] == "ParallelStateFailed")
    assert all(call.at <= ended["timestamp"] for call in reminder_calls(play.events))
    # Nothing of the deadline flow after the Parallel ended: no Wait, no round.
    after = [e for e in play.events if e["id"] > ended["id"] and e["type"].endswith("StateEntered")]
    assert [e["stateEnteredEventDetails"]["name"] for e in after] == [states.DECIDED]
    if play.pattern == "quorum":  # alice approved after round 1: no later round reminds her
        assert all("alice" not in names for names in reminded(play.events)[1:])


@pytest.mark.parametrize("name", WITH_REMINDERS)
def test_a_reminder_carries_the_request_and_the_deadline_and_no_task_token(
        played: dict[str, Played], name: str) -> None:
    play = played[name]
    asked = [json.loads(e["taskScheduledEventDetails"]["parameters"])["Entries"][0] for e in play.events
             if e["type"] == "TaskScheduled"
             and e["taskScheduledEventDetails"]["resource"] == "putEvents.waitForTaskToken"]
    request_deadlines = {_parsed(entry["Detail"])["deadline"] for entry in asked}
    assert request_deadlines == {deadline_of(play.execution.started_at, play.timeout_seconds)}
    for call in reminder_calls(play.events):
        assert call.resource == "putEvents"  # not .waitForTaskToken: nothing waits for an answer to a reminder
        for entry, detail in zip(call.entries, call.details, strict=True):
            assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
                "earlyexit", "ApprovalReminder", "default")
            assert set(detail) == DETAIL_FIELDS, detail  # no taskToken
            assert detail["pattern"] == play.pattern
            assert detail["executionArn"] == play.execution.arn
            assert detail["request"] == REQUEST
            assert detail["deadline"] in request_deadlines
            assert detail["reminder"] == call.number


# -- what a round costs ---------------------------------------------------------------------------


def _loop_transitions(events: list[dict[str, Any]]) -> int:
    return sum(len(entered(events, state)) for state in LOOP)


TIMED_OUT_WITH_REMINDERS = [*UNDECIDED, "quorum 3 of 3, bob then alice approve", "quorum of 40, 15 then 16 approve"]


@pytest.mark.parametrize("name", TIMED_OUT_WITH_REMINDERS)
def test_a_round_costs_3_transitions_on_either_or_and_4_plus_one_per_ten_pending_on_quorum(
        played: dict[str, Played], name: str) -> None:
    play = played[name]
    assert play.execution.output is not None and play.execution.output["outcome"] == "TIMED_OUT"
    if play.pattern == "quorum":
        assert [len(calls) for calls in play.rounds.values()] == [math.ceil(len(r) / 10)
                                                                  for r in reminded(play.events)]
    per_round = [3 if play.pattern == "either-or" else 4 + len(calls) for calls in play.rounds.values()]
    # Besides its rounds, the deadline flow enters its first Wait, and the Choice that finds the deadline.
    loop = sum(len(entered(play.events, state)) for state in LOOP)
    assert loop == sum(per_round) + 2
    assert play.execution.transitions == state_transitions(play.events)


@pytest.mark.parametrize(("name", "twin"), [
    ("either-or silent, 4 s, every 1 s", "either-or silent, 3 s, no reminders"),
    ("either-or silent, 3 s, every 2 s", "either-or silent, 3 s, no reminders"),
    ("quorum silent, 3 s, every 1 s", "quorum silent, 3 s, no reminders"),
])
def test_an_execution_with_reminders_costs_its_twin_s_transitions_plus_each_round_s(
        played: dict[str, Played], name: str, twin: str) -> None:
    play = played[name]
    per_round = [3 if play.pattern == "either-or" else 4 + len(calls) for calls in play.rounds.values()]
    assert play.execution.transitions == played[twin].execution.transitions + sum(per_round)


def test_a_decided_execution_without_reminder_seconds_costs_what_it_did_before(played: dict[str, Played]) -> None:
    assert played["either-or approved, no reminders"].execution.transitions == 7
    assert played["quorum 2 of 3 approved, no reminders"].execution.transitions <= 14
    # With reminderSeconds, decided before the first round: the same.
    assert played["either-or approved before any round"].execution.transitions == 7


def test_a_timed_out_execution_without_reminders_costs_one_transition_more_than_before(
        played: dict[str, Played]) -> None:
    # Before reminders: Validate, Parallel, 2 asks, Wait, Deadline passed, Decided (either-or, 7); quorum: the
    # same with the Map and the deadline read (3 approvers, 10). Now the Choice "Remind or end" too.
    assert played["either-or silent, 3 s, no reminders"].execution.transitions == 7 + 1
    assert played["quorum silent, 3 s, no reminders"].execution.transitions == 10 + 1
    for name in ("either-or silent, 3 s, no reminders", "quorum silent, 3 s, no reminders"):
        assert len(entered(played[name].events, states.REMIND_ASK_END)) == 1


# -- delivered as EventBridge events --------------------------------------------------------------


@pytest.mark.deploys
def test_reminders_are_delivered_as_eventbridge_events_a_rule_routes(
        cloud: Cloud, sfn: Any, either_or: Stack, quorum: Stack) -> None:
    events, sqs = cloud.client("events"), cloud.client("sqs")
    name = f"reminders-{uuid.uuid4().hex[:12]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["earlyexit"], "detail-type": ["ApprovalReminder"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    try:
        arns = {"either-or": start_approval(sfn, either_or.outputs["StateMachineArn"], ["alice", "bob"],
                                            request=REQUEST, timeout_seconds=3, reminder_seconds=1),
                "quorum": start_approval(sfn, quorum.outputs["StateMachineArn"], THREE, request=REQUEST, quorum=2,
                                         timeout_seconds=3, reminder_seconds=1)}
        outcomes = {p: ended(sfn, arn, timeout=30) for p, arn in arns.items()}
        received: list[dict[str, Any]] = []

        def all_delivered() -> bool:
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return len([e for e in received if e["detail"]["executionArn"] in arns.values()]) >= 2 * 2 + 2 * 3

        wait_until(all_delivered, timeout=20, what="the reminders in the queue")
    finally:
        events.remove_targets(Rule=name, Ids=["queue"])
        events.delete_rule(Name=name)
        sqs.delete_queue(QueueUrl=queue_url)
    for pattern, arn in arns.items():
        mine = [e for e in received if e["detail"]["executionArn"] == arn]
        assert {(e["source"], e["detail-type"]) for e in mine} == {("earlyexit", "ApprovalReminder")}
        approvers = ["alice", "bob"] if pattern == "either-or" else THREE
        assert sorted((e["detail"]["reminder"], e["detail"]["approver"]) for e in mine) == [
            (n, a) for n in (1, 2) for a in approvers]
        deadline = deadline_of(outcomes[pattern].started_at, 3)
        for event in mine:
            assert event["detail"] == {"pattern": pattern, "executionArn": arn, "approver": event["detail"]["approver"],
                                       "request": REQUEST, "deadline": deadline,
                                       "reminder": event["detail"]["reminder"]}


# -- the bench's figures -----------------------------------------------------------------------------


def test_the_bench_measures_a_reminder_round_as_the_readme_states(sfn: Any, either_or: Stack, quorum: Stack) -> None:
    measured = measure_reminder_rounds(sfn, {"either-or": either_or.outputs["StateMachineArn"],
                                             "quorum": quorum.outputs["StateMachineArn"]})
    # (rounds, transitions, PutEvents calls, events, WRU, RRU) per round, every approver pending.
    assert {(r.pattern, r.pending): (r.rounds, r.usage.transitions, r.usage.put_events, r.events,
                                     r.usage.write_units, r.usage.read_units) for r in measured} == {
        ("either-or", 2): (2, 3, 1, 2, 0, 0), ("quorum", 3): (2, 5, 1, 3, 0, 1), ("quorum", 40): (2, 8, 4, 40, 0, 1)}
    assert [round(r.cost * 1000, 4) for r in measured] == [0.077, 0.1281, 0.2401]
    table = _reminder_table(measured)
    text = render([table], "", width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert {cell for row in table.rows for cell in row[1:]} <= set(text.split())


# -- a round that cannot be sent is skipped -------------------------------------------------------


def _named(stack: Stack) -> tuple[str, str]:
    """A fresh execution name and the ARN the execution will have."""
    name = f"reminders-{uuid.uuid4().hex[:10]}"
    return name, stack.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"


@pytest.mark.engine
@pytest.mark.usefixtures("scaled_waits")
@pytest.mark.parametrize(("pattern", "state", "code"), [
    ("either-or", states.EITHER_OR.REMIND, "InternalException"),
    ("quorum", states.QUORUM.REMIND_BATCH, "InternalException"),
    ("quorum", states.QUORUM.READ_ANSWERED, "InternalServerError"),
])
def test_a_round_that_cannot_be_sent_is_skipped_and_the_execution_ends_as_the_rule_says(
        sfn: Any, either_or: Stack, quorum: Stack, faults: FaultInjector, pattern: str, state: str,
        code: str) -> None:
    stack = either_or if pattern == "either-or" else quorum
    name, arn = _named(stack)
    # Every attempt of round 1 fails (the Retry's too); the rule goes once they have.
    rule = faults.add(FaultRule(state_machine_arn=stack.outputs["StateMachineArn"], state=state,
                                fault=Fault.fail(code), attempt=None, execution_arn=arn))
    approvers = ["alice", "bob"] if pattern == "either-or" else THREE
    # Wait states at 1/100: a deadline of 1,500 s lasts 15 s (room for a loaded machine), a round every 2 s.
    start_approval(sfn, stack.outputs["StateMachineArn"], approvers, request=REQUEST, timeout_seconds=1500,
                   reminder_seconds=200, quorum=2 if pattern == "quorum" else None, name=name)
    attempts = 1 + (3 if state != states.QUORUM.READ_ANSWERED else 5)
    faults.wait_fired(state=state, execution_arn=arn, count=attempts, timeout=20)
    faults.remove(rule)
    wait_for_round(sfn, arn, 2)
    tokens = tokens_out(sfn, arn, len(approvers))
    if pattern == "either-or":
        send_answer(sfn, tokens["bob"], "reject")
    else:
        send_answer(sfn, tokens["alice"], "approve")
        wait_until_counted(sfn, arn, "alice")
        send_answer(sfn, tokens["carol"], "approve")
    execution = ended(sfn, arn, timeout=30)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output is not None
    assert (execution.output["outcome"], execution.output["decidedBy"]) == (
        ("REJECTED", "bob") if pattern == "either-or" else ("APPROVED", "carol"))
    events = history_events(sfn, arn)
    by_round = rounds(events)
    if state == states.QUORUM.READ_ANSWERED:
        assert 1 not in by_round  # never read, never sent
    else:
        assert [c.result for c in by_round[1]] == ["TaskFailed"] * attempts
    assert [c.result for c in by_round[2]] == ["TaskSucceeded"]
    assert sorted(by_round[2][0].approvers) == approvers


# -- what the contract promises and the state machines do not yet keep ------------------------------


@pytest.mark.engine
def test_a_slow_round_pushes_neither_the_later_rounds_nor_the_deadline_back(
        sfn: Any, either_or: Stack, faults: FaultInjector) -> None:
    """Round 1's call takes 3 s: the later rounds catch up and the deadline stays at the start + 6 s (rounded up
    to the second); waits relative to each round would have pushed it 3 s back."""
    name, arn = _named(either_or)
    rule = faults.add(FaultRule(state_machine_arn=either_or.outputs["StateMachineArn"],
                                state=states.EITHER_OR.REMIND, fault=Fault.delay(3), execution_arn=arn))
    start_approval(sfn, either_or.outputs["StateMachineArn"], ["alice", "bob"], timeout_seconds=6,
                   reminder_seconds=1, name=name)
    faults.wait_fired(state=states.EITHER_OR.REMIND, execution_arn=arn, count=1, timeout=20)
    faults.remove(rule)  # round 1 alone is slow
    execution = ended(sfn, arn, timeout=30)
    deadline = execution.started_at + timedelta(seconds=6)
    late = [c.number for c in reminder_calls(history_events(sfn, arn)) if c.at >= deadline]
    assert late == [], f"rounds {late} sent after the deadline"
    assert execution.stopped_at is not None
    assert deadline <= execution.stopped_at < deadline + timedelta(seconds=2), "the deadline was not pushed back"


def test_the_most_rounds_of_the_largest_board_keep_the_history_within_step_functions_quota(
        played: dict[str, Played]) -> None:
    """Forty approvers, the rounds measured; at most MAX_ROUNDS rounds (the README's figure) fit the quota."""
    play, twin = played["quorum of 40 silent, 8 s, every 3 s"], played["quorum of 40 silent, 8 s, no reminders"]
    assert len(requests_sent(play.events)) == len(requests_sent(twin.events)) == 40
    per_round = (len(deadline_flow(play.events)) - len(deadline_flow(twin.events))) / len(play.rounds)
    events = len(twin.events) + MAX_ROUNDS * per_round
    assert events <= HISTORY_QUOTA, f"{events:,.0f} history events ({per_round:g} per round)"


@pytest.mark.engine
@pytest.mark.usefixtures("thousandfold_waits")
def test_reminders_that_would_pass_max_rounds_are_spaced_so_that_max_rounds_are_sent(
        sfn: Any, either_or: Stack) -> None:
    """1,002 s with a reminder every second would be 1,001 rounds: rounds every ceil(1,002 / 501) = 2 s instead, so
    500 rounds, the last at 1,000 s (the waits at 1/1000: about 1 s)."""
    execution_input = {"approvers": ["alice", "bob"], "timeoutSeconds": 1002, "reminderSeconds": 1}
    assert check_input("either-or", execution_input) is None
    arn = start_approval(sfn, either_or.outputs["StateMachineArn"], ["alice", "bob"], timeout_seconds=1002,
                         reminder_seconds=1)
    execution = ended(sfn, arn, timeout=90)
    assert execution.output is not None and execution.output["outcome"] == "TIMED_OUT"
    assert list(rounds(history_events(sfn, arn))) == list(range(1, MAX_ROUNDS + 1))

