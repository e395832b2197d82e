"""The execution input rules (earlyexit.rules): the causes the contract states, and the same verdict
as the state machines' own validation on every input of the table below."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import requests_out, unique

from earlyexit.local import Cloud, Stack
from earlyexit.patterns import PATTERNS
from earlyexit.rules import BLANK, Violation, check_input, is_integer, quorum_outcome

EITHER_OR_APPROVERS = "approvers: required, a list of exactly 2 distinct strings, none empty or blank"
QUORUM_APPROVERS = "approvers: required, a list of 2 to 40 distinct strings, none empty or blank"
TIMEOUT = "timeoutSeconds: must be an integer from 1 to 31449600 (364 days)"
REQUEST = "request: must be a JSON object"
THREE = ["alice", "bob", "carol"]
TWO = ["alice", "bob"]
FORTY = [f"approver-{i}" for i in range(40)]


def quorum_cause(count: int) -> str:
    return f"quorum: must be an integer from 1 to the number of approvers ({count})"


# (id, pattern, input): every input breaks a rule; quorum inputs name their quorum, so that the
# stack's DefaultQuorum (whatever it is on AWS) plays no part.
INVALID: list[tuple[str, str, Any]] = [
    ("not-an-object", "either-or", ["alice", "bob"]),
    ("a-string", "quorum", "alice"),
    ("no-approvers", "either-or", {}),
    ("no-approvers", "quorum", {"quorum": 1}),
    ("approvers-not-a-list", "either-or", {"approvers": "alice,bob"}),
    ("no-approver", "quorum", {"approvers": [], "quorum": 1}),
    ("one-approver", "either-or", {"approvers": ["alice"]}),
    ("one-approver", "quorum", {"approvers": ["alice"], "quorum": 1}),
    ("three-approvers", "either-or", {"approvers": THREE}),
    ("41-approvers", "quorum", {"approvers": [*FORTY, "one-more"], "quorum": 1}),
    ("duplicate", "either-or", {"approvers": ["alice", "alice"]}),
    ("duplicate", "quorum", {"approvers": ["alice", "bob", "alice"], "quorum": 1}),
    ("empty", "either-or", {"approvers": ["alice", ""]}),
    ("space", "quorum", {"approvers": ["alice", " ", "bob"], "quorum": 1}),
    ("tab-newline", "either-or", {"approvers": ["alice", "\t\n"]}),
    ("no-break-space", "quorum", {"approvers": ["alice", "\xa0", "bob"], "quorum": 1}),
    ("next-line", "either-or", {"approvers": ["alice", "\x85"]}),
    ("figure-space", "quorum", {"approvers": ["alice", "\u2007", "bob"], "quorum": 1}),
    ("ideographic-space", "either-or", {"approvers": ["\u3000", "bob"]}),
    ("byte-order-mark", "quorum", {"approvers": ["alice", "\ufeff", "bob"], "quorum": 1}),
    ("mixed-blanks", "either-or", {"approvers": ["alice", "\u2028\u205f\u1680"]}),
    ("a-number", "either-or", {"approvers": ["alice", 2]}),
    ("a-null", "quorum", {"approvers": ["alice", None, "bob"], "quorum": 1}),
    ("a-list", "quorum", {"approvers": ["alice", ["bob"], "carol"], "quorum": 1}),
    ("quorum-0", "quorum", {"approvers": THREE, "quorum": 0}),
    ("quorum-n-plus-1", "quorum", {"approvers": THREE, "quorum": 4}),
    ("quorum-41-of-40", "quorum", {"approvers": FORTY, "quorum": 41}),
    ("quorum-negative", "quorum", {"approvers": THREE, "quorum": -1}),
    ("quorum-fraction", "quorum", {"approvers": THREE, "quorum": 1.5}),
    ("quorum-string", "quorum", {"approvers": THREE, "quorum": "2"}),
    ("quorum-true", "quorum", {"approvers": THREE, "quorum": True}),
    ("quorum-null", "quorum", {"approvers": THREE, "quorum": None}),
    ("timeout-0", "either-or", {"approvers": TWO, "timeoutSeconds": 0}),
    ("timeout-365-days", "quorum", {"approvers": THREE, "quorum": 2, "timeoutSeconds": 31_449_601}),
    ("timeout-fraction", "either-or", {"approvers": TWO, "timeoutSeconds": 1.5}),
    ("timeout-string", "quorum", {"approvers": THREE, "quorum": 2, "timeoutSeconds": "60"}),
    ("timeout-null", "either-or", {"approvers": TWO, "timeoutSeconds": None}),
    ("request-list", "either-or", {"approvers": TWO, "request": [1, 2]}),
    ("request-string", "quorum", {"approvers": THREE, "quorum": 2, "request": "laptop"}),
    ("request-null", "quorum", {"approvers": THREE, "quorum": 2, "request": None}),
    ("approvers-before-quorum", "quorum", {"approvers": ["alice"], "quorum": 0}),
    ("quorum-before-timeout", "quorum", {"approvers": THREE, "quorum": 0, "timeoutSeconds": 0}),
    ("timeout-before-request", "either-or", {"approvers": TWO, "timeoutSeconds": 0, "request": []}),
    ("reminder-0", "either-or", {"approvers": TWO, "timeoutSeconds": 60, "reminderSeconds": 0}),
    ("reminder-at-the-deadline", "quorum", {"approvers": THREE, "quorum": 2, "timeoutSeconds": 60,
                                            "reminderSeconds": 60}),
    ("reminder-fraction", "either-or", {"approvers": TWO, "timeoutSeconds": 60, "reminderSeconds": 1.5}),
    ("reminder-string", "quorum", {"approvers": THREE, "quorum": 2, "timeoutSeconds": 60, "reminderSeconds": "10"}),
    ("reminder-null", "either-or", {"approvers": TWO, "timeoutSeconds": 60, "reminderSeconds": None}),
    ("reminder-with-a-one-second-deadline", "either-or", {"approvers": TWO, "timeoutSeconds": 1, "reminderSeconds": 1}),
    ("timeout-before-reminder", "either-or", {"approvers": TWO, "timeoutSeconds": 0, "reminderSeconds": 0}),
    ("reminder-before-request", "quorum", {"approvers": THREE, "quorum": 2, "timeoutSeconds": 60,
                                           "reminderSeconds": 0, "request": []}),
]

# Inputs at the edge of the rules that both must accept.
VALID: list[tuple[str, str, Any]] = [
    ("integral-float", "quorum", {"approvers": THREE, "quorum": 2.0, "timeoutSeconds": 60.0}),
    ("zero-width-space-is-a-name", "either-or", {"approvers": ["alice", "\u200b"]}),
    ("control-character-is-a-name", "either-or", {"approvers": ["alice", "\x1c"]}),
    ("names-differ-by-a-space", "either-or", {"approvers": ["alice", "alice "]}),
    ("forty-approvers-all-needed", "quorum", {"approvers": FORTY, "quorum": 40}),
    ("two-approvers-quorum-2", "quorum", {"approvers": TWO, "quorum": 2}),
    ("longest-deadline", "either-or", {"approvers": TWO, "timeoutSeconds": 31_449_600, "request": {}}),
    ("other-fields-ignored", "quorum", {"approvers": THREE, "quorum": 1, "comment": [1], "Approvers": 3}),
    ("reminder-one-second-before-the-deadline", "quorum", {"approvers": THREE, "quorum": 2, "timeoutSeconds": 60,
                                                           "reminderSeconds": 59}),
    ("reminder-every-second", "either-or", {"approvers": TWO, "timeoutSeconds": 2, "reminderSeconds": 1}),
]


def _ids(cases: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{pattern}-{name}" for name, pattern, _ in cases]


# -- the causes, as the contract states them ------------------------------------------------------


@pytest.mark.parametrize(("pattern", "cause"), [("either-or", EITHER_OR_APPROVERS), ("quorum", QUORUM_APPROVERS)])
def test_a_broken_approvers_rule_has_the_pattern_s_cause(pattern: str, cause: str) -> None:
    assert check_input(pattern, {"approvers": ["alice"]}) == Violation("approvers", cause)


def test_a_quorum_out_of_range_names_the_number_of_approvers() -> None:
    assert check_input("quorum", {"approvers": [*THREE, "dave", "erin"], "quorum": 6}) == Violation(
        "quorum", quorum_cause(5))


def test_a_default_quorum_larger_than_the_approvers_names_both_numbers() -> None:
    assert check_input("quorum", {"approvers": THREE}, default_quorum=4) == Violation(
        "quorum", "quorum: the stack's DefaultQuorum (4) is larger than the number of approvers (3); "
                  "pass a quorum from 1 to 3")


def test_a_default_quorum_is_checked_only_when_no_quorum_is_given() -> None:
    assert check_input("quorum", {"approvers": THREE, "quorum": 3}, default_quorum=4) is None


def test_an_unknown_default_quorum_is_not_checked() -> None:
    assert check_input("quorum", {"approvers": TWO}) is None


def test_either_or_ignores_quorum() -> None:
    assert check_input("either-or", {"approvers": TWO, "quorum": 0}) is None


@pytest.mark.parametrize(("field", "cause"), [("timeoutSeconds", TIMEOUT), ("request", REQUEST)])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_timeout_and_request_have_the_same_cause_in_both_patterns(pattern: str, field: str, cause: str) -> None:
    execution_input = {"approvers": TWO, "quorum": 1, field: "x"}
    assert check_input(pattern, execution_input) == Violation(field, cause)


def test_blank_is_exactly_the_unicode_whitespace_the_contract_lists() -> None:
    listed = {*map(chr, range(0x09, 0x0E)), " ", "\x85", "\xa0", "\u1680", *map(chr, range(0x2000, 0x200B)),
              "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"}
    assert BLANK == listed


@pytest.mark.parametrize(("value", "integer"), [(2, True), (2.0, True), (-3, True), (2.5, False), ("2", False),
                                                (True, False), (None, False), (float("inf"), False)])
def test_an_integer_is_a_json_number_with_an_integral_value(value: Any, integer: bool) -> None:
    assert is_integer(value) is integer


@pytest.mark.parametrize(("name", "pattern", "execution_input"), VALID, ids=_ids(VALID))
def test_inputs_at_the_edge_of_the_rules_are_valid(name: str, pattern: str, execution_input: Any) -> None:
    assert check_input(pattern, execution_input) is None


# -- the state machines agree --------------------------------------------------------------------


@pytest.fixture(scope="module")
def machines(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each pattern's state machine ARN."""
    return {pattern: request.getfixturevalue(pattern.replace("-", "_")).outputs["StateMachineArn"]
            for pattern in PATTERNS}


