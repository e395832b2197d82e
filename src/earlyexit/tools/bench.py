"""`make bench`: what an approval costs and how fast it ends, measured on the embedded engine.

Every figure comes from real executions: state transitions (states entered), EventBridge
and DynamoDB requests (TaskScheduled events) are read from each execution's history, the
decision latency runs from the deciding SendTaskSuccess call returning to the execution's
stopDate. Costs use AWS's us-east-1 list prices (https://aws.amazon.com/step-functions/pricing/,
https://aws.amazon.com/eventbridge/pricing/, https://aws.amazon.com/dynamodb/pricing/on-demand/);
the polling comparison adds the original samples' polling loops to the measured figures; the
load variant answers many quorum executions at once, on one engine and spread over one engine
per core (a process each), first on fresh engines and then with thousands of executions already
in each, and counts hangs, lost decisions and wrong outcomes.

    python -m earlyexit.tools.bench [--runs N] [--load N] [--prefill N] [--engines N] [--in-flight N] [--markdown]
"""

from __future__ import annotations

import argparse
import gc
import io
import itertools
import json
import math
import multiprocessing
import os
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from earlyexit import states
from earlyexit.approvals import decide, send_at_once, start_approval, wait_for_outcome, wait_for_requests
from earlyexit.history import Execution, history_events, read_execution, requests_sent, state_transitions
from earlyexit.local import PATTERNS, Cloud, embedded_cloud
from earlyexit.polling import wait_until

__all__ = ["LOAD_IN_FLIGHT", "REMINDED", "SCALE_APPROVERS", "SCENARIOS", "LoadResult", "Measurement", "ReminderRound",
           "Scenario", "Table", "Usage", "approvers", "combined", "main", "measure", "measure_reminder_rounds",
           "polling_transitions", "render", "report", "retained_bytes", "run_load", "run_load_on_engines"]

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
# Executions in flight per engine in the load variant. One engine is one Python process: its threads share a
# GIL, so more in flight adds contention, not throughput (docs/benchmark.md has the curve).
LOAD_IN_FLIGHT = 4
PREFILL_CLIENTS = 16  # threads starting the executions an engine holds before a load
LOAD_TIMEOUT_SECONDS = 3_600  # deadline of load executions: a lost decision shows as a hang, not TIMED_OUT
LOAD_PATIENCE = 300.0  # seconds an execution may take to send its requests, and the checks to see every end
SCALE_APPROVERS = (3, 5, 10, 40)  # quorum sizes whose cost per execution is measured
SCALE_RUNS = 5
MEMORY_RUNS = 100  # executions over which the heap a finished one keeps is measured
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


def _majority(count: int) -> Scenario:
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


# -- load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """N quorum executions, each answered by all its approvers at once, on one engine or several."""

    executions: int
    approvers: int
    in_flight: int  # executions in flight per engine
    already_in_engine: int  # finished executions each engine held before the first start
    first_start: float  # epoch seconds: the first execution started
    last_stop: float  # epoch seconds: the last execution's stopDate
    decided: int  # ended with the right outcome, nothing lost
    hangs: int
    lost_decisions: int
    wrong_outcomes: int
    refused_answers: int  # TaskTimedOut: an answer after the outcome, refused as on AWS
    errors: int  # any other error answering
    engines: int = 1  # engines (processes) the executions were spread over

    @property
    def seconds(self) -> float:
        return self.last_stop - self.first_start

    @property
    def per_second(self) -> float:
        return self.decided / self.seconds

    @property
    def failures(self) -> int:
        return self.hangs + self.lost_decisions + self.wrong_outcomes + self.errors


def combined(results: Sequence[LoadResult]) -> LoadResult:
    """Loads that ran at the same time on separate engines, as one: their counts added, from the first start of
    any to the last stop of any."""
    first = results[0]
    return replace(first, executions=sum(r.executions for r in results), engines=sum(r.engines for r in results),
                   first_start=min(r.first_start for r in results), last_stop=max(r.last_stop for r in results),
                   **{name: sum(getattr(r, name) for r in results) for name in (
                       "decided", "hangs", "lost_decisions", "wrong_outcomes", "refused_answers", "errors")})


