"""`make bench`: what an approval costs and how fast it ends, measured on the embedded engine.

Every figure comes from real executions: state transitions (states entered), EventBridge
and DynamoDB requests (TaskScheduled events) are read from each execution's history, the
decision latency runs from the deciding SendTaskSuccess call returning to the execution's
stopDate. Costs use the prices in notes/anchors.md; the polling comparison adds the
original samples' polling loops to the measured figures; the load variant answers many
quorum executions at once and counts hangs, lost decisions and wrong outcomes.

    python -m earlyexit.bench [--runs N] [--load N] [--markdown]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from earlyexit.approvals import decide, send_at_once, start_approval, wait_for_outcome, wait_for_requests
from earlyexit.history import Execution, history_events, state_transitions
from earlyexit.local import PATTERNS, Cloud, embedded_cloud

__all__ = ["SCENARIOS", "LoadResult", "Measurement", "Scenario", "Usage", "main", "measure", "polling_transitions",
           "run_load"]

# Prices (notes/anchors.md), in dollars per request.
PER_TRANSITION = 0.025 / 1_000  # Step Functions Standard
PER_EVENT = 1.00 / 1_000_000  # EventBridge custom event
PER_WRITE_UNIT = 0.625 / 1_000_000  # DynamoDB on-demand WRU
PER_READ_UNIT = 0.125 / 1_000_000  # DynamoDB on-demand RRU

# The original samples' polling loop: Pass, Choice, Wait 5 s per pending flow.
POLL_TRANSITIONS = 3
POLL_SECONDS = 5
WAITS = (("1 minute", 60), ("1 hour", 3_600), ("1 day", 86_400))

# Decision latencies are measured one execution at a time: the engine runs in-process under one GIL, and
# even 4 executions in flight multiplied the medians by 5 to 20 on a 2-core machine. Timeout runs mostly
# wait, so several run at once (their deadlines then fire together: deadline -> end is an upper bound).
TIMEOUT_CONCURRENCY = 5
LOAD_WORKERS = 16  # executions in flight in the load variant (8 and 64 were no faster on 2 cores)
LOAD_TIMEOUT_SECONDS = 3_600  # deadline of load executions: a lost decision shows as a hang, not TIMED_OUT
LOAD_PATIENCE = 300.0  # seconds an execution may take to send its requests, and the checks to see every end

APPROVERS = {"either-or": ("alice", "bob"), "quorum": ("alice", "bob", "carol")}
REQUEST = {"item": "laptop", "price": 1499}


@dataclass(frozen=True)
class Scenario:
    """One decision scenario: answers are sent in order, each once the previous one is counted."""

    pattern: str
    title: str
    outcome: str  # the outcome every run must reach
    answers: tuple[tuple[str, str], ...] = ()
    quorum: int | None = None
    timeout_seconds: int = 3_600

    @property
    def approvers(self) -> tuple[str, ...]:
        return APPROVERS[self.pattern]

    @property
    def decides(self) -> bool:
        """Whether an answer (not the deadline) settles the outcome."""
        return self.outcome != "TIMED_OUT"


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("either-or", "approve", "APPROVED", (("alice", "approve"),)),
    Scenario("either-or", "reject", "REJECTED", (("bob", "reject"),)),
    Scenario("either-or", "timeout (1 s)", "TIMED_OUT", timeout_seconds=1),
    Scenario("quorum", "2 of 3 approve", "APPROVED", (("alice", "approve"), ("bob", "approve")), quorum=2),
    Scenario("quorum", "2 of 3 unreachable (2 rejections)", "REJECTED",
             (("alice", "reject"), ("carol", "reject")), quorum=2),
    Scenario("quorum", "3 of 3 approve", "APPROVED",
             (("alice", "approve"), ("bob", "approve"), ("carol", "approve")), quorum=3),
    Scenario("quorum", "1 of 3 approve", "APPROVED", (("bob", "approve"),), quorum=1),
    Scenario("quorum", "timeout (1 s), 1 of 3 needed approvals", "TIMED_OUT", (("alice", "approve"),),
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


def _wait_until_entered(sfn: Any, execution_arn: str, state: str, timeout: float = 30.0) -> None:
    """Poll the history (backing off to 100 ms) until ``state`` is entered."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while not any(e.get("stateEnteredEventDetails", {}).get("name") == state
                  for e in history_events(sfn, execution_arn)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} did not enter {state!r} within {timeout} s")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)


