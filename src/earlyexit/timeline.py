"""Show an approval execution as a readable timeline (colour where the terminal has it)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from earlyexit.history import Execution

__all__ = ["console", "render_execution"]

_STYLES = {"started": "cyan", "request": "blue", "decision": "magenta", "exit": "yellow", "outcome": "bold"}
_OUTCOME_STYLES = {"APPROVED": "bold green", "REJECTED": "bold red", "TIMED_OUT": "bold yellow"}

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        _console = Console(highlight=False)
    return _console


def render_execution(execution: Execution, title: str | None = None) -> None:
    """Print ``execution``'s timeline: requests, decisions, the flow that exited, the outcome."""
    out = console()
    table = Table(title=title or execution.arn.rsplit(":", 1)[-1], title_justify="left", show_header=True,
                  header_style="dim", box=None, pad_edge=False)
    table.add_column("+ms", justify="right", style="dim")
    table.add_column("event")
    start = execution.started_at
    for entry in execution.timeline:
        elapsed = int((entry.at - start).total_seconds() * 1000)
        table.add_row(str(elapsed), Text(entry.text, style=_STYLES.get(entry.kind, "")))
    out.print(table)
    if execution.output is not None:
        output = execution.output
        outcome = str(output.get("outcome"))
        summary = Text("  ")
        summary.append(outcome, style=_OUTCOME_STYLES.get(outcome, "bold"))
        summary.append(f"  approvals {', '.join(output.get('approvals') or []) or '-'}"
                       f" | rejections {', '.join(output.get('rejections') or []) or '-'}"
                       f" | decided by {output.get('decidedBy') or '-'}")
        if "quorum" in output:
            summary.append(f" | quorum {output['quorum']}")
        summary.append(f" | {execution.transitions} transitions", style="dim")
        out.print(summary)
    elif execution.status == "RUNNING":
        waiting = ", ".join(r.approver for r in execution.pending) or "requests being sent"
        out.print(Text(f"  RUNNING: waiting for {waiting}", style="cyan"))
    else:
        out.print(Text(f"  {execution.status}: {execution.error or ''} {execution.cause or ''}".rstrip(), style="bold red"))
    out.print()