def _asked(sfn: Any, execution_arn: str, count: int) -> dict[str, str] | None:
    """Each approver's latest task token once ``count`` approvers have been asked (None before)."""
    tokens = {r.approver: r.task_token for r in requests_sent(history_events(sfn, execution_arn))}
    return tokens if len(tokens) >= count else None


@dataclass(frozen=True)
class _Verdict:
    stopped_at: float | None = None  # epoch seconds; None: a hang
    lost: int = 0
    wrong: bool = False


def _recorded(events: list[dict[str, Any]]) -> set[str]:
    """The approvers whose tally update returned (its UpdateItem task succeeded)."""
    by_id = {e["id"]: e for e in events}
    found = set()
    for event in events:
        if event["type"] != "TaskSucceeded" or event["taskSucceededEventDetails"]["resource"] != "updateItem":
            continue
        scheduled = event
        while scheduled is not None and scheduled["type"] != "TaskScheduled":
            scheduled = by_id.get(scheduled.get("previousEventId", 0))
        if scheduled is not None:
            values = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["ExpressionAttributeValues"]
            found.update(values[":approver"]["SS"])
    return found


def _check(sfn: Any, ddb: Any, table: str, execution_arn: str, plan: tuple[int, tuple[str, ...]],
           names: tuple[str, ...], patience: float) -> _Verdict:
    """Wait up to ``patience`` s for the outcome, then compare it with the answers, the history and the tally."""
    quorum, decisions = plan
    try:
        wait_until(lambda: sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING",
                   timeout=patience, what=f"the outcome of {execution_arn}")
    except TimeoutError:
        return _Verdict()
    execution = read_execution(sfn, execution_arn)
    item = ddb.get_item(TableName=table, Key={"executionArn": {"S": execution_arn}},
                        ConsistentRead=True).get("Item", {})
    tally = {kind: set(item.get(kind, {}).get("SS", [])) for kind in ("approvals", "rejections")}
    output = execution.output or {}
    listed = {"approvals": set(output.get("approvals", [])), "rejections": set(output.get("rejections", []))}
    recorded = _recorded(history_events(sfn, execution_arn))
    lost = len((recorded | listed["approvals"] | listed["rejections"]) - tally["approvals"] - tally["rejections"])
    expected = "APPROVED" if decisions.count("approve") >= quorum else "REJECTED"
    said = dict(zip(names, decisions, strict=True))
    deciding = listed["approvals"] if expected == "APPROVED" else listed["rejections"]
    wrong = (execution.status != "SUCCEEDED" or output.get("outcome") != expected
             or (output.get("decidedBy") is not None and output["decidedBy"] not in deciding)
             or len(deciding) < (quorum if expected == "APPROVED" else len(names) + 1 - quorum)
             or any(said[a] != "approve" for a in listed["approvals"] | tally["approvals"])
             or any(said[a] != "reject" for a in listed["rejections"] | tally["rejections"]))
    return _Verdict(execution.stopped_at.timestamp(), lost, wrong)


def _answer(sfn: Any, state_machine_arn: str, names: tuple[str, ...],
            plan: tuple[int, tuple[str, ...]]) -> tuple[str, list[str | None]]:
    """Start one execution, wait for its requests, answer them all at once; returns its ARN and error codes."""
    quorum, decisions = plan
    execution_arn = start_approval(sfn, state_machine_arn, list(names), request=REQUEST, quorum=quorum,
                                   timeout_seconds=LOAD_TIMEOUT_SECONDS)
    try:
        tokens = wait_until(lambda: _asked(sfn, execution_arn, len(names)), timeout=LOAD_PATIENCE,
                            what=f"{len(names)} approval requests of {execution_arn}", first_pause=0.02,
                            max_pause=0.1)
    except TimeoutError:
        return execution_arn, []  # never asked everyone: _check reports the hang
    return execution_arn, send_at_once(sfn, [(tokens[a], d) for a, d in zip(names, decisions, strict=True)])


