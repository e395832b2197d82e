"""One way to wait for a condition: poll with backoff, raise on the deadline, never hang."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from earlyexit.errors import WaitTimeout

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], *, timeout: float, what: str,
               first_pause: float = 0.005, max_pause: float = 0.2) -> T:
    """Call ``probe`` until it returns something truthy and return that; back off from
    ``first_pause`` to ``max_pause`` seconds between calls.

    Raises :class:`WaitTimeout` naming ``what`` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    pause = first_pause
    while True:
        result = probe()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(pause, remaining))
        pause = min(pause * 1.5, max_pause)
