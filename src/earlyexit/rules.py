"""The execution input rules of both patterns, defined once, and what a quorum tally settles.

The state machines check the same rules in their ``Validate input`` state, in the same
order, and fail with error ``InvalidInput`` and exactly the cause :func:`check_input`
returns; ``tests/test_rules.py`` keeps the two equal. The CLI checks them before it
starts anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BLANK", "MAX_APPROVERS", "MAX_TIMEOUT_SECONDS", "MIN_APPROVERS", "Violation", "check_input", "is_integer",
           "quorum_outcome"]

MIN_APPROVERS = 2
MAX_APPROVERS = 40  # an inline Map runs at most 40 iterations at once, and every approver is asked at once
MAX_TIMEOUT_SECONDS = 31_449_600  # 364 days: every execution ends inside Step Functions' one-year limit

# Unicode whitespace: an approver made only of these characters is blank.
BLANK = frozenset("\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
                  + "\u2028\u2029\u202f\u205f\u3000\ufeff")

_TIMEOUT_CAUSE = f"timeoutSeconds: must be an integer from 1 to {MAX_TIMEOUT_SECONDS} (364 days)"
_REQUEST_CAUSE = "request: must be a JSON object"


@dataclass(frozen=True)
class Violation:
    """The first rule an execution input breaks: its field, the ``InvalidInput`` cause (what the state machine
    says too) and what is wrong with the value given (only here: the ASL's cause names the rule, not the value)."""

    field: str  # approvers, quorum, timeoutSeconds, reminderSeconds or request
    cause: str
    detail: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.cause}; {self.detail}" if self.detail else self.cause


def is_integer(value: Any) -> bool:
    """A JSON number with an integral value (``2.0`` is 2; ``"2"``, ``true`` and ``null`` are not)."""
    return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            and value == int(value))


def _approvers_cause(pattern: str) -> str:
    count = "exactly 2" if pattern == "either-or" else f"{MIN_APPROVERS} to {MAX_APPROVERS}"
    return f"approvers: required, a list of {count} distinct strings, none empty or blank"


def _given(value: Any) -> str:
    """``value`` as the input holds it (JSON), whitespace and all."""
    return json.dumps(value)


def _approvers_problem(pattern: str, execution_input: Any) -> str | None:
    """What is wrong with the input's approvers, naming the offending value; None when they are valid."""
    if not isinstance(execution_input, dict):
        return f"the input is not a JSON object: {_given(execution_input)}"
    if "approvers" not in execution_input:
        return "the input has no approvers"
    approvers = execution_input["approvers"]
    if not isinstance(approvers, list):
        return f"not a list: {_given(approvers)}"
    low, high = (2, 2) if pattern == "either-or" else (MIN_APPROVERS, MAX_APPROVERS)
    if not approvers:
        return "no approver given"
    if not low <= len(approvers) <= high:
        return f"{len(approvers)} given" + (f": {', '.join(map(_given, approvers))}" if len(approvers) < 4 else "")
    for position, approver in enumerate(approvers, start=1):
        if not isinstance(approver, str):
            return f"approver {position} is not a string: {_given(approver)}"
        if set(approver) <= BLANK:
            return f"approver {position} is {'empty' if not approver else 'blank'}: {_given(approver)}"
    seen: set[str] = set()
    for approver in approvers:
        if approver in seen:
            return f"{_given(approver)} is given more than once"
        seen.add(approver)
    return None


def _quorum_violation(execution_input: dict[str, Any], default_quorum: int | None) -> Violation | None:
    count = len(execution_input["approvers"])
    if "quorum" in execution_input:
        quorum = execution_input["quorum"]
        if not (is_integer(quorum) and 1 <= quorum <= count):
            return Violation("quorum", f"quorum: must be an integer from 1 to the number of approvers ({count})",
                             f"given: {_given(quorum)}")
    elif default_quorum is not None and default_quorum > count:
        return Violation("quorum", f"quorum: the stack's DefaultQuorum ({default_quorum}) is larger than the number"
                                   f" of approvers ({count}); pass a quorum from 1 to {count}")
    return None


def _reminder_violation(execution_input: dict[str, Any], default_timeout_seconds: int | None) -> Violation | None:
    timeout = execution_input.get("timeoutSeconds", default_timeout_seconds)
    if "reminderSeconds" not in execution_input or timeout is None:
        return None
    reminder = execution_input["reminderSeconds"]
    if is_integer(reminder) and 1 <= reminder <= timeout - 1:
        return None
    return Violation("reminderSeconds", f"reminderSeconds: must be an integer from 1 to timeoutSeconds - 1 "
                                        f"({int(timeout) - 1})", f"given: {_given(reminder)}")


def check_input(pattern: str, execution_input: Any, *, default_quorum: int | None = None,
                default_timeout_seconds: int | None = None) -> Violation | None:
    """The first rule of ``pattern`` that ``execution_input`` breaks, or None when it is valid.

    ``default_quorum`` and ``default_timeout_seconds`` are the stack's ``DefaultQuorum`` and
    ``ApprovalTimeoutSeconds`` parameters; when one is not known (None) an input without ``quorum``
    is not checked against it, and one without ``timeoutSeconds`` has its ``reminderSeconds`` unchecked.
    """
    if pattern not in ("either-or", "quorum"):
        raise ValueError(f"unknown pattern {pattern!r}")
    if problem := _approvers_problem(pattern, execution_input):
        return Violation("approvers", _approvers_cause(pattern), problem)
    if pattern == "quorum" and (violation := _quorum_violation(execution_input, default_quorum)):
        return violation
    if "timeoutSeconds" in execution_input:
        timeout = execution_input["timeoutSeconds"]
        if not (is_integer(timeout) and 1 <= timeout <= MAX_TIMEOUT_SECONDS):
            return Violation("timeoutSeconds", _TIMEOUT_CAUSE, f"given: {_given(timeout)}")
    if violation := _reminder_violation(execution_input, default_timeout_seconds):
        return violation
    if "request" in execution_input and not isinstance(execution_input["request"], dict):
        return Violation("request", _REQUEST_CAUSE, f"given: {_given(execution_input['request'])}")
    return None


def quorum_outcome(*, approvals: int, rejections: int, approvers: int, quorum: int) -> str | None:
    """What a tally of ``approvals`` and ``rejections`` among ``approvers`` settles for ``quorum``, as the contract's
    decision table says: APPROVED once the approvals reach the quorum, REJECTED once the rejections put it out of
    reach, None while it is open."""
    if approvals >= quorum:
        return "APPROVED"
    if rejections > approvers - quorum:
        return "REJECTED"
    return None