def retained_bytes(cloud: Cloud, count: int) -> float:
    """Python heap bytes a finished quorum execution keeps in the engine (its history, its output, what the
    engine indexes), measured with tracemalloc over ``count`` executions answered one at a time."""
    stack = cloud.deploy("quorum", stack_name=f"earlyexit-bench-memory-{uuid.uuid4().hex[:8]}")
    sfn, arn, names = cloud.client("stepfunctions"), stack.outputs["StateMachineArn"], approvers(3)
    wait_for_outcome(sfn, _answer(sfn, arn, names, (2, ("approve",) * 3))[0], timeout=LOAD_PATIENCE)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(count):
            wait_for_outcome(sfn, _answer(sfn, arn, names, (2, ("approve",) * 3))[0], timeout=LOAD_PATIENCE)
        gc.collect()
        grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    return grown / count


def _prefill(sfn: Any, state_machine_arn: str, count: int) -> None:
    """``count`` finished executions of the state machine (refused input: each ends after validation)."""
    def start(_: int) -> str:
        return sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps({"approvers": []}))[
            "executionArn"]

    with ThreadPoolExecutor(max_workers=PREFILL_CLIENTS) as pool:
        started = list(pool.map(start, range(count)))
    for execution_arn in started:
        wait_until(lambda arn=execution_arn: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING",
                   timeout=LOAD_PATIENCE, what=f"the end of {execution_arn}")


def run_load(cloud: Cloud, count: int, *, in_flight: int = LOAD_IN_FLIGHT, approver_count: int = 3,
             already_in_engine: int = 0, first_plan: int = 0,
             when_ready: Callable[[], None] | None = None) -> LoadResult:
    """Run ``count`` quorum executions of ``approver_count`` approvers, ``in_flight`` at a time (every quorum and
    every approve/reject mix in turn, from mix number ``first_plan``), each answered by all its approvers at
    once; then check every outcome. ``already_in_engine`` finished executions of the same state machine are made
    first; ``when_ready`` is called after the warm-up, just before the clock starts."""
    stack = cloud.deploy("quorum", stack_name=f"earlyexit-bench-load-{uuid.uuid4().hex[:8]}")
    sfn, ddb = cloud.client("stepfunctions"), cloud.client("dynamodb")
    arn = stack.outputs["StateMachineArn"]
    names = approvers(approver_count)
    mixes = [(q, d) for q in range(1, approver_count + 1)
             for d in itertools.product(("approve", "reject"), repeat=approver_count)]
    # A spread of mixes, whatever the count.
    plans = [mixes[(i * 7919) % len(mixes)] for i in range(first_plan, first_plan + count)]
    _prefill(sfn, arn, already_in_engine)
    # Warm-up, before the clock: the first calls load botocore's models and compile expressions.
    wait_for_outcome(sfn, _answer(sfn, arn, names, mixes[0])[0], timeout=LOAD_PATIENCE)
    if when_ready is not None:
        when_ready()
    began = time.time()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        answered = list(pool.map(lambda plan: _answer(sfn, arn, names, plan), plans))
        deadline = time.monotonic() + LOAD_PATIENCE
        verdicts = list(pool.map(lambda done, plan: _check(
            sfn, ddb, stack.outputs["TableName"], done[0], plan, names, max(1.0, deadline - time.monotonic())),
            answered, plans))
    codes = [code for _, codes in answered for code in codes]
    ended = [v.stopped_at for v in verdicts if v.stopped_at is not None]
    return LoadResult(
        executions=count, approvers=approver_count, in_flight=in_flight, already_in_engine=already_in_engine,
        first_start=began, last_stop=max(ended) if ended else time.time(),
        decided=sum(1 for v in verdicts if v.stopped_at is not None and not v.wrong and not v.lost),
        hangs=sum(1 for v in verdicts if v.stopped_at is None), lost_decisions=sum(v.lost for v in verdicts),
        wrong_outcomes=sum(v.wrong for v in verdicts), refused_answers=codes.count("TaskTimedOut"),
        errors=sum(1 for c in codes if c not in (None, "TaskTimedOut")))


