"""The figures of one approval, read from real executions on the embedded engine: state transitions (states
entered), EventBridge and DynamoDB requests (TaskScheduled events), the decision latency (from the deciding
SendTaskSuccess call returning to the execution's stopDate), a reminder round, and the original samples'
polling loop added to the measured figures.

Costs use AWS's us-east-1 list prices (https://aws.amazon.com/step-functions/pricing/,
https://aws.amazon.com/eventbridge/pricing/, https://aws.amazon.com/dynamodb/pricing/on-demand/).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from earlyexit import states
from earlyexit.approvals import decide, start_approval, wait_for_outcome, wait_for_requests
from earlyexit.history import Execution, history_events, state_transitions
from earlyexit.polling import wait_until

__all__ = ["PER_EVENT", "PER_READ_UNIT", "PER_TRANSITION", "PER_WRITE_UNIT", "POLL_SECONDS", "POLL_TRANSITIONS",
           "REMINDED", "REMINDER_SECONDS", "REMINDER_TIMEOUT", "REQUEST", "SCALE_APPROVERS", "SCALE_RUNS", "SCENARIOS",
           "TIMEOUT_CONCURRENCY", "WAITS", "Measurement", "ReminderRound", "Run", "Scenario", "Usage", "approvers",
           "majority", "measure", "measure_reminder_rounds", "polling_transitions"]

# us-east-1 list prices, in dollars per request.
PER_TRANSITION = 0.025 / 1_000  # Step Functions Standard: $0.025 per 1,000 state transitions
PER_EVENT = 1.00 / 1_000_000  # EventBridge: $1.00 per million custom events
PER_WRITE_UNIT = 0.625 / 1_000_000  # DynamoDB on-demand: $0.625 per million write request units
PER_READ_UNIT = 0.125 / 1_000_000  # DynamoDB on-demand: $0.125 per million read request units

# The original samples' polling loop: Pass, Choice, Wait 5 s per pending flow.
POLL_TRANSITIONS = 3
POLL_SECONDS = 5
WAITS = (("1 minute", 60), ("1 hour", 3_600), ("1 day", 86_400))

# Decision latencies are measured one execution at a time: the engine runs in-process, its threads share one
# GIL with the client's, and executions in flight together measure contention, not the workflow. Timeout runs
# mostly wait, so several run at once (their deadlines then fire together: deadline -> end is an upper bound).
TIMEOUT_CONCURRENCY = 5
SCALE_APPROVERS = (3, 5, 10, 40)  # quorum sizes whose cost per execution is measured
SCALE_RUNS = 5
# Reminder rounds are measured on executions nobody answers (every approver pending), a deadline of
# REMINDER_TIMEOUT s with a round every REMINDER_SECONDS s, each beside its twin without reminderSeconds.
REMINDED = (("either-or", 2), ("quorum", 3), ("quorum", 40))  # (pattern, approvers)
REMINDER_TIMEOUT = 3
REMINDER_SECONDS = 1

_NAMES = ("alice", "bob", "carol", "dave", "erin")
REQUEST = {"item": "laptop", "price": 1499}


def approvers(count: int) -> tuple[str, ...]:
    """``count`` distinct approver names (alice, bob, carol, dave, erin, then approver-6 ...)."""
    return tuple(_NAMES[i] if i < len(_NAMES) else f"approver-{i + 1}" for i in range(count))


@dataclass(frozen=True)
class Scenario:
    """One decision scenario: answers are sent in order, each once the previous one is counted."""

    pattern: str
    title: str
    outcome: str  # the outcome every run must reach
    approvers: tuple[str, ...]
    answers: tuple[tuple[str, str], ...] = ()
    quorum: int | None = None
    timeout_seconds: int = 3_600

    @property
    def decides(self) -> bool:
        """Whether an answer (not the deadline) settles the outcome."""
        return self.outcome != "TIMED_OUT"


def majority(count: int) -> Scenario:
    quorum = count // 2 + 1
    names = approvers(count)
    return Scenario("quorum", f"{quorum} of {count} approve", "APPROVED", names,
                    tuple((a, "approve") for a in names[:quorum]), quorum=quorum)


_TWO, _THREE = approvers(2), approvers(3)
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("either-or", "approve", "APPROVED", _TWO, (("alice", "approve"),)),
    Scenario("either-or", "reject", "REJECTED", _TWO, (("bob", "reject"),)),
    Scenario("either-or", "timeout (1 s)", "TIMED_OUT", _TWO, timeout_seconds=1),
    Scenario("quorum", "2 of 3 approve", "APPROVED", _THREE, (("alice", "approve"), ("bob", "approve")), quorum=2),
    Scenario("quorum", "2 of 3 unreachable (2 rejections)", "REJECTED", _THREE,
             (("alice", "reject"), ("carol", "reject")), quorum=2),
    Scenario("quorum", "3 of 3 approve", "APPROVED", _THREE,
             (("alice", "approve"), ("bob", "approve"), ("carol", "approve")), quorum=3),
    Scenario("quorum", "1 of 3 approve", "APPROVED", _THREE, (("bob", "approve"),), quorum=1),
    Scenario("quorum", "timeout (1 s), 1 of 3 needed approvals", "TIMED_OUT", _THREE, (("alice", "approve"),),
             quorum=3, timeout_seconds=1),
)


@dataclass(frozen=True)
class Usage:
    """Billed requests of one execution, or the mean over several."""

    transitions: float
    put_events: float
    write_units: float
    read_units: float

    @classmethod
    def of(cls, events: list[dict[str, Any]]) -> Usage:
        """Read from a history: states entered; PutEvents, UpdateItem (1 WRU) and GetItem tasks scheduled
        (1 RRU if strongly consistent, else 0.5); each retry is scheduled, so it counts."""
        tasks = [e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"]
        dynamodb = [t for t in tasks if t["resourceType"] == "dynamodb"]
        return cls(
            transitions=state_transitions(events),
            put_events=sum(1 for t in tasks if t["resourceType"] == "events" and t["resource"].startswith("putEvents")),
            write_units=sum(1 for t in dynamodb if t["resource"] in ("putItem", "updateItem", "deleteItem")),
            read_units=sum(1 if json.loads(t["parameters"]).get("ConsistentRead") else 0.5
                           for t in dynamodb if t["resource"] == "getItem"),
        )

    @classmethod
    def mean(cls, usages: Sequence[Usage]) -> Usage:
        return cls(*(statistics.fmean(getattr(u, f) for u in usages)
                     for f in ("transitions", "put_events", "write_units", "read_units")))

    @property
    def step_functions_cost(self) -> float:
        """Dollars per execution for state transitions."""
        return self.transitions * PER_TRANSITION

    @property
    def cost(self) -> float:
        """Dollars per execution: transitions + PutEvents + DynamoDB WRU + RRU."""
        return (self.step_functions_cost + self.put_events * PER_EVENT + self.write_units * PER_WRITE_UNIT
                + self.read_units * PER_READ_UNIT)


@dataclass(frozen=True)
class Run:
    """One measured execution."""

    execution: Execution
    usage: Usage
    since: float  # epoch seconds: the deciding SendTaskSuccess returned, or (timeouts) the deadline
    latency: float  # seconds from ``since`` to the execution's stopDate


@dataclass(frozen=True)
class Measurement:
    """A scenario's runs and their figures."""

    scenario: Scenario
    runs: list[Run]

    @property
    def usage(self) -> Usage:
        return Usage.mean([r.usage for r in self.runs])

    @property
    def latency_median(self) -> float:
        return statistics.median(r.latency for r in self.runs)

    @property
    def latency_p95(self) -> float:
        """Nearest-rank 95th percentile."""
        ordered = sorted(r.latency for r in self.runs)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