def verdict(sfn: Any, state_machine_arn: str, execution_input: Any) -> Violation | None:
    """What the state machine makes of ``execution_input``: its InvalidInput cause, or None once it asks an
    approver (that execution is then stopped)."""
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(execution_input),
                              name=unique("rules"))["executionArn"]

    execution = requests_out(sfn, arn, 1, timeout=30)  # the first request, or the end
    if execution.requests:  # accepted (a deadline of a second or two may have ended it since: that is no verdict)
        if execution.status == "RUNNING":
            sfn.stop_execution(executionArn=arn)
        return None
    assert (execution.status, execution.error) == ("FAILED", "InvalidInput"), (execution.error, execution.cause)
    assert execution.requests == [], "a request was sent before the input was refused"
    return Violation(str(execution.cause).split(":", 1)[0], str(execution.cause))


@pytest.mark.parametrize(("name", "pattern", "execution_input"), INVALID, ids=_ids(INVALID))
def test_the_state_machine_refuses_an_invalid_input_with_the_rules_cause(
        sfn: Any, machines: dict[str, str], name: str, pattern: str, execution_input: Any) -> None:
    expected = check_input(pattern, execution_input)
    assert expected is not None
    assert verdict(sfn, machines[pattern], execution_input) == expected


@pytest.mark.parametrize(("name", "pattern", "execution_input"), VALID, ids=_ids(VALID))
def test_the_state_machine_accepts_what_the_rules_accept(
        sfn: Any, machines: dict[str, str], name: str, pattern: str, execution_input: Any) -> None:
    assert verdict(sfn, machines[pattern], execution_input) is None


