"""The load variant: many quorum executions answered by all their approvers at the same instant, on one engine
and spread over one engine per core (a process each), on fresh engines and on engines already holding thousands
of executions; every outcome, history and tally item is checked for hangs, lost decisions and wrong outcomes.
Also the heap a finished execution keeps in the engine.
"""

from __future__ import annotations

import gc
import itertools
import json
import multiprocessing
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from earlyexit.approvals import send_at_once, start_approval, wait_for_outcome
from earlyexit.history import history_events, read_execution, requests_sent
from earlyexit.local import Cloud, embedded_cloud
from earlyexit.polling import wait_until
from earlyexit.rules import quorum_outcome
from earlyexit.tools.bench.measure import REQUEST, approvers

__all__ = ["LOAD_IN_FLIGHT", "LOAD_PATIENCE", "LOAD_TIMEOUT_SECONDS", "MEMORY_RUNS", "LoadResult", "combined",
           "retained_bytes", "run_load", "run_load_on_engines"]

# Executions in flight per engine in the load variant. One engine is one Python process: its threads share a
# GIL, so more in flight adds contention, not throughput (docs/benchmark.md has the curve).
LOAD_IN_FLIGHT = 4
PREFILL_CLIENTS = 16  # threads starting the executions an engine holds before a load
LOAD_TIMEOUT_SECONDS = 3_600  # deadline of load executions: a lost decision shows as a hang, not TIMED_OUT
LOAD_PATIENCE = 300.0  # seconds an execution may take to send its requests, and the checks to see every end
MEMORY_RUNS = 100  # executions over which the heap a finished one keeps is measured


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
    expected = quorum_outcome(approvals=decisions.count("approve"), rejections=decisions.count("reject"),
                              approvers=len(names), quorum=quorum)  # everyone answers: it settles
    said = dict(zip(names, decisions, strict=True))
    deciding = listed["approvals"] if expected == "APPROVED" else listed["rejections"]
    wrong = (execution.status != "SUCCEEDED" or output.get("outcome") != expected
             or (output.get("decidedBy") is not None and output["decidedBy"] not in deciding)
             or quorum_outcome(approvals=len(listed["approvals"]), rejections=len(listed["rejections"]),
                               approvers=len(names), quorum=quorum) != expected
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