def _counted(sfn: Any, execution_arn: str) -> int:
    """How many decisions the quorum's tally has recorded (its flows entered the check)."""
    return sum(1 for e in history_events(sfn, execution_arn)
               if (e.get("stateEnteredEventDetails") or {}).get("name") == states.QUORUM.CHECK)


def _play(sfn: Any, state_machine_arn: str, scenario: Scenario) -> Run:
    execution_arn = start_approval(sfn, state_machine_arn, list(scenario.approvers), request=REQUEST,
                                   quorum=scenario.quorum, timeout_seconds=scenario.timeout_seconds)
    wait_for_requests(sfn, execution_arn, len(scenario.approvers), timeout=60)
    # Every flow waits before anyone answers: the deadline flow too (on AWS its Wait is entered at once).
    wait_until(lambda: any(e["type"] == "WaitStateEntered" for e in history_events(sfn, execution_arn)), timeout=60,
               what=f"the deadline flow of {execution_arn}")
    answered: dict[str, float] = {}
    for approver, decision in scenario.answers:
        if answered and scenario.pattern == "quorum":  # people answer one after the other
            wait_until(lambda: _counted(sfn, execution_arn) >= len(answered), timeout=30,
                       what=f"{len(answered)} decisions counted in {execution_arn}")
        decide(sfn, execution_arn, approver, decision)
        answered[approver] = time.time()
    execution = wait_for_outcome(sfn, execution_arn, timeout=scenario.timeout_seconds + 60)
    output = execution.output or {}
    counted = (sorted(output.get("approvals", [])), sorted(output.get("rejections", [])))
    expected = tuple(sorted(a for a, d in scenario.answers if d == kind) for kind in ("approve", "reject"))
    if (output.get("outcome"), counted) != (scenario.outcome, expected):
        raise RuntimeError(f"{scenario.pattern} {scenario.title!r}: {execution_arn} ended {execution.status} "
                           f"{output}, expected {scenario.outcome} counting every answer")
    events = history_events(sfn, execution_arn)
    decided_by = output["decidedBy"]
    if decided_by is not None:
        start = answered[decided_by]
    else:  # the deadline: the deadline flow's Wait entered, plus timeoutSeconds
        waited = next(e for e in events if e["type"] == "WaitStateEntered")
        start = waited["timestamp"].timestamp() + scenario.timeout_seconds
    return Run(execution, Usage.of(events), start, execution.stopped_at.timestamp() - start)


