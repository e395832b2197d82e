"""`make bench`: what an approval costs and how fast it ends, measured on the embedded engine.

Every figure comes from real executions: state transitions (states entered), EventBridge
and DynamoDB requests (TaskScheduled events) are read from each execution's history, the
decision latency runs from the deciding SendTaskSuccess call returning to the execution's
stopDate (:mod:`.measure`). The load variant answers many quorum executions at once, on one
engine and spread over one engine per core, and counts hangs, lost decisions and wrong
outcomes (:mod:`.load`). :mod:`.report` makes the tables; :mod:`.command` runs it all:

    python -m earlyexit.tools.bench [--runs N] [--load N] [--prefill N] [--engines N] [--in-flight N] [--markdown]
"""

from earlyexit.tools.bench.command import main
from earlyexit.tools.bench.load import (
    LOAD_IN_FLIGHT,
    LoadResult,
    combined,
    retained_bytes,
    run_load,
    run_load_on_engines,
)
from earlyexit.tools.bench.measure import (
    REMINDED,
    SCALE_APPROVERS,
    SCENARIOS,
    Measurement,
    ReminderRound,
    Scenario,
    Usage,
    approvers,
    measure,
    measure_reminder_rounds,
    polling_transitions,
)
from earlyexit.tools.bench.report import Table, render, report, report_width

__all__ = ["LOAD_IN_FLIGHT", "REMINDED", "SCALE_APPROVERS", "SCENARIOS", "LoadResult", "Measurement", "ReminderRound",
           "Scenario", "Table", "Usage", "approvers", "combined", "main", "measure", "measure_reminder_rounds",
           "polling_transitions", "render", "report", "report_width", "retained_bytes", "run_load",
           "run_load_on_engines"]
