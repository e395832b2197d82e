"""Show an approval execution as a timeline of people and decisions, at any terminal width.

Lines wrap between words; elapsed times, counts and execution ids are never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from earlyexit.history import Execution, TimelineEntry
from earlyexit.polling import wait_until
from earlyexit.wording import ended_without_outcome

__all__ = ["console", "elapsed", "render_execution", "watch_execution"]

_STYLES = {"started": "cyan", "request": "blue", "reminder": "blue", "decision": "magenta", "exit": "yellow",
           "outcome": "bold"}
_OUTCOME_STYLES = {"APPROVED": "bold green", "REJECTED": "bold red", "TIMED_OUT": "bold yellow"}
_ELAPSED_WIDTH = 8  # "+364d23h", the longest elapsed time an execution can show

_console: Console | None = None


def console() -> Console:
    """The shared console of the CLI and the demo (stdout, colour where the terminal has it)."""
    global _console
    if _console is None:
        _console = Console(highlight=False)
    return _console


def elapsed(seconds: float) -> str:
    """``seconds`` since the start in at most 8 characters: +12ms, +4.2s, +3m07s, +5h02m, +364d23h."""
    if seconds < 1:
        return f"+{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"+{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"+{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"+{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"+{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _entries(execution: Execution, entries: Iterable[TimelineEntry]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="dim", no_wrap=True, min_width=_ELAPSED_WIDTH)
    grid.add_column(overflow="fold")
    for entry in entries:
        grid.add_row(elapsed((entry.at - execution.started_at).total_seconds()),
                     Text(entry.text, style=_STYLES.get(entry.kind, "")))
    return grid


def _waiting(execution: Execution) -> Text:
    names = ", ".join(r.approver for r in execution.pending)
    return Text(f"RUNNING  waiting for {names}" if names else "RUNNING  sending the requests", style="cyan")


def _summary(execution: Execution) -> RenderableType:
    """The outcome: one line of counts that always fits 80 columns, then the names (wrapped)."""
    if execution.status == "RUNNING":
        return _waiting(execution)
    if execution.output is None:
        return Text(f"{execution.status}  {ended_without_outcome(execution)} · {execution.transitions} transitions",
                    style="bold red")
    output = execution.output
    outcome = str(output.get("outcome"))
    approvals, rejections = output.get("approvals") or [], output.get("rejections") or []
    line = Text()
    line.append(outcome, style=_OUTCOME_STYLES.get(outcome, "bold"))
    line.append(f"  {len(approvals)} approved, {len(rejections)} rejected of {len(execution.approvers)}")
    if "quorum" in output:
        line.append(f", quorum {output['quorum']}")
    line.append(f" · {execution.transitions} transitions", style="dim")
    names = Table.grid(padding=(0, 1))
    names.add_column(style="dim", no_wrap=True)
    names.add_column(overflow="fold")
    settled_by = "nobody (the deadline)" if output.get("outcome") == "TIMED_OUT" else "nobody (the tally was settled)"
    names.add_row("  decided by", str(output.get("decidedBy") or settled_by))
    names.add_row("  approved", ", ".join(approvals) or "-")
    names.add_row("  rejected", ", ".join(rejections) or "-")
    return Group(line, names)


def _title(execution: Execution, title: str | None) -> Text:
    return Text(title or execution.arn.rsplit(":", 1)[-1], style="bold")


def render_execution(execution: Execution, *, title: str | None = None, out: Console | None = None) -> None:
    """Print ``execution``: its title (the execution name unless given), the timeline and the outcome."""
    out = out or console()
    out.print(_title(execution, title), soft_wrap=True)  # an id is printed whole, never broken
    out.print(_entries(execution, execution.timeline))
    out.print(_summary(execution))
    out.print()


def watch_execution(read: Callable[[], Execution], *, timeout: float, out: Console | None = None,
                    max_pause: float = 1.0) -> Execution:
    """Print the execution that ``read`` returns as it unfolds, from its first read to its outcome.

    New timeline entries are printed as they appear, and who is still pending whenever that
    changes; returns the ended execution. Raises :class:`earlyexit.errors.WaitTimeout` after
    ``timeout`` seconds.
    """
    out = out or console()
    shown: set[TimelineEntry] = set()
    waiting: list[str] | None = None

    def probe() -> Execution | None:
        nonlocal waiting
        execution = read()
        if not shown:  # the first read (every timeline starts with the start)
            out.print(_title(execution, None), soft_wrap=True)
        running = execution.status == "RUNNING"
        # The flow that exited and the outcome are read from the output: printed once it exists.
        new = [e for e in execution.timeline if e not in shown and not (running and e.kind in ("exit", "outcome"))]
        if new:
            out.print(_entries(execution, new))
            shown.update(new)
        if running:
            pending = [r.approver for r in execution.pending]
            if pending != waiting:
                out.print(_waiting(execution))
            waiting = pending
            return None
        out.print(_summary(execution))
        return execution

    return wait_until(probe, timeout=timeout, what="the outcome", max_pause=max_pause)
