"""An approval execution in words, as its timeline and ``earlyexit status`` say it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from earlyexit import states
from earlyexit.rules import is_integer

if TYPE_CHECKING:
    from earlyexit.history import Execution

__all__ = ["duration", "ended_without_outcome", "outcome_text", "started_text"]


def duration(seconds: float) -> str:
    """A length of time as people read it: 45s, 15m, 1h, 1h30m, 1d, 364d."""
    whole = int(seconds)
    parts = [(whole // 86_400, "d"), (whole % 86_400 // 3_600, "h"), (whole % 3_600 // 60, "m"), (whole % 60, "s")]
    return "".join(f"{value}{unit}" for value, unit in parts if value) or "0s"


def _refused(execution: Execution) -> bool:
    """The input broke a rule: the execution failed before it asked anyone."""
    return execution.status == "FAILED" and execution.error == "InvalidInput" and not execution.requests


def _quorum(execution: Execution) -> str | None:
    """The quorum of a quorum execution: the input's, else the output's (the stack's DefaultQuorum)."""
    either_or = (execution.output or {}).get("pattern") == "either-or" or any(
        r.state != states.QUORUM.ASK for r in execution.requests)
    if either_or:  # it ignores a quorum in its input
        return None
    given, count = execution.input.get("quorum"), len(execution.approvers)
    if is_integer(given):
        return f"quorum {int(given)} of {count}"
    if execution.output is not None and "quorum" in execution.output:
        return f"quorum {execution.output['quorum']} of {count} (the stack's default)"
    asked_as_quorum = any(r.state == states.QUORUM.ASK for r in execution.requests)
    return "quorum: the stack's DefaultQuorum" if asked_as_quorum else None


def _deadline(execution: Execution) -> str:
    timeout = execution.input.get("timeoutSeconds")
    if not is_integer(timeout):
        return "deadline: the stack's ApprovalTimeoutSeconds"
    at = execution.started_at + timedelta(seconds=int(timeout))
    return f"deadline {duration(timeout)}, at {at.strftime('%Y-%m-%d %H:%M:%S')} UTC"


def started_text(execution: Execution) -> str:
    """The first line: who is asked, the quorum, the deadline and reminders, each said even when the stack's
    default applies; an input refused asks nobody."""
    names = ", ".join(execution.approvers) or "nobody"
    if _refused(execution):
        return f"started: input refused, nobody asked (approvers given: {names})"
    reminder = execution.input.get("reminderSeconds")
    extra = [_quorum(execution), _deadline(execution),
             f"reminders every {duration(reminder)}" if is_integer(reminder) else None]
    return f"started: asking {names} ({', '.join(e for e in extra if e)})"


def ended_without_outcome(execution: Execution) -> str:
    """Why an execution without an output ended: its error and cause, or that it was stopped."""
    reason = ": ".join(part for part in (execution.error, execution.cause) if part)
    if execution.status == "ABORTED":
        return f"stopped before an outcome{f' ({reason})' if reason else ''}"
    return reason or "no error given"


def outcome_text(execution: Execution) -> str:
    """The last line: the outcome and who decided it, or why the execution ended without one; its transitions."""
    output = execution.output
    if output is not None:
        by = f" by {output['decidedBy']}" if output.get("decidedBy") else ""
        text = f"{output.get('outcome')}{by}"
    else:
        text = f"{execution.status}: {ended_without_outcome(execution)}"
    return f"{text} ({execution.transitions} state transitions)"
