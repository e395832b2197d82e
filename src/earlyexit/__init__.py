"""Reference implementation of two AWS Step Functions patterns that exit a Parallel state early.

The public API: :func:`embedded_cloud` (the stacks on the embedded engine, no AWS account),
:class:`Cloud` (AWS or any compatible endpoint), :mod:`earlyexit.approvals` (start an approval,
wait for its requests, decide, read the outcome), :mod:`earlyexit.rules` (the input rules) and
the errors, all under :class:`EarlyExitError`.
"""

from earlyexit import approvals, rules
from earlyexit.approvals import ApprovalError, UnknownExecution
from earlyexit.cloud import Cloud, EmbeddedCloud, embedded_cloud
from earlyexit.deploy import Stack
from earlyexit.errors import DeployError, EarlyExitError, WaitTimeout
from earlyexit.patterns import PATTERNS, STACKS

__version__ = "0.1.0"

__all__ = ["PATTERNS", "STACKS", "ApprovalError", "Cloud", "DeployError", "EarlyExitError", "EmbeddedCloud", "Stack",
           "UnknownExecution", "WaitTimeout", "approvals", "embedded_cloud", "rules"]
