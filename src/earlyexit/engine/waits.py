"""Wait-time scale, as Step Functions Local's: Wait states and Retry intervals last ``scale`` times as long.

1.0, the default, is AWS's timing
(https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-retrying-after-an-error).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment

if TYPE_CHECKING:
    from earlyexit.engine.registry import Patcher

__all__ = ["scaled_waits", "set_wait_time_scale", "wait_time_scale"]

_scale = 1.0


def set_wait_time_scale(scale: float) -> None:
    """Scale every Wait state and Retry interval by ``scale`` (1.0 is AWS's timing)."""
    global _scale
    if not scale > 0:
        raise ValueError(f"wait_time_scale must be > 0, got {scale!r}")
    _scale = float(scale)


def wait_time_scale() -> float:
    """The current scale of Wait states and Retry intervals."""
    return _scale


class _ScaledClock:
    """``time`` as the retrier sees it: its sleeps last ``scale`` times as long."""

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * _scale)


def scaled_waits(p: Patcher) -> None:
    """A Wait state lasts its declared time (fractions of seconds included, once scaled) and ends at once
    when its flow stops; Retry intervals last their declared time; both scaled by :func:`wait_time_scale`.
    moto re-waited on whole seconds only.

    https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html
    """

    def wait_interval(self: WaitFunction, env: Environment, wait_seconds: float) -> None:
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * _scale
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    p.replace(WaitFunction, "_wait_interval", wait_interval)
    p.replace(retrier_decl, "time", _ScaledClock)
