"""Wait states with a ``Timestamp``, as AWS runs them: a UTC time, to the second, on the execution's clock.

AWS: "Timestamps must conform to the RFC3339 profile of ISO 8601, with the further restrictions that an
uppercase T must separate the date and time portions, and an uppercase Z must denote that a numeric time
zone offset is not present ... if you specify the wait time as a timestamp, Step Functions considers the
time value up to seconds and truncates milliseconds."
https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import described_end, waits_at

pytestmark = pytest.mark.engine

Machine = Callable[..., str]
FORMAT = "%Y-%m-%dT%H:%M:%S"


def wait_until(machine: Machine, timestamp: str) -> str:
    return machine({"Wait until": {"Type": "Wait", "Timestamp": timestamp, "Next": "Done"},
                    "Done": {"Type": "Succeed"}}, "Wait until")


def next_whole_second(after: datetime, *, at_least: float) -> datetime:
    return (after + timedelta(seconds=at_least)).replace(microsecond=0) + timedelta(seconds=1)


@pytest.fixture
def far_east_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC+14 (Kiritimati) while the test runs."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_east_local_time")
def test_a_timestamp_wait_ends_at_that_utc_second_whatever_the_local_time_zone(sfn: Any, machine: Machine) -> None:
    until = next_whole_second(datetime.now(UTC), at_least=1)
    arn = wait_until(machine, until.strftime(FORMAT) + "Z")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"], timeout=30)
    assert described["status"] == "SUCCEEDED"
    assert until <= described["stopDate"] < until + timedelta(seconds=1)


def test_a_timestamp_wait_considers_the_time_to_the_second_as_aws_truncates_milliseconds(
        sfn: Any, machine: Machine) -> None:
    until = next_whole_second(datetime.now(UTC), at_least=1)
    arn = wait_until(machine, until.strftime(FORMAT) + ".900Z")
    described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"], timeout=30)
    assert until <= described["stopDate"] < until + timedelta(seconds=0.8)


def test_a_timestamp_from_the_start_time_is_read_on_the_execution_s_clock_when_waits_are_scaled(
        sfn: Any, machine: Machine) -> None:
    """At a scale of 1/1000, 2,000 s of Seconds wait take 2 s; a Timestamp 4,000 s after the start then comes
    2,000 execution seconds later (2 s), not 4,000 (4 s): waits after the first stay anchored to the start."""
    arn = machine({
        "First": {"Type": "Wait", "Seconds": 2000, "Next": "Until the start + 4000 s"},
        "Until the start + 4000 s": {
            "Type": "Wait", "Timestamp": "{% $fromMillis($toMillis($states.context.Execution.StartTime) + 4000000) %}",
            "Next": "Done"},
        "Done": {"Type": "Succeed"},
    }, "First")
    with waits_at(0.001):
        described = described_end(sfn, sfn.start_execution(stateMachineArn=arn)["executionArn"], timeout=30)
    assert described["status"] == "SUCCEEDED"
    took = described["stopDate"] - described["startDate"]
    assert timedelta(seconds=3.5) < took < timedelta(seconds=5), took