def _play(sfn: Any, state_machine_arn: str, scenario: Scenario) -> Run:
    execution_arn = start_approval(sfn, state_machine_arn, list(scenario.approvers), REQUEST, scenario.quorum,
                                   scenario.timeout_seconds)
    wait_for_requests(sfn, execution_arn, len(scenario.approvers))
    answered: dict[str, float] = {}
    for approver, decision in scenario.answers:
        if answered:  # people answer one after the other: the previous decision is counted first
            previous = scenario.approvers.index(list(answered)[-1]) + 1
            _wait_until_entered(sfn, execution_arn, f"Decision {previous} counted")
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


def measure(sfn: Any, state_machine_arn: str, scenario: Scenario, runs: int, concurrency: int = 1) -> Measurement:
    """Play ``scenario`` once to warm up (not counted: first calls load models and compile expressions), then
    ``runs`` times, ``concurrency`` executions at a time; read each one's figures from its history."""
    _play(sfn, state_machine_arn, scenario)
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, runs))) as pool:
        return Measurement(scenario, list(pool.map(lambda _: _play(sfn, state_machine_arn, scenario), range(runs))))


def polling_transitions(measured: Usage, approver_flows: int, wait_seconds: int) -> float:
    """Transitions of the polling design for a decision after ``wait_seconds``: the measured
    transitions plus, for every approver flow, one Pass-Choice-Wait loop per 5 s waited."""
    return measured.transitions + approver_flows * POLL_TRANSITIONS * math.ceil(wait_seconds / POLL_SECONDS)


# -- load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """N quorum executions answered by all three approvers at once."""

    executions: int
    seconds: float  # first start to the last execution's stopDate
    decided: int  # ended with the right outcome, nothing lost
    hangs: int
    lost_decisions: int
    wrong_outcomes: int
    refused_answers: int  # TaskTimedOut: an answer after the outcome, refused as on AWS
    errors: int  # any other error answering

    @property
    def per_second(self) -> float:
        return self.decided / self.seconds

    @property
    def failures(self) -> int:
        return self.hangs + self.lost_decisions + self.wrong_outcomes + self.errors


@dataclass(frozen=True)
class _Verdict:
    stopped_at: float | None = None  # epoch seconds; None: a hang
    lost: int = 0
    wrong: bool = False


def _check(sfn: Any, ddb: Any, table: str, execution_arn: str, quorum: int, decisions: tuple[str, ...],
           patience: float) -> _Verdict:
    """Wait up to ``patience`` s for the outcome, then compare it with the answers, the history and the tally."""
    execution = wait_for_outcome(sfn, execution_arn, timeout=patience)
    if execution.status == "RUNNING":
        return _Verdict()
    approvers = APPROVERS["quorum"]
    item = ddb.get_item(TableName=table, Key={"executionArn": {"S": execution_arn}},
                        ConsistentRead=True).get("Item", {})
    tally = {kind: set(item.get(kind, {}).get("SS", [])) for kind in ("approvals", "rejections")}
    output = execution.output or {}
    listed = {"approvals": set(output.get("approvals", [])), "rejections": set(output.get("rejections", []))}
    # A decision is recorded once its flow enters "Check quorum N" (its UpdateItem returned).
    recorded = {approvers[int(name.rsplit(" ", 1)[1]) - 1]
                for e in history_events(sfn, execution_arn)
                if (name := e.get("stateEnteredEventDetails", {}).get("name", "")).startswith("Check quorum ")}
    lost = len((recorded | listed["approvals"] | listed["rejections"]) - tally["approvals"] - tally["rejections"])
    expected = "APPROVED" if decisions.count("approve") >= quorum else "REJECTED"
    said = dict(zip(approvers, decisions, strict=True))
    deciding = listed["approvals"] if expected == "APPROVED" else listed["rejections"]
    wrong = (execution.status != "SUCCEEDED" or output.get("outcome") != expected
             or output.get("decidedBy") not in deciding
             or len(deciding) != (quorum if expected == "APPROVED" else len(approvers) + 1 - quorum)
             or any(said[a] != "approve" for a in listed["approvals"] | tally["approvals"])
             or any(said[a] != "reject" for a in listed["rejections"] | tally["rejections"]))
    return _Verdict(execution.stopped_at.timestamp(), lost, wrong)


def _answer(sfn: Any, state_machine_arn: str, quorum: int, decisions: tuple[str, ...]) -> tuple[str, list[str | None]]:
    """Start one execution, wait for its three requests, answer them all at once; returns its ARN and error codes."""
    approvers = APPROVERS["quorum"]
    execution_arn = start_approval(sfn, state_machine_arn, list(approvers), REQUEST, quorum, LOAD_TIMEOUT_SECONDS)
    requested = wait_for_requests(sfn, execution_arn, len(approvers), timeout=LOAD_PATIENCE)
    tokens = {r.approver: r.task_token for r in requested.requests}
    if len(tokens) < len(approvers):
        return execution_arn, []  # never asked everyone: _check reports the hang
    return execution_arn, send_at_once(sfn, [(tokens[a], d) for a, d in zip(approvers, decisions, strict=True)])


