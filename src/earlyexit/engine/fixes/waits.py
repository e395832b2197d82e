"""Wait states and Retry intervals last their declared time, scaled by the engine's wait-time scale."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment

from earlyexit.engine.runtime.waits import wait_time_scale

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["scaled_waits"]


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
