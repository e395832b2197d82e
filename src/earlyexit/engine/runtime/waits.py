"""Wait-time scale, as Step Functions Local's: Wait states and Retry intervals last ``scale`` times as long.

1.0, the default, is AWS's timing
(https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-retrying-after-an-error).
"""

from __future__ import annotations

__all__ = ["set_wait_time_scale", "wait_time_scale"]

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