def measure(sfn: Any, state_machine_arn: str, scenario: Scenario, runs: int, *, concurrency: int = 1) -> Measurement:
    """Play ``scenario`` once to warm up (not counted: first calls load models and compile expressions), then
    ``runs`` times, ``concurrency`` executions at a time; read each one's figures from its history."""
    _play(sfn, state_machine_arn, scenario)
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, runs))) as pool:
        return Measurement(scenario, list(pool.map(lambda _: _play(sfn, state_machine_arn, scenario), range(runs))))


@dataclass(frozen=True)
class ReminderRound:
    """What one reminder round of an execution costs, every approver pending."""

    pattern: str
    pending: int  # approvers reminded in each round
    rounds: int  # rounds the measured execution sent
    usage: Usage  # per round: transitions, PutEvents calls, WRU, RRU
    events: float  # per round: ApprovalReminder events (EventBridge bills events, not calls)

    @property
    def cost(self) -> float:
        """Dollars per round: transitions + events + RRU."""
        return self.usage.step_functions_cost + self.events * PER_EVENT + self.usage.read_units * PER_READ_UNIT


def _events_put(events: list[dict[str, Any]]) -> int:
    """Events the execution's PutEvents tasks put (each call's entries)."""
    return sum(len(json.loads(e["taskScheduledEventDetails"]["parameters"]).get("Entries") or [])
               for e in events if e["type"] == "TaskScheduled"
               and e["taskScheduledEventDetails"]["resourceType"] == "events")


def _reminder_numbers(events: list[dict[str, Any]]) -> set[int]:
    """The rounds (``detail.reminder``) of the ApprovalReminder events the execution's tasks put."""
    numbers = set()
    for event in events:
        if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resource"] == "putEvents":
            for entry in json.loads(event["taskScheduledEventDetails"]["parameters"]).get("Entries") or []:
                detail = entry.get("Detail")
                detail = json.loads(detail) if isinstance(detail, str) else detail
                if entry.get("DetailType") == "ApprovalReminder" and isinstance(detail, dict):
                    numbers.add(int(detail["reminder"]))
    return numbers


def measure_reminder_rounds(sfn: Any, machines: dict[str, str]) -> list[ReminderRound]:
    """One round's figures for each of :data:`REMINDED`: an execution nobody answers with reminderSeconds, less
    its twin without, divided by its rounds; every count read from the two histories. All run at once."""
    def play(pattern: str, count: int, reminder_seconds: int | None) -> list[dict[str, Any]]:
        arn = start_approval(sfn, machines[pattern], list(approvers(count)), request=REQUEST,
                             quorum=count // 2 + 1 if pattern == "quorum" else None,
                             timeout_seconds=REMINDER_TIMEOUT, reminder_seconds=reminder_seconds)
        wait_for_outcome(sfn, arn, timeout=REMINDER_TIMEOUT + 60)
        return history_events(sfn, arn)

    plays = [(pattern, count, seconds) for pattern, count in REMINDED for seconds in (REMINDER_SECONDS, None)]
    with ThreadPoolExecutor(max_workers=len(plays)) as pool:
        histories = list(pool.map(lambda p: play(*p), plays))
    measured = []
    for (pattern, count), with_reminders, without in zip(REMINDED, histories[::2], histories[1::2], strict=True):
        rounds = len(_reminder_numbers(with_reminders))
        more, base = Usage.of(with_reminders), Usage.of(without)
        usage = Usage(*((getattr(more, f) - getattr(base, f)) / rounds
                        for f in ("transitions", "put_events", "write_units", "read_units")))
        measured.append(ReminderRound(pattern, count, rounds, usage,
                                      (_events_put(with_reminders) - _events_put(without)) / rounds))
    return measured


def polling_transitions(measured: Usage, approver_flows: int, wait_seconds: int) -> float:
    """Transitions of the polling design for a decision after ``wait_seconds``: the measured
    transitions plus, for every approver flow, one Pass-Choice-Wait loop per 5 s waited."""
    return measured.transitions + approver_flows * POLL_TRANSITIONS * math.ceil(wait_seconds / POLL_SECONDS)