def _load_on_own_engine(count: int, in_flight: int, already_in_engine: int, first_plan: int,
                        ready: threading.Barrier) -> LoadResult:
    """:func:`run_load` on an engine of this process's own, starting the clock once every engine is ready."""
    with embedded_cloud() as cloud:
        return run_load(cloud, count, in_flight=in_flight, already_in_engine=already_in_engine,
                        first_plan=first_plan, when_ready=lambda: ready.wait(timeout=LOAD_PATIENCE))


def run_load_on_engines(count: int, *, engines: int, in_flight: int = LOAD_IN_FLIGHT,
                        already_in_engine: int = 0) -> LoadResult:
    """:func:`run_load` spread over ``engines`` embedded engines, each in a process of its own (one Python process
    uses one core at a time, whatever its threads), all starting together; ``already_in_engine`` is per engine."""
    context = multiprocessing.get_context("spawn")  # the engine's threads must not be forked
    shares = [count // engines + (1 if i < count % engines else 0) for i in range(engines)]
    with context.Manager() as manager, ProcessPoolExecutor(max_workers=engines, mp_context=context) as pool:
        ready = manager.Barrier(engines)
        runs = [pool.submit(_load_on_own_engine, share, in_flight, already_in_engine, sum(shares[:i]), ready)
                for i, share in enumerate(shares)]
        futures.wait(runs, timeout=4 * LOAD_PATIENCE, return_when=futures.FIRST_EXCEPTION)
        if not all(run.done() and run.exception() is None for run in runs):
            ready.abort()  # the other engines stop waiting for the one that failed
        return combined([run.result(timeout=0) for run in runs])


# -- report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A report table: a title, column headers (a leading ">" right-aligns), rows of text cells and notes."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str]


def _dollars(amount: float) -> str:
    return f"${amount:,.4f}" if amount < 100 else f"${amount:,.2f}"


def _count(value: float) -> str:
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _spread(values: list[float]) -> str:
    low, high = min(values), max(values)
    return "" if low == high else f" ({_count(low)}-{_count(high)})"


def _scenario_rows(measurements: list[Measurement]) -> list[list[str]]:
    rows = []
    for m in measurements:
        usage, decides = m.usage, m.scenario.decides
        rows.append([
            m.scenario.pattern, m.scenario.title, m.scenario.outcome,
            _count(usage.transitions) + _spread([r.usage.transitions for r in m.runs]),
            _count(usage.put_events), _count(usage.write_units), _count(usage.read_units),
            _dollars(usage.step_functions_cost * 1000), _dollars(usage.cost * 1000),
            _ms(m.latency_median) if decides else "n/a", _ms(m.latency_p95) if decides else "n/a",
            "" if decides else f"{_ms(m.latency_median)} / {_ms(m.latency_p95)}",
        ])
    return rows


_USAGE_COLUMNS = [">transitions", ">PutEvents", ">DynamoDB WRU", ">DynamoDB RRU", ">Step Functions $ / 1,000",
                  ">total $ / 1,000", ">decision → end median ms", ">p95 ms"]


def _scenario_table(measurements: list[Measurement], runs: int) -> Table:
    return Table(
        f"Per execution, measured on the embedded engine ({runs} runs per scenario)",
        ["pattern", "scenario", "outcome", *_USAGE_COLUMNS, ">deadline → end median / p95 ms"],
        _scenario_rows(measurements),
        [("transitions = states entered in the execution's history (what Step Functions Standard bills; a retry "
          "would add one per attempt, none happened); a range in brackets means the runs differed."),
         ("PutEvents, WRU, RRU = TaskScheduled events in the history: putEvents, dynamodb updateItem, getItem. "
          "Assumed: 1 WRU per UpdateItem (a tally item of 3 approvers and their decision records, without "
          "comments, stays under 1 KB), 1 RRU per strongly consistent GetItem (the item is under 4 KB; an "
          "eventually consistent one would be 0.5)."),
         ("$ / 1,000 executions = 1,000 × (transitions × $0.025 / 1,000 + PutEvents × $1.00 / 1e6 "
          "+ WRU × $0.625 / 1e6 + RRU × $0.125 / 1e6); the Step Functions column is the transitions term alone."),
         ("decision → end: from the deciding SendTaskSuccess call returning to the execution's stopDate "
          "(millisecond resolution). Timeouts have no deciding call (n/a); their last column runs from the "
          "deadline (the deadline flow's Wait entered + timeoutSeconds) to stopDate."),
         ("Latency runs: one warm-up execution per scenario (not counted), then decision scenarios one execution "
          f"at a time and timeout scenarios {TIMEOUT_CONCURRENCY} at a time (their deadlines fire together, so "
          "deadline → end is an upper bound), scenarios one after another. The engine runs in-process (moto "
          "with the engine fixes, threads sharing one GIL): this is the workflow's own work on this machine, not "
          "AWS's service latency.")])


def _scale_table(measurements: list[Measurement]) -> Table:
    rows = [[str(len(m.scenario.approvers)), str(m.scenario.quorum), *_scenario_rows([m])[0][3:11]]
            for m in measurements]
    return Table(
        f"Quorum by number of approvers: a majority approves, one after the other ({SCALE_RUNS} runs each)",
        [">approvers", ">quorum", *_USAGE_COLUMNS], rows,
        [("Same figures and formulas as the first table; each execution asks every approver (one PutEvents each) "
          "and records each decision until the quorum is met (one UpdateItem each, counted as 1 WRU)."),
         ("DynamoDB bills an UpdateItem 1 WRU per KB of the larger of the item before and after it: with the "
          "decision records, a large quorum's tally item passes 1 KB (40 approvers: after about ten decisions "
          "without comments), so its later writes cost 2 WRU or more; docs/benchmark.md has the sizes.")])


def _reminder_table(rounds: list[ReminderRound]) -> Table:
    rows = [[r.pattern, str(r.pending), _count(r.usage.transitions), _count(r.usage.put_events), _count(r.events),
             _count(r.usage.read_units), _dollars(r.usage.step_functions_cost * 1000), _dollars(r.cost * 1000)]
            for r in rounds]
    return Table(
        "Per reminder round (reminderSeconds), every approver pending, measured on the embedded engine",
        ["pattern", ">approvers reminded", ">transitions", ">PutEvents calls", ">events", ">DynamoDB RRU",
         ">Step Functions $ / 1,000 rounds", ">total $ / 1,000 rounds"],
        rows,
        [(f"Each figure is an execution nobody answers (deadline {REMINDER_TIMEOUT} s, a round every "
          f"{REMINDER_SECONDS} s, so {rounds[0].rounds if rounds else 0} rounds) less its twin without "
          "reminderSeconds, divided by its rounds; every count is read from the two histories."),
         ("either-or: Wait, Choice and one PutEvents call with an event per approver (3 transitions). quorum: "
          "Wait, Choice, a strongly consistent GetItem of the tally, the Map, and one PutEvents call per ten "
          "pending approvers (4 + ⌈p / 10⌉ transitions, p events); only those who have not answered are "
          "reminded, so a round with p pending costs the row of p."),
         ("$ / 1,000 rounds = 1,000 × (transitions × $0.025 / 1,000 + events × $1.00 / 1e6 + RRU × $0.125 / 1e6): "
          "EventBridge bills each event, whatever the calls. 1 RRU per read while the tally item is under 4 KB "
          "(comments of the decision record can make it larger: 1 RRU per 4 KB)."),
         ("Without reminderSeconds an execution has no rounds; one that times out enters the Choice "
          "\"Remind or end\" once, one transition more than before reminders; a decided one costs the same.")])


def _polling_table(measurements: list[Measurement]) -> Table:
    rows = []
    for pattern, title in (("either-or", "approve"), ("quorum", "2 of 3 approve")):
        m = next(m for m in measurements if (m.scenario.pattern, m.scenario.title) == (pattern, title))
        usage, flows = m.usage, len(m.scenario.approvers)
        for label, seconds in WAITS:
            polled = replace(usage, transitions=polling_transitions(usage, flows, seconds))
            rows.append([f"{pattern} ({title})", label, _count(polled.transitions), _dollars(polled.cost * 1000),
                         _count(usage.transitions), _dollars(usage.cost * 1000), f"{polled.cost / usage.cost:,.0f}×",
                         f"0-{POLL_SECONDS} s late (mean {POLL_SECONDS / 2:g} s)",
                         f"at once; ends {_ms(m.latency_median)} ms later"])
    return Table(
        "The original samples' polling design against callbacks, by how long the decision takes",
        ["pattern (scenario)", "decision after", ">polling transitions", ">polling $ / 1,000",
         ">callback transitions", ">callback $ / 1,000", ">polling ÷ callback", "polling notices it",
         "callback notices it"],
        rows,
        [(f"polling transitions = measured transitions + A × {POLL_TRANSITIONS} × ⌈T / {POLL_SECONDS} s⌉, "
          "where T is the wait and A the approver flows (either-or 2, quorum 3): while it waits, every approver "
          f"flow of the samples loops Pass → Choice → Wait {POLL_SECONDS} s. The timeout flow is a single Wait "
          "state (1 transition) in both designs, and the rest (start, validation, the Parallel, the deciding "
          "flow's exit, the output, the same PutEvents and DynamoDB requests) is taken from the measured callback "
          "figures, which flatters the samples (their quorum also PutItems and GetItems per decision). polling "
          "$ / 1,000 is the same price formula applied to those figures."),
         ("callback figures are the measured ones: a .waitForTaskToken task costs nothing while it waits, so "
          "they do not depend on T."),
         (f"A poll notices a decision at its next check, up to {POLL_SECONDS} s later; a callback resumes the "
          "flow when SendTaskSuccess arrives, and the execution ends the measured median decision → end later.")])


def _load_table(loads: list[LoadResult], retained: float | None) -> Table:
    rows = [[str(load.engines), f"{load.executions:,}", f"{load.already_in_engine:,}", f"{load.seconds:.1f}",
             f"{load.per_second:.1f}", f"{load.decided:,}", str(load.hangs), str(load.lost_decisions),
             str(load.wrong_outcomes), str(load.errors), f"{load.refused_answers:,}"] for load in loads]
    in_flight = loads[0].in_flight
    return Table(
        f"Load: quorum executions of {loads[0].approvers} approvers, {in_flight} in flight per engine, each "
        f"answered by all its approvers at the same instant ({os.cpu_count()} cores)",
        [">engines", ">executions", ">already in each engine", ">wall time s", ">decided / s", ">decided", ">hangs",
         ">lost decisions", ">wrong outcomes", ">other errors", ">late answers refused"],
        rows,
        [("engines: embedded engines the executions are spread over, each in a Python process of its own (the "
          "threads of one process share one GIL, so one engine uses one core at a time), all starting their "
          "clocks together."),
         (f"Every quorum from 1 to {loads[0].approvers} with every approve/reject mix of the approvers, spread "
          f"over the executions. In each engine's process, {in_flight} client threads each start an execution, "
          "poll its history (from 20 ms, backing off to 100 ms) until its requests are out, answer them from "
          "threads released together, and go on to the next one. One warm-up execution runs before the clock. "
          "Wall time runs from the first start to the last stopDate; decided / s = correctly decided executions "
          "/ wall time. Every history and tally item is checked after that."),
         ("already in each engine: finished executions of the same state machine made before the clock (input "
          "refused at validation), so lookups by execution ARN and task token meet a full engine."),
         (f"hang: requests not all sent, or no outcome, within {LOAD_PATIENCE:.0f} s (the deadline is "
          f"{LOAD_TIMEOUT_SECONDS} s, so a lost decision cannot hide as TIMED_OUT). lost decision: an approver "
          "the output lists, or whose UpdateItem returned, missing from the tally item. wrong outcome: not "
          "SUCCEEDED with the outcome the answers imply, decidedBy neither null nor on the winning side, "
          "the deciding list short of its threshold, or an approver listed under a decision they did not send. "
          "other errors: SendTaskSuccess failing with anything but TaskTimedOut."),
         ("late answers refused: answers that arrived after another one settled the outcome, refused with "
          "TaskTimedOut as on AWS; not a failure. The bench exits non-zero unless hangs, lost decisions, wrong "
          "outcomes and other errors are all zero."),
         *([(f"Memory: a finished quorum execution (3 approvers) keeps {retained / 1024:,.0f} KiB of Python heap "
             "in the engine (its history, raw and encoded, its output, its task tokens), measured with tracemalloc "
             f"over {MEMORY_RUNS} executions; embedded_cloud keeps at most 10,000 finished executions per account "
             "and region (max_finished_executions), the oldest dropped first.")] if retained is not None else [])])


def report(measurements: list[Measurement], scale: list[Measurement], loads: list[LoadResult], *,
           runs: int, retained: float | None = None, reminders: list[ReminderRound] | None = None) -> list[Table]:
    """The bench's tables: the scenarios, quorum by number of approvers, (with ``reminders``) a reminder round,
    polling against callbacks, the loads (with ``retained``, the heap bytes a finished execution keeps)."""
    tables = [_scenario_table(measurements, runs), _scale_table(scale),
              *([_reminder_table(reminders)] if reminders else []), _polling_table(measurements)]
    return tables + [_load_table(loads, retained)] if loads else tables


def _print_markdown(tables: list[Table], footer: str) -> None:
    for table in tables:
        print(f"### {table.title}\n")
        print("| " + " | ".join(c.lstrip(">") for c in table.columns) + " |")
        print("|" + "|".join("---:" if c.startswith(">") else "---" for c in table.columns) + "|")
        for row in table.rows:
            print("| " + " | ".join(row) + " |")
        print()
        for note in table.notes:
            print(f"- {note}")
        print()
    print(footer)


def _needed_width(table: Table) -> int:
    """The narrowest the table can be with every cell's words whole (SIMPLE_HEAD: 3 columns of padding)."""
    widths = [max(len(word) for cell in [column.lstrip(">"), *(row[i] for row in table.rows)]
                  for word in (cell.split() or [""])) for i, column in enumerate(table.columns)]
    return sum(widths) + 3 * len(widths) + 1


def _rich_table(table: Table) -> RichTable:
    rich = RichTable(title=table.title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    for column in table.columns:
        rich.add_column(column.lstrip(">"), justify="right" if column.startswith(">") else "left",
                        overflow="fold")
    for row in table.rows:
        rich.add_row(*row)
    return rich


def _stacked(table: Table) -> list[RichTable]:
    """One small two-column table per row (label, value): what a table too wide for the screen becomes."""
    labelled = [i for i, c in enumerate(table.columns) if not c.startswith(">")] or [0]
    stacked = []
    for row in table.rows:
        record = RichTable(title=" · ".join(row[i] for i in labelled if row[i]), title_justify="left",
                           title_style="bold", box=None, show_header=False, padding=(0, 1, 0, 2))
        record.add_column(overflow="fold")
        record.add_column(justify="right", overflow="fold")
        for i, column in enumerate(table.columns):
            if i not in labelled and row[i]:
                record.add_row(column.lstrip(">"), row[i])
        stacked.append(record)
    return stacked


def render(tables: list[Table], footer: str, *, width: int) -> str:
    """The tables as text ``width`` columns wide: a table that cannot fit with every number whole is stacked,
    one block per row."""
    out = Console(file=io.StringIO(), width=width, highlight=False, color_system=None, soft_wrap=False)
    for table in tables:
        if _needed_width(table) <= width:
            out.print(_rich_table(table))
        else:
            out.print(table.title, style="bold")
            for record in _stacked(table):
                out.print(record)
        for note in table.notes:
            out.print(f"  • {note}", style="dim")
        out.print()
    out.print(footer)
    return out.file.getvalue()  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; 1 if the load variant saw any failure, else 0."""
    parser = argparse.ArgumentParser(prog="python -m earlyexit.tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="executions per scenario (default 30)")
    parser.add_argument("--load", type=int, default=1000, help="quorum executions in the load variant (0 skips it)")
    parser.add_argument("--prefill", type=int, default=5000,
                        help="finished executions in the engine before the second load (default 5000; 0 skips it)")
    parser.add_argument("--engines", type=int, default=os.cpu_count() or 1,
                        help="engines (processes) the load is also spread over, besides one (default: the cores)")
    parser.add_argument("--in-flight", type=int, default=LOAD_IN_FLIGHT,
                        help=f"executions in flight per engine in the loads (default {LOAD_IN_FLIGHT})")
    parser.add_argument("--markdown", action="store_true", help="print GitHub-flavoured markdown tables")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.load < 0 or args.prefill < 0 or args.engines < 1 or args.in_flight < 1:
        parser.error("--runs, --engines and --in-flight must be at least 1, --load and --prefill at least 0")
    began = time.monotonic()
    with embedded_cloud() as cloud:
        sfn = cloud.client("stepfunctions")
        machines = {p: cloud.deploy(p, stack_name=f"earlyexit-bench-{p}").outputs["StateMachineArn"] for p in PATTERNS}
        measurements, scale = [], []
        for scenario in SCENARIOS:
            print(f"bench: {scenario.pattern} {scenario.title}, {args.runs} runs", file=sys.stderr)
            measurements.append(measure(sfn, machines[scenario.pattern], scenario, args.runs,
                                        concurrency=1 if scenario.decides else TIMEOUT_CONCURRENCY))
        for count in SCALE_APPROVERS:
            print(f"bench: quorum of {count} approvers, {SCALE_RUNS} runs", file=sys.stderr)
            scale.append(measure(sfn, machines["quorum"], _majority(count), SCALE_RUNS))
        print(f"bench: a reminder round of {', '.join(f'{p} ({n})' for p, n in REMINDED)}", file=sys.stderr)
        reminders = measure_reminder_rounds(sfn, machines)
        retained = None
        if args.load:
            print(f"bench: memory, {MEMORY_RUNS} executions", file=sys.stderr)
            retained = retained_bytes(cloud, MEMORY_RUNS)
    loads = []
    for engines in sorted({1, args.engines}) if args.load else []:
        for prefill in (0, args.prefill) if args.prefill else (0,):
            print(f"bench: load, {args.load} quorum executions on {engines} engine(s)"
                  + (f" holding {prefill} others each" if prefill else ""), file=sys.stderr)
            loads.append(run_load_on_engines(args.load, engines=engines, in_flight=args.in_flight,
                                             already_in_engine=prefill))
    tables = report(measurements, scale, loads, runs=args.runs, retained=retained if loads else None,
                    reminders=reminders)
    footer = (f"Whole benchmark: {time.monotonic() - began:.0f} s on {os.cpu_count()} cores "
              f"(python -m earlyexit.tools.bench --runs {args.runs} --load {args.load} --prefill {args.prefill} "
              f"--engines {args.engines} --in-flight {args.in_flight}).")
    if args.markdown:
        _print_markdown(tables, footer)
    else:
        width = Console().width if sys.stdout.isatty() else 200
        print(render(tables, footer, width=width), end="")
    return 1 if any(load.failures for load in loads) else 0


if __name__ == "__main__":
    sys.exit(main())
