"""The package's errors: every one derives from :class:`EarlyExitError`."""

from __future__ import annotations

__all__ = ["DeployError", "EarlyExitError", "WaitTimeout"]


class EarlyExitError(Exception):
    """Base of every error this package raises on purpose."""


class WaitTimeout(EarlyExitError, TimeoutError):
    """A condition awaited with :func:`earlyexit.polling.wait_until` did not hold before its deadline."""


class DeployError(EarlyExitError):
    """A template cannot be deployed as it is (names the resource or parameter and why)."""