def run_load(cloud: Cloud, count: int, workers: int = LOAD_WORKERS) -> LoadResult:
    """Run ``count`` quorum executions, ``workers`` at a time (quorum 1, 2, 3 with every approve/reject mix, in
    turn), each answered by its three approvers at once; then check every outcome."""
    stack = cloud.deploy("quorum", stack_name=f"earlyexit-bench-load-{uuid.uuid4().hex[:8]}")
    sfn, ddb = cloud.client("stepfunctions"), cloud.client("dynamodb")
    mixes = [(q, d) for q in (1, 2, 3) for d in itertools.product(("approve", "reject"), repeat=3)]
    plans = [mixes[i % len(mixes)] for i in range(count)]
    # Warm-up, before the clock: the engine's first service calls load botocore's models; many threads
    # doing that at once thrashed the GIL (once 150 s of system time for 200 executions).
    wait_for_outcome(sfn, _answer(sfn, stack.outputs["StateMachineArn"], *mixes[0])[0])
    began = time.time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        answered = list(pool.map(lambda plan: _answer(sfn, stack.outputs["StateMachineArn"], *plan), plans))
        deadline = time.monotonic() + LOAD_PATIENCE
        verdicts = list(pool.map(lambda done, plan: _check(
            sfn, ddb, stack.outputs["TableName"], done[0], *plan, max(1.0, deadline - time.monotonic())),
            answered, plans))
    codes = [code for _, codes in answered for code in codes]
    ended = [v.stopped_at for v in verdicts if v.stopped_at is not None]
    return LoadResult(
        executions=count, seconds=(max(ended) if ended else time.time()) - began,
        decided=sum(1 for v in verdicts if v.stopped_at is not None and not v.wrong and not v.lost),
        hangs=sum(1 for v in verdicts if v.stopped_at is None), lost_decisions=sum(v.lost for v in verdicts),
        wrong_outcomes=sum(v.wrong for v in verdicts), refused_answers=codes.count("TaskTimedOut"),
        errors=sum(1 for c in codes if c not in (None, "TaskTimedOut")))


# -- report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    title: str
    columns: list[str]  # a leading ">" right-aligns the column
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


def _scenario_table(measurements: list[Measurement], runs: int) -> _Table:
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
    return _Table(
        f"Per execution, measured on the embedded engine ({runs} runs per scenario)",
        ["pattern", "scenario", "outcome", ">transitions", ">PutEvents", ">DynamoDB WRU", ">DynamoDB RRU",
         ">Step Functions $ / 1,000", ">total $ / 1,000", ">decision → end median ms", ">p95 ms",
         ">deadline → end median / p95 ms"],
        rows,
        [("transitions = states entered in the execution's history (what Step Functions Standard bills; a retry "
          "would add one per attempt, none happened); a range in brackets means the runs differed."),
         ("PutEvents, WRU, RRU = TaskScheduled events in the history: putEvents, dynamodb updateItem, getItem. "
          "Assumed: 1 WRU per UpdateItem (the tally item stays under 1 KB), 1 RRU per strongly consistent "
          "GetItem (the item is under 4 KB; an eventually consistent one would be 0.5)."),
         ("$ / 1,000 executions = 1,000 × (transitions × $0.025 / 1,000 + PutEvents × $1.00 / 1e6 "
          "+ WRU × $0.625 / 1e6 + RRU × $0.125 / 1e6); the Step Functions column is the transitions term alone."),
         ("decision → end: from the deciding SendTaskSuccess call returning to the execution's stopDate "
          "(millisecond resolution). Timeouts have no deciding call (n/a); their last column runs from the "
          "deadline (the deadline flow's Wait entered + timeoutSeconds) to stopDate."),
         ("Latency runs: one warm-up execution per scenario (not counted), then decision scenarios one execution "
          f"at a time and timeout scenarios {TIMEOUT_CONCURRENCY} at a time (their deadlines fire together, so "
          "deadline → end is an upper bound), scenarios one after another. The engine runs in-process (moto "
          "with the engine fixes, threads sharing one GIL): this is the workflow's own work on this machine, not "
          "AWS's service latency; with 4 decision executions in flight the medians grew 5 to 20 times.")])


