"""The bench's tables: what they say, and how they print (a terminal's width, a file, markdown)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from earlyexit.tools.bench.load import LOAD_PATIENCE, LOAD_TIMEOUT_SECONDS, MEMORY_RUNS, LoadResult
from earlyexit.tools.bench.measure import (
    POLL_SECONDS,
    POLL_TRANSITIONS,
    REMINDER_SECONDS,
    REMINDER_TIMEOUT,
    SCALE_RUNS,
    TIMEOUT_CONCURRENCY,
    WAITS,
    Measurement,
    ReminderRound,
    polling_transitions,
)

__all__ = ["FILE_WIDTH", "Table", "print_markdown", "render", "report", "report_width"]

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


def print_markdown(tables: list[Table], footer: str) -> None:
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


FILE_WIDTH = 200  # a file or a pipe without COLUMNS: wide tables, nothing stacked


def report_width(environ: Mapping[str, str], terminal: int | None) -> int:
    """The width to print at: ``COLUMNS`` when it is a positive integer (a pipe, CI), else the terminal's
    (None: not a terminal), else :data:`FILE_WIDTH`."""
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return terminal or FILE_WIDTH
