"""A newcomer's mistakes with `earlyexit`, each answered with its exit code and what to do (issue 18)."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner, Result
from support import ended, requests_out

from earlyexit.local import Stack
from earlyexit.tools import cli
from earlyexit.tools.cli import main

pytestmark = pytest.mark.engine

UNKNOWN = "arn:aws:states:us-east-1:123456789012:execution:machine:name"


def _invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """The command in-process, moto answering AWS's endpoints; stdout and stderr apart (click 8.1 and 8.2+)."""
    apart = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    return CliRunner(**apart).invoke(main, list(args), env={"AWS_ENDPOINT_URL": None, "COLUMNS": "80", **(env or {})})


def _words(text: str) -> str:
    return " ".join(text.split())


def _started(*args: str) -> str:
    result = _invoke("start", *args, "--region", "us-east-1")
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


# -- the endpoint ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["option", "environment"])
def test_an_endpoint_without_a_scheme_is_a_usage_error_saying_to_add_http(how: str) -> None:
    given = ["--endpoint-url", "127.0.0.1:4599"] if how == "option" else []
    result = _invoke("status", UNKNOWN, *given, env={"AWS_ENDPOINT_URL": "127.0.0.1:4599"} if not given else None)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "'--endpoint-url'" in result.stderr and "add http://, as in http://127.0.0.1:4599" in result.stderr


def test_an_endpoint_that_is_not_http_is_a_usage_error() -> None:
    result = _invoke("pending", UNKNOWN, "--endpoint-url", "ftp://127.0.0.1:4599")
    assert result.exit_code == 2
    assert "not an http:// or https:// URL" in result.stderr


