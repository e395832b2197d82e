"""`python -m earlyexit` is the `earlyexit` command."""

from earlyexit.tools.cli import run

run()