def _polling_table(measurements: list[Measurement]) -> _Table:
    rows = []
    for pattern, title in (("either-or", "approve"), ("quorum", "2 of 3 approve")):
        m = next(m for m in measurements if (m.scenario.pattern, m.scenario.title) == (pattern, title))
        usage, flows = m.usage, len(APPROVERS[pattern])
        for label, seconds in WAITS:
            polled = replace(usage, transitions=polling_transitions(usage, flows, seconds))
            rows.append([f"{pattern} ({title})", label, _count(polled.transitions), _dollars(polled.cost * 1000),
                         _count(usage.transitions), _dollars(usage.cost * 1000), f"{polled.cost / usage.cost:,.0f}×",
                         f"0-{POLL_SECONDS} s late (mean {POLL_SECONDS / 2:g} s)",
                         f"at once; ends {_ms(m.latency_median)} ms later"])
    return _Table(
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


def _load_table(load: LoadResult) -> _Table:
    return _Table(
        f"Load: {load.executions:,} quorum executions, {LOAD_WORKERS} in flight, each answered by all three "
        "approvers at the same instant",
        [">executions", ">wall time s", ">decided / s", ">decided", ">hangs", ">lost decisions", ">wrong outcomes",
         ">other errors", ">late answers refused"],
        [[f"{load.executions:,}", f"{load.seconds:.1f}", f"{load.per_second:.1f}", f"{load.decided:,}",
          str(load.hangs), str(load.lost_decisions), str(load.wrong_outcomes), str(load.errors),
          f"{load.refused_answers:,}"]],
        [(f"Quorum 1, 2 and 3 with every approve/reject mix of the three approvers, in turn. {LOAD_WORKERS} "
          "client threads each start an execution, poll its history (backing off to 250 ms) until its three "
          "requests are out, answer them from three threads released together, and go on to the next one. One "
          "warm-up execution runs before the clock. Wall time runs from the first start to the last stopDate; "
          "decided / s = correctly decided executions / wall time. Every history and tally item is checked "
          "after that."),
         (f"hang: requests not all sent, or no outcome, within {LOAD_PATIENCE:.0f} s (the deadline is "
          f"{LOAD_TIMEOUT_SECONDS} s, so a lost decision cannot hide as TIMED_OUT). lost decision: an approver "
          "the output lists, or whose UpdateItem returned (its flow entered Check quorum N), missing from the "
          "tally item. wrong outcome: not SUCCEEDED with the outcome the answers imply, decidedBy outside the "
          "deciding list, the deciding list not exactly at its threshold, or an approver listed under a decision "
          "they did not send. other errors: SendTaskSuccess failing with anything but TaskTimedOut."),
         ("late answers refused: answers that arrived after another one settled the outcome, refused with "
          "TaskTimedOut as on AWS; not a failure. The bench exits non-zero unless hangs, lost decisions, wrong "
          "outcomes and other errors are all zero.")])


def _print_markdown(tables: list[_Table], footer: str) -> None:
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


def _print_rich(tables: list[_Table], footer: str) -> None:
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    for table in tables:
        rich = RichTable(title=table.title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
        for column in table.columns:
            rich.add_column(column.lstrip(">"), justify="right" if column.startswith(">") else "left")
        for row in table.rows:
            rich.add_row(*row)
        out.print(rich)
        for note in table.notes:
            out.print(f"  • {note}", style="dim")
        out.print()
    out.print(footer)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; 1 if the load variant saw any failure, else 0."""
    parser = argparse.ArgumentParser(prog="python -m earlyexit.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="executions per scenario (default 30)")
    parser.add_argument("--load", type=int, default=1000, help="quorum executions in the load variant (0 skips it)")
    parser.add_argument("--markdown", action="store_true", help="print GitHub-flavoured markdown tables")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.load < 0:
        parser.error("--runs must be at least 1 and --load at least 0")
    began = time.monotonic()
    with embedded_cloud() as cloud:
        sfn = cloud.client("stepfunctions")
        machines = {p: cloud.deploy(p, stack_name=f"earlyexit-bench-{p}").outputs["StateMachineArn"] for p in PATTERNS}
        measurements = []
        for scenario in SCENARIOS:
            print(f"bench: {scenario.pattern} {scenario.title}, {args.runs} runs", file=sys.stderr)
            measurements.append(measure(sfn, machines[scenario.pattern], scenario, args.runs,
                                        1 if scenario.decides else TIMEOUT_CONCURRENCY))
        if args.load:
            print(f"bench: load, {args.load} quorum executions", file=sys.stderr)
        load = run_load(cloud, args.load) if args.load else None
    tables = [_scenario_table(measurements, args.runs), _polling_table(measurements)]
    if load is not None:
        tables.append(_load_table(load))
    footer = (f"Whole benchmark: {time.monotonic() - began:.0f} s "
              f"(python -m earlyexit.bench --runs {args.runs} --load {args.load}).")
    (_print_markdown if args.markdown else _print_rich)(tables, footer)
    return 1 if load is not None and load.failures else 0


if __name__ == "__main__":
    sys.exit(main())