def test_no_connection_to_aws_names_the_local_endpoint_options(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(sfn: Any, execution_arn: str) -> None:
        raise EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com/")

    monkeypatch.setattr(cli, "read_approval", unreachable)
    result = _invoke("status", UNKNOWN)
    assert result.exit_code == 1
    said = _words(result.stderr)
    assert "no connection to AWS" in said and "is the endpoint running" not in said
    assert "--endpoint-url http://127.0.0.1:4599" in said and "export AWS_ENDPOINT_URL=http://127.0.0.1:4599" in said


def test_an_endpoint_that_does_not_answer_says_to_start_it() -> None:
    result = _invoke("status", UNKNOWN, "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    said = _words(result.stderr)
    assert "http://127.0.0.1:9" in said and "is the endpoint running? Start it with `earlyexit serve`" in said


# -- input rules name the value -------------------------------------------------------------------


@pytest.mark.parametrize(("approvers", "named"), [
    (["alice", "bob", "alice"], '"alice" is given more than once'),
    (["alice", " "], 'approver 2 is blank: " "'),
    (["alice", ""], 'approver 2 is empty: ""'),
    (["alice"], '1 given: "alice"'),
    ([], "no approver given"),
], ids=["duplicate", "blank", "empty", "single", "none"])
def test_an_approver_rule_broken_names_the_offending_value(approvers: list[str], named: str) -> None:
    options = [option for approver in approvers for option in ("--approver", approver)]
    result = _invoke("start", "quorum", *options, "--region", "us-east-1")
    assert result.exit_code == 2, result.output
    said = _words(result.stderr)
    assert "'--approver'" in said and "distinct strings, none empty or blank" in said and named in said


def test_a_quorum_out_of_range_names_the_value_given() -> None:
    result = _invoke("start", "quorum", "--approver", "a", "--approver", "b", "--quorum", "3",
                     "--region", "us-east-1")
    assert result.exit_code == 2
    assert "number of approvers (2); given: 3" in _words(result.stderr)


# -- pending, approve and reject on an ended execution --------------------------------------------


@pytest.fixture
def decided(sfn: Any, either_or: Stack) -> str:
    """An either-or execution that bob approved."""
    arn = _started("either-or", "--approver", "alice", "--approver", "bob", "--timeout-seconds", "60")
    requests_out(sfn, arn, 2)
    assert _invoke("approve", arn, "--as", "bob", "--region", "us-east-1").exit_code == 0
    ended(sfn, arn)
    return arn


@pytest.fixture
def timed_out(sfn: Any, either_or: Stack) -> str:
    """An either-or execution whose deadline passed with nobody answering."""
    arn = _started("either-or", "--approver", "alice", "--approver", "bob", "--timeout-seconds", "1")
    assert ended(sfn, arn).output["outcome"] == "TIMED_OUT"
    return arn


@pytest.mark.parametrize("mode", [(), ("--show-tokens",), ("--links",)], ids=["names", "tokens", "links"])
def test_pending_on_a_decided_execution_exits_1_and_says_why_on_stderr(decided: str, mode: tuple[str, ...]) -> None:
    result = _invoke("pending", decided, *mode, "--region", "us-east-1")
    assert result.exit_code == 1
    assert result.stdout == ""  # a pipeline reading tokens gets none, and the reason shows on the terminal
    assert result.stderr == "Error: nobody can answer: already decided: APPROVED by bob\n"


def test_pending_json_on_a_decided_execution_exits_1_with_its_status(decided: str) -> None:
    result = _invoke("pending", decided, "--json", "--region", "us-east-1")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"executionArn": decided, "status": "SUCCEEDED", "pending": []}


def test_approving_after_the_deadline_says_the_deadline_passed_not_that_someone_decided(timed_out: str) -> None:
    result = _invoke("approve", timed_out, "--as", "alice", "--region", "us-east-1")
    assert result.exit_code == 1
    assert "already decided" not in result.stderr
    assert result.stderr == ("Error: the deadline has passed before the outcome was settled (TIMED_OUT): "
                             "nobody decided it\n")


def test_pending_after_the_deadline_says_the_deadline_passed(timed_out: str) -> None:
    result = _invoke("pending", timed_out, "--show-tokens", "--region", "us-east-1")
    assert (result.exit_code, result.stdout) == (1, "")
    assert "nobody can answer: the deadline has passed" in result.stderr


# -- status: the execution's status, not the approval's outcome -----------------------------------


def test_status_exits_0_on_an_approval_whose_outcome_timed_out(timed_out: str) -> None:
    result = _invoke("status", timed_out, "--region", "us-east-1")
    assert result.exit_code == 0, result.output
    assert any(line.startswith("TIMED_OUT") for line in result.stdout.splitlines())


def test_status_exits_0_on_a_rejected_approval(sfn: Any, either_or: Stack) -> None:
    arn = _started("either-or", "--approver", "alice", "--approver", "bob", "--timeout-seconds", "60")
    requests_out(sfn, arn, 2)
    assert _invoke("reject", arn, "--as", "alice", "--region", "us-east-1").exit_code == 0
    result = _invoke("status", arn, "--watch", "--json", "--region", "us-east-1")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["output"]["outcome"] == "REJECTED"


def test_status_help_tells_the_execution_s_status_from_the_approval_s_outcome() -> None:
    said = _words(_invoke("status", "--help").stdout)
    assert "Exits 0 while the execution runs and once it has SUCCEEDED, whatever the approval's outcome" in said
    assert "(APPROVED, REJECTED or TIMED_OUT: a decided execution succeeds)" in said
    assert "1 if the execution's own status is FAILED, ABORTED or TIMED_OUT" in said


def test_status_of_a_stopped_execution_says_it_was_stopped_without_none(sfn: Any, quorum: Stack) -> None:
    arn = _started("quorum", "--approver", "a", "--approver", "b", "--approver", "c", "--timeout-seconds", "60")
    requests_out(sfn, arn, 3)
    sfn.stop_execution(executionArn=arn)
    result = _invoke("status", arn, "--region", "us-east-1")
    assert result.exit_code == 1
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert "None" not in result.stdout
    assert any(re.fullmatch(r" *\+\S+  ABORTED: stopped before an outcome \(\d+ state transitions\)", line)
               for line in lines), result.stdout
    assert any(re.fullmatch(r"ABORTED  stopped before an outcome · \d+ transitions", line) for line in lines)


def test_ctrl_c_while_watching_exits_130_without_aborted(monkeypatch: pytest.MonkeyPatch, sfn: Any,
                                                        either_or: Stack) -> None:
    arn = _started("either-or", "--approver", "alice", "--approver", "bob", "--timeout-seconds", "60")

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("earlyexit.tools.timeline.watch_execution", interrupted)
    result = _invoke("status", arn, "--watch", "--region", "us-east-1")
    assert result.exit_code == 130
    assert "Aborted" not in result.output
    sfn.stop_execution(executionArn=arn)


# -- help -----------------------------------------------------------------------------------------


def test_the_command_list_fits_80_columns_without_cutting_a_description() -> None:
    listed = _invoke("--help").stdout
    commands = listed.split("Commands:\n", 1)[1].splitlines()
    assert len(commands) == len(main.commands)
    assert [line for line in commands if "..." in line or len(line) > 80] == []


def test_demo_help_says_a_bare_demo_plays_both_patterns() -> None:
    assert "a bare `earlyexit demo` plays both patterns" in _words(_invoke("demo", "--help").stdout)