@pytest.fixture(scope="module")
def quorum_of_three(cloud: Cloud) -> Stack:
    """A quorum stack whose DefaultQuorum is 3."""
    return cloud.deploy("quorum", parameters={"DefaultQuorum": 3}, stack_name=unique("default-quorum-3"))


@pytest.mark.deploys
@pytest.mark.parametrize("approvers", [TWO, THREE], ids=["2-approvers", "3-approvers"])
def test_the_state_machine_applies_the_default_quorum_rule_as_the_rules_do(
        sfn: Any, quorum_of_three: Stack, approvers: list[str]) -> None:
    execution_input = {"approvers": approvers}
    assert verdict(sfn, quorum_of_three.outputs["StateMachineArn"], execution_input) == check_input(
        "quorum", execution_input, default_quorum=3)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_state_machine_checks_reminders_against_the_stack_s_default_deadline(
        sfn: Any, machines: dict[str, str], pattern: str) -> None:
    execution_input = {"approvers": THREE if pattern == "quorum" else TWO, "quorum": 2, "reminderSeconds": 86_400}
    execution_input = {k: v for k, v in execution_input.items() if pattern == "quorum" or k != "quorum"}
    expected = check_input(pattern, execution_input, default_timeout_seconds=86_400)
    assert expected == Violation("reminderSeconds", "reminderSeconds: must be an integer from 1 to timeoutSeconds - 1 "
                                                    "(86399)")
    assert verdict(sfn, machines[pattern], execution_input) == expected


def test_an_unknown_default_deadline_leaves_reminders_unchecked() -> None:
    assert check_input("either-or", {"approvers": TWO, "reminderSeconds": 10**9}) is None


@pytest.mark.parametrize(("approvals", "rejections", "approvers", "quorum", "outcome"), [
    (2, 0, 3, 2, "APPROVED"),
    (1, 1, 3, 2, None),
    (1, 2, 3, 2, "REJECTED"),
    (0, 1, 3, 3, "REJECTED"),
    (3, 1, 40, 3, "APPROVED"),
    (0, 37, 40, 3, None),
    (0, 37, 40, 4, "REJECTED"),
])
def test_a_tally_settles_as_the_decision_table_says(approvals: int, rejections: int, approvers: int, quorum: int,
                                                     outcome: str | None) -> None:
    assert quorum_outcome(approvals=approvals, rejections=rejections, approvers=approvers, quorum=quorum) == outcome
