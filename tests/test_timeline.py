"""Timelines at 80 columns: lines wrap between words, numbers and execution ids are never cut,
and a watched execution is shown from its first read to its outcome."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from support import ended, requests_out

from earlyexit.approvals import decide, read_approval, start_approval
from earlyexit.history import ApprovalRequest, Decision, Execution, TimelineEntry
from earlyexit.local import Stack
from earlyexit.tools.timeline import elapsed, render_execution, watch_execution
from earlyexit.wording import duration, started_text

WIDTH = 80
FIVE = ["alice", "bob", "carol", "dave", "erin"]


def recording_console() -> Console:
    return Console(width=WIDTH, record=True, file=io.StringIO(), highlight=False)


def shown(execution: Execution, **options: Any) -> list[str]:
    out = recording_console()
    render_execution(execution, out=out, **options)
    return [line.rstrip() for line in out.export_text().splitlines()]


def elapsed_texts(execution: Execution) -> list[str]:
    return [elapsed((entry.at - execution.started_at).total_seconds()) for entry in execution.timeline]


@pytest.fixture(scope="module")
def three_of_five(sfn: Any, quorum: Stack) -> Execution:
    """A decided 3-of-5 quorum execution with a long name."""
    name = f"{'quarterly-budget-review-' * 2}{uuid.uuid4()}"[:80]
    arn = start_approval(sfn, quorum.outputs["StateMachineArn"], FIVE, request={"budget": 1_250_000}, quorum=3,
                         timeout_seconds=60, name=name)
    requests_out(sfn, arn, len(FIVE))
    for approver, decision in [("bob", "reject"), ("alice", "approve"), ("dave", "approve"), ("erin", "approve")]:
        decide(sfn, arn, approver, decision, comment=f"{approver} has read the whole proposal and says so")
    return ended(sfn, arn)


@pytest.fixture
def forty_approvers() -> Execution:
    """An execution at the limits: 40 approvers with long names, decided after 364 days."""
    started = datetime(2025, 1, 1, tzinfo=UTC)
    approvers = [f"approver-with-a-long-name-{i:02d}@example.com" for i in range(40)]
    decided = started + timedelta(days=364, hours=23, minutes=59)
    record = [{"approver": a, "decision": "approve", "comment": None,
               "at": decided.isoformat(timespec="milliseconds").replace("+00:00", "Z")} for a in approvers]
    output = {"outcome": "APPROVED", "pattern": "quorum", "request": {}, "approvals": approvers[:40],
              "rejections": [], "decisions": record, "decidedBy": approvers[39], "quorum": 40}
    requests = [ApprovalRequest(a, f"token-{i}", "Ask the approver", started + timedelta(seconds=1))
                for i, a in enumerate(approvers)]
    decisions = [Decision(a, "approve", None, decided) for a in approvers]
    timeline = [TimelineEntry(started, "started", f"started: asking {', '.join(approvers)}"),
                *(TimelineEntry(r.sent_at, "request", f"request sent to {r.approver}") for r in requests),
                *(TimelineEntry(d.at, "decision", f"{d.approver} approved") for d in decisions),
                TimelineEntry(decided, "outcome", f"APPROVED by {approvers[39]} (1234 state transitions)")]
    return Execution(arn=f"arn:aws:states:us-east-1:123456789012:execution:quorum:{'x' * 80}", status="SUCCEEDED",
                     input={"approvers": approvers, "quorum": 40}, output=output, error=None, cause=None,
                     started_at=started, stopped_at=decided, transitions=1234, requests=requests,
                     decisions=decisions, timeline=timeline)


def test_every_line_of_a_decided_execution_fits_80_columns(three_of_five: Execution) -> None:
    lines = shown(three_of_five)
    too_long = [line for line in lines[1:] if len(line) > WIDTH]  # the first line is the title
    assert too_long == []


def test_the_title_holds_the_whole_execution_name(three_of_five: Execution) -> None:
    name = three_of_five.arn.rsplit(":", 1)[-1]
    assert shown(three_of_five)[0] == name


def test_every_elapsed_time_is_shown_whole(three_of_five: Execution) -> None:
    cells = [line.split()[0] for line in shown(three_of_five) if line.lstrip().startswith("+")]
    assert cells == elapsed_texts(three_of_five)


def test_the_summary_line_gives_the_counts_of_a_quorum(three_of_five: Execution) -> None:
    summary = next(line for line in shown(three_of_five) if line.startswith("APPROVED"))
    output = three_of_five.output
    assert output is not None
    assert (f"{len(output['approvals'])} approved, {len(output['rejections'])} rejected of 5, quorum 3 · "
            f"{three_of_five.transitions} transitions") in summary


def test_the_summary_line_of_40_approvers_fits_80_columns(forty_approvers: Execution) -> None:
    summary = next(line for line in shown(forty_approvers) if line.startswith("APPROVED"))
    assert len(summary) <= WIDTH
    assert "40 approved, 0 rejected of 40, quorum 40 · 1234 transitions" in summary


def test_long_names_wrap_between_names_never_inside_one(forty_approvers: Execution) -> None:
    lines = shown(forty_approvers)
    assert [line for line in lines[1:] if len(line) > WIDTH] == []
    words = {word.strip(",") for line in lines for word in line.split()}
    assert set(forty_approvers.approvers) <= words


def test_elapsed_times_up_to_364_days_are_shown_whole(forty_approvers: Execution) -> None:
    cells = [line.split()[0] for line in shown(forty_approvers) if line.lstrip().startswith("+")]
    assert cells == elapsed_texts(forty_approvers)
    assert cells[-1] == "+364d23h"


@pytest.mark.parametrize(("seconds", "text"), [(0, "+0ms"), (0.042, "+42ms"), (4.25, "+4.2s"), (187, "+3m07s"),
                                               (18_120, "+5h02m"), (364 * 86_400 + 23 * 3_600, "+364d23h")])
def test_elapsed_time_takes_at_most_8_characters(seconds: float, text: str) -> None:
    assert elapsed(seconds) == text


def test_a_custom_title_replaces_the_execution_name(three_of_five: Execution) -> None:
    assert shown(three_of_five, title="3 of 5: the budget")[0] == "3 of 5: the budget"


def test_watch_shows_who_was_asked_and_who_is_pending_before_the_first_answer(sfn: Any, quorum: Stack) -> None:
    arn = start_approval(sfn, quorum.outputs["StateMachineArn"], ["alice", "bob", "carol"], quorum=2,
                         timeout_seconds=60)
    requests_out(sfn, arn, 3)
    reads: list[Execution] = []

    def read() -> Execution:
        execution = read_approval(sfn, arn)
        reads.append(execution)
        if len(reads) == 1:  # the approvers answer once the watch has shown its first read
            decide(sfn, arn, "alice", "approve")
            decide(sfn, arn, "carol", "approve")
        return execution

    out = recording_console()
    ended = watch_execution(read, timeout=30, out=out, max_pause=0.05)
    lines = out.export_text().splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    assert first("request sent to bob") < first("waiting for alice, bob, carol") < first("alice approved")
    summary = next(i for i, line in enumerate(lines) if line.startswith("APPROVED"))
    assert first("carol approved") < summary == len(lines) - 4  # then decided by, approved, rejected
    assert ended.status == "SUCCEEDED" and ended.output is not None
    assert ended.output["outcome"] == "APPROVED"


def _started_alone(execution_input: dict[str, Any], *, status: str = "RUNNING", error: str | None = None,
                   output: dict[str, Any] | None = None, asked_as: str | None = None) -> str:
    """The first line of an execution that started 2026-12-07 09:00 UTC with ``execution_input``."""
    started = datetime(2026, 12, 7, 9, tzinfo=UTC)
    requests = [ApprovalRequest(a, "token", asked_as, started) for a in execution_input["approvers"]] if asked_as \
        else []
    execution = Execution(arn="arn:aws:states:us-east-1:123456789012:execution:m:e", status=status,
                          input=execution_input, output=output, error=error, cause=None, started_at=started,
                          stopped_at=None, transitions=2, requests=requests)
    return started_text(execution)


def test_the_first_line_gives_the_deadline_as_a_duration_and_a_time() -> None:
    line = _started_alone({"approvers": ["alice", "bob"], "timeoutSeconds": 5_400, "reminderSeconds": 900})
    assert line == "started: asking alice, bob (deadline 1h30m, at 2026-12-07 10:30:00 UTC, reminders every 15m)"


def test_the_first_line_says_where_defaults_come_from_while_the_execution_runs() -> None:
    line = _started_alone({"approvers": ["alice", "bob", "carol"]}, asked_as="Ask the approver")
    assert line == ("started: asking alice, bob, carol (quorum: the stack's DefaultQuorum, deadline: the stack's "
                    "ApprovalTimeoutSeconds)")


def test_the_first_line_gives_the_default_quorum_once_the_output_names_it() -> None:
    output = {"outcome": "APPROVED", "approvals": ["alice", "bob"], "rejections": [], "decidedBy": "bob",
              "quorum": 2}
    line = _started_alone({"approvers": ["alice", "bob", "carol"], "timeoutSeconds": 86_400}, status="SUCCEEDED",
                          output=output, asked_as="Ask the approver")
    assert line.startswith("started: asking alice, bob, carol (quorum 2 of 3 (the stack's default), deadline 1d, at ")


def test_a_refused_input_asks_nobody() -> None:
    line = _started_alone({"approvers": ["alice", "bob"], "quorum": 0}, status="FAILED", error="InvalidInput")
    assert line == "started: input refused, nobody asked (approvers given: alice, bob)"


@pytest.mark.parametrize(("seconds", "text"), [(1, "1s"), (45, "45s"), (900, "15m"), (3_600, "1h"), (5_400, "1h30m"),
                                               (86_400, "1d"), (31_449_600, "364d")])
def test_a_duration_reads_as_people_write_it(seconds: int, text: str) -> None:
    assert duration(seconds) == text


def test_an_either_or_execution_shows_no_quorum_even_if_its_input_has_one() -> None:
    line = _started_alone({"approvers": ["alice", "bob"], "quorum": 1, "timeoutSeconds": 60}, asked_as="Ask approver 1")
    assert line == "started: asking alice, bob (deadline 1m, at 2026-12-07 09:01:00 UTC)"
