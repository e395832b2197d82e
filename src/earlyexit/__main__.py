"""`python -m earlyexit` is the `earlyexit` command."""

from earlyexit.cli import run

run()
