"""Wait states and Retry intervals last their declared time, scaled by the engine's wait-time scale."""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING

from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment

from earlyexit.engine.runtime.waits import wait_time_scale

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["scaled_waits", "timestamps_waited_until_in_utc"]


class _ScaledClock:
    """``time`` as the retrier sees it: its sleeps last ``scale`` times as long."""

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * wait_time_scale())


def scaled_waits(p: Patcher) -> None:
    """A Wait state lasts its declared time (fractions of seconds included, once scaled) and ends at once
    when its flow stops; Retry intervals last their declared time; both scaled by :func:`wait_time_scale`.
    moto re-waited on whole seconds only.

    Test: tests/test_engine.py::test_wait_time_scale_shortens_wait_states_and_retry_intervals
    https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html
    """

    def wait_interval(self: WaitFunction, env: Environment, wait_seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * wait_time_scale()
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    p.replace(WaitFunction, "_wait_interval", wait_interval)
    p.replace(retrier_decl, "time", _ScaledClock)


def _execution_clock(env: Environment) -> datetime.datetime:
    """Now, in UTC, on the execution's clock: with a wait-time scale s, its start + the real time since / s
    (so a Timestamp n seconds after the start is reached after n x s real seconds, as a Seconds wait is)."""
    now = datetime.datetime.now(datetime.UTC)
    scale = wait_time_scale()
    if scale == 1.0:
        return now
    started = datetime.datetime.fromisoformat(
        str(env.states.context_object.context_object_data["Execution"]["StartTime"]).replace("Z", "+00:00"))
    return started + (now - started) / scale


def timestamps_waited_until_in_utc(p: Patcher) -> None:
    """A Wait state's ``Timestamp`` is a time in UTC (its ``Z``), considered to the second (AWS truncates the
    milliseconds), and the state ends when that second comes: moto compared it with the machine's local time
    (hours off outside UTC) and shortened the wait to whole seconds (up to a second early). With a
    wait-time scale, the Timestamp is read on the execution's clock (:func:`_execution_clock`).

    Test: tests/test_engine_waits.py::test_a_timestamp_wait_ends_at_that_utc_second_whatever_the_local_time_zone
    https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html
    """
    original = p.original(Timestamp, "_from_timestamp_string")

    def get_wait_seconds(self: Timestamp, env: Environment) -> float:
        self.string.eval(env=env)
        text = env.stack.pop()
        until = original(text) if isinstance(text, str) else None
        if until is None:
            raise FailureEventException(self._create_failure_event(env, text))
        return (until.replace(tzinfo=datetime.UTC) - _execution_clock(env)).total_seconds()

    p.replace(Timestamp, "_get_wait_seconds", get_wait_seconds)
